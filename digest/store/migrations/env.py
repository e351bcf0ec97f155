"""Alembic environment: runs migrations on the engine handed over by digest.store.db."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import digest.store.models  # noqa: F401 - registers the tables on SQLModel.metadata

config = context.config
engine: Engine | None = config.attributes.get("engine")
if engine is None:
    # Invoked by the alembic CLI (e.g. `alembic revision --autogenerate` during development).
    from digest.config.settings import load_settings
    from digest.store.db import create_db_engine

    engine = create_db_engine(load_settings().resolved_database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER needs batch mode
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
