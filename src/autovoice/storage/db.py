"""The database: engine, sessions and migrations applied programmatically on start.

SQLite (WAL mode) at ``<data_dir>/autovoice.db`` by default; PostgreSQL when ``database_url`` says so
(``postgresql://`` URLs use the psycopg 3 driver). Every process (server, worker) opens its own
:class:`Database`; nothing is created at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from autovoice.config import Settings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
# Arbitrary constant naming the PostgreSQL advisory lock that serialises concurrent migrations.
_MIGRATION_LOCK = 0x6175_746F


def database_url(settings: Settings) -> str:
    """The SQLAlchemy URL for ``settings``: ``database_url`` or SQLite under the data dir."""
    url = settings.database_url
    if not url:
        return f"sqlite:///{Path(settings.data_dir) / 'autovoice.db'}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    # WAL lets the server read while a worker thread writes; busy_timeout waits out short write locks.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Database:
    """One engine and session factory per process.

    Parameters
    ----------
    settings
        Gives the URL (see :func:`database_url`).
    pooled
        Keep connections open between sessions (the default). False: one connection per session, closed
        after it, and a PostgreSQL connection attempt given up after 5 s; for a process that forks
        children after using the database (a Celery worker's main process), whose children must not
        inherit its open connections, and which must not hang on a database that is away.
    """

    def __init__(self, settings: Settings, *, pooled: bool = True) -> None:
        from sqlalchemy.pool import NullPool

        self.url = database_url(settings)
        if self.url.startswith("sqlite"):
            Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
            options: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
            self.engine: Engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": 15}, **options
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
        elif pooled:
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=10, max_overflow=10)
        else:
            self.engine = create_engine(self.url, poolclass=NullPool, connect_args={"connect_timeout": 5})
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic ``upgrade head``); safe to call concurrently."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                    conn.commit()
        log.debug("database schema up to date at %s", self.engine.url.render_as_string(hide_password=True))

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # any driver error means "not ready"
            return False

    def dispose(self) -> None:
        self.engine.dispose()
