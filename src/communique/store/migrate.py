"""Run the Alembic migrations programmatically (``communique init``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def config() -> Config:
    """Return an Alembic configuration pointing at our migration scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of ``engine`` to ``revision`` in one transaction."""
    cfg = config()
    with engine.connect() as conn:
        conn.execution_options(communique_write=True)
        with conn.begin():
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
