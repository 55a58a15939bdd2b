"""Bring a store's schema to the newest Alembic revision shipped in the package.

Alembic is imported only when the database is behind: a store that is up to date costs one
small query, which keeps everyday commands fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from lastgood.errors import StoreError

HEAD = "0013"
MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = (0x6C617374_676F6F64 >> 1) + 2
"""The advisory lock key migrations hold on PostgreSQL: next to the store's own keys
(:data:`lastgood.store.database.HISTORY_LOCK` and ``AUDIT_LOCK``)."""


def current_revision(engine: Engine) -> str | None:
    """The revision recorded in the database, or None for an empty one.

    Only a missing ``alembic_version`` table means "empty". A store that cannot be reached,
    stays locked or times out raises here, so the command fails after one wait, not two.
    """
    with engine.connect() as connection:
        try:
            return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        except sa.exc.ProgrammingError:
            return None  # PostgreSQL: relation "alembic_version" does not exist
        except sa.exc.OperationalError as exc:
            if "no such table" in str(exc.orig):
                return None  # SQLite
            raise
        except SQLAlchemyError:
            return None  # an odd database: the migration says what is wrong in its own words


def upgrade(engine: Engine) -> None:
    """Run every migration the database has not seen yet (no-op when up to date)."""
    before = current_revision(engine)
    if before == HEAD:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    _refuse_newer(config, before)
    if before is not None:  # a store in use: say why this command waits (a large one takes time)
        sys.stderr.write(
            f"upgrading the store from schema {before} to {HEAD}, once; on a large store "
            "this takes a while (other commands wait for it)\n"
        )
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # one migration may rightly run for minutes
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
            # processes starting together on a new database each ran the migrations, and all
            # but one failed on the catalogue's unique keys: one at a time, and Alembic, reading
            # the revision after the lock, finds the work done by the one before
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    if before is not None and before < SHRINKS and engine.dialect.name == "sqlite":
        vacuum(engine)


def _refuse_newer(config: Any, revision: str | None) -> None:
    """A store stamped by a newer lastgood is left alone, with a message saying so."""
    from alembic.script import ScriptDirectory

    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if revision is not None and revision not in known:
        raise StoreError(
            f"the store has schema {revision}, which this lastgood does not know: a newer "
            "release wrote it",
            hint="upgrade lastgood on this machine to the release the others use",
        )


SHRINKS = "0005"
"""Upgrading past this revision frees most of an SQLite file (per-file manifests became trees):
the file is compacted once, right after."""


def vacuum(engine: Engine) -> None:
    """Give SQLite's free pages back to the disk. VACUUM cannot run in a transaction, so it
    goes through the raw connection (autocommit, as the store opens it); it is atomic itself."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
    finally:
        raw.close()


def alembic_head() -> str | None:
    """The newest revision among the shipped migration scripts (for tests and tools)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()
