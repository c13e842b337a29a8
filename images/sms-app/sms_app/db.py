"""Database engine, sessions, and the one translation of connection failures into a clear message."""

import time

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import sessionmaker

from .config import ConfigError, describe_url, redact

DB_UNREACHABLE = 3


def make_engine(database_url):
    options = {"pool_pre_ping": True, "future": True}
    if database_url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 15, "check_same_thread": False}
    else:
        options.update(pool_size=5, max_overflow=5, pool_recycle=300, connect_args={"connect_timeout": 5})
    return create_engine(database_url, **options)


def make_session_factory(engine):
    return sessionmaker(bind=engine, future=True, expire_on_commit=False)


def short_reason(exc):
    """The driver's first line, without anything that could carry a password."""
    original = getattr(exc, "orig", None) or exc
    line = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    return redact(line[:200])


def connect_or_fail(engine, database_url):
    """Open a connection or raise ConfigError naming host:port and the driver's reason."""
    try:
        return engine.connect()
    except (OperationalError, DBAPIError) as exc:
        raise ConfigError("cannot connect to the database at %s (%s); check DATABASE_URL and that the database is "
                          "running" % (describe_url(database_url), short_reason(exc)), DB_UNREACHABLE) from None


def current_revision(connection):
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ping(engine):
    """(ok, latency_ms, detail) of ``SELECT 1``."""
    started = time.monotonic()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            revision = current_revision(connection)
    except Exception as exc:  # noqa: BLE001 - health must report, never raise
        return False, round((time.monotonic() - started) * 1000, 1), short_reason(exc), None
    return True, round((time.monotonic() - started) * 1000, 1), None, revision
