# Application image: action server, web app, worker and the migration job (one image, four commands).
# NOT BUILT HERE: this machine has the docker client but no Docker engine. It uses the same settings as
# `make run-prod` (bot/ops/prod.py): BOT_PROFILE=prod, BOT_DATABASE_URL, BOT_RASA_URL, BOT_RASA_TOKEN,
# BOT_SECRET_KEY, BOT_INTEGRATION_KEY, BOT_EMBEDDED_WORKER=0.
#
#   docker build -f bot/ops/deploy/Dockerfile.app -t after-sales/app .        (from the repository root)

FROM node:20-bookworm-slim AS web-vendor
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

FROM python:3.10-slim-bookworm
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app BOT_PROFILE=prod BOT_EMBEDDED_WORKER=0 BOT_VAR_DIR=/var/lib/after-sales
WORKDIR /app
COPY requirements/app.lock requirements/app.lock
RUN pip install --no-cache-dir -r requirements/app.lock \
    && useradd --system --uid 10001 --home-dir /app app \
    && mkdir -p /var/lib/after-sales && chown app /var/lib/after-sales
COPY --from=web-vendor /src/node_modules/socket.io-client/dist node_modules/socket.io-client/dist
COPY bot bot
COPY actions actions
COPY domain.yml domain.yml
USER app
# The process of a container is chosen by its command:
#   web:      python -m bot web --host 0.0.0.0 --port 8000
#   actions:  python -m rasa_sdk --actions actions --port 5055
#   worker:   python -m bot worker
#   migrate:  python -m bot migrate            (a one-shot job before the others start)
EXPOSE 8000 5055
CMD ["python", "-m", "bot", "web", "--host", "0.0.0.0", "--port", "8000"]
