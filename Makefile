# The after-sales assistant. Two commands matter: `make run` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONPATH := $(CURDIR)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Rasa 3.6 runs on SQLAlchemy 1.4; its 2.0 deprecation banner is not ours to fix.
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

APP := .venv/app/bin
RASA := .venv/rasa/bin
# Python 3.10: on PATH, or any pyenv 3.10.x (Rasa 3.6 supports nothing newer).
PYTHON310 ?= $(shell (python3.10 -c 'import sys' >/dev/null 2>&1 && command -v python3.10) || ls -d $$HOME/.pyenv/versions/3.10*/bin/python3.10 2>/dev/null | tail -1)

.PHONY: help run test setup envs db model classify nlu-report bench clean check-python

help:
	@echo "make run       set up everything and start the assistant (http://127.0.0.1:8000)"
	@echo "make test      set up everything and run every test"
	@echo "make classify  label JSON lines from stdin with intent, topic and return reason"
	@echo "make run-prod  the production profile: PostgreSQL, Redis, nginx, 2 Rasa, 2 action servers, 2 workers"

check-python:
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "error: python3.10 not found. Rasa 3.6 needs Python 3.10: install it (e.g. 'pyenv install 3.10.13') or set PYTHON310=/path/to/python3.10" >&2; \
	  exit 1; fi

# ---- environments: rebuilt only when their lock file changes
.venv/app/.installed: requirements/app.lock | check-python
	rm -rf .venv/app
	$(PYTHON310) -m venv .venv/app
	$(APP)/pip install -q --upgrade pip wheel
	$(APP)/pip install -q -r requirements/app.lock
	touch $@

.venv/rasa/.installed: requirements/rasa.lock | check-python
	rm -rf .venv/rasa
	$(PYTHON310) -m venv .venv/rasa
	$(RASA)/pip install -q --upgrade pip wheel "setuptools<70"
	$(RASA)/pip install -q -r requirements/rasa.lock
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

envs: .venv/app/.installed .venv/rasa/.installed node_modules/.installed

# ---- database: migrations and the demo shop are idempotent
db: .venv/app/.installed
	@$(APP)/python -m bot migrate 2>&1 | grep -v "alembic.runtime.plugins" || true
	@$(APP)/python -m bot seed

# ---- model: trained only when data, domain, config or the custom NLU code changed
model: .venv/rasa/.installed
	@$(RASA)/python -m bot.ops.model ensure

# ---- Debian's Chromium for the browser tests (Playwright drives it; no browser download), with CJK fonts
.venv/.chromium-installed:
	@if [ ! -x /usr/bin/chromium ]; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-noto-cjk; fi
	@mkdir -p .venv && touch $@

setup: envs db model .venv/.chromium-installed nginx

run: setup
	@$(APP)/python -m bot.ops.stack

# ---- production profile (bot/ops/prod.py): PostgreSQL and Redis on 127.0.0.1, Debian's nginx in front
.PHONY: run-prod nginx
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y nginx; }

run-prod: setup nginx
	@$(APP)/python -m bot.ops.prod

test: setup
	@bash tests/run_all.sh

classify: .venv/rasa/.installed
	@$(RASA)/python -m bot.ops.model ensure --quiet >&2
	@$(RASA)/python -m bot.nlu.classify

nlu-report: model
	$(RASA)/python bench/nlu_report.py

clean:
	rm -rf .venv node_modules models var
