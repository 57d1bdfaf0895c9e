"""Alembic environment: the URL comes from the application's settings (or -x url=...)."""

from alembic import context

from bot.persistence.db import make_engine
from bot.persistence.models import Base
from bot.settings import load_settings

url = context.get_x_argument(as_dictionary=True).get("url") or load_settings().database_url
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
engine.dispose()
