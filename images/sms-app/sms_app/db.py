"""Database engine, sessions, and the one translation of connection failures into a clear message."""

import os
import time

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import sessionmaker

from .config import ConfigError, describe_url, redact

DB_UNREACHABLE = 3
# What a server says for the moment a restore swaps a database in under its name (PostgreSQL: the live database
# refuses new connections, then is renamed away). A new connection waits through that, up to SMS_DB_SWAP_WAIT_S
# seconds, instead of failing the request; any other connection failure fails at once.
SWAP_MESSAGES = ("is not currently accepting connections", "does not exist", "Unknown database")


def make_engine(database_url, swap_wait=None):
    options = {"pool_pre_ping": True, "future": True}
    if database_url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 15, "check_same_thread": False}
    else:
        options.update(pool_size=5, max_overflow=5, pool_recycle=300, connect_args={"connect_timeout": 5})
    engine = create_engine(database_url, **options)
    if swap_wait is None:
        swap_wait = float(os.environ.get("SMS_DB_SWAP_WAIT_S", "10") or 0)
    if swap_wait > 0 and not database_url.startswith("sqlite"):
        event.listen(engine, "do_connect", _waiting_through_swaps(swap_wait))
    return engine


def _waiting_through_swaps(wait):
    def connect(dialect, _record, cargs, cparams):
        deadline = time.monotonic() + wait
        while True:
            try:
                return dialect.connect(*cargs, **cparams)
            except dialect.dbapi.OperationalError as exc:
                if time.monotonic() >= deadline or not any(m in str(exc) for m in SWAP_MESSAGES):
                    raise
                time.sleep(0.1)

    return connect


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
