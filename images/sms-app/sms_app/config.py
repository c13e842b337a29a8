"""Configuration from the environment, validated once, with errors a person can act on."""

import contextlib
import os
from dataclasses import dataclass, replace

from sqlalchemy.engine import make_url

MIN_SECRET_KEY = 48  # seed 002: secrets.token_urlsafe(48), "48+ char"


class ConfigError(Exception):
    """A setting is missing or wrong; ``exit_code`` tells the CLI how to end."""

    def __init__(self, message, exit_code=2):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Config:
    database_url: str
    secret_key: str
    upload_dir: str
    rate_limit_per_minute: int
    trust_proxy: bool
    max_upload_bytes: int
    # Test-only fault knob: every /api request sleeps this long first (SMS_DEBUG_DELAY_MS; 0 = off).
    debug_delay_ms: int = 0

    def database_location(self):
        """Where the database is, for messages: host:port or the SQLite path (never the password)."""
        return describe_url(self.database_url)

    def on_database(self, name):
        """This configuration, pointed at another database on the same server (a SQLite file path)."""
        url = make_url(self.database_url).set(database=name)
        return replace(self, database_url=url.render_as_string(hide_password=False))


def describe_url(database_url):
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    default_port = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(url.get_backend_name(), "")
    return "%s:%s" % (url.host or "localhost", url.port or default_port)


def redact(message):
    """``message`` with the database password and the secret key (from the environment) masked."""
    secrets = [os.environ.get("SECRET_KEY", "")]
    with contextlib.suppress(Exception):  # an unparsable URL has no password to find
        secrets.append(make_url(os.environ.get("DATABASE_URL", "")).password or "")
    for secret in secrets:
        if len(secret) >= 4:  # shorter ones would mask ordinary words
            message = message.replace(secret, "***")
    return message


def load(require_secret=True):
    env = os.environ
    database_url = env.get("DATABASE_URL", "").strip()
    if not database_url:
        raise ConfigError("DATABASE_URL is not set; set it, e.g. postgresql+psycopg2://USER:PASSWORD@HOST:5432/sms")
    try:
        make_url(database_url)
    except Exception:  # noqa: BLE001 - sqlalchemy raises several types; the message must not echo the URL
        raise ConfigError("DATABASE_URL is not a valid database URL; expected DRIVER://USER:PASSWORD@HOST:PORT/NAME") \
            from None
    secret_key = env.get("SECRET_KEY", "")
    if require_secret and len(secret_key) < MIN_SECRET_KEY:
        raise ConfigError("SECRET_KEY is missing or shorter than %d characters; set SECRET_KEY to a random string of "
                          "at least %d characters" % (MIN_SECRET_KEY, MIN_SECRET_KEY))
    try:
        rate = int(env.get("RATE_LIMIT_PER_MINUTE", "60"))
        max_upload = int(env.get("MAX_UPLOAD_BYTES", str(10 * 1024 * 1024)))
        delay = int(env.get("SMS_DEBUG_DELAY_MS", "0") or "0")
    except ValueError:
        raise ConfigError("RATE_LIMIT_PER_MINUTE, MAX_UPLOAD_BYTES and SMS_DEBUG_DELAY_MS must be whole numbers") \
            from None
    return Config(
        database_url=database_url,
        secret_key=secret_key,
        upload_dir=env.get("UPLOAD_DIR", "/data/uploads"),
        rate_limit_per_minute=max(rate, 0),
        trust_proxy=env.get("TRUST_PROXY", "0") == "1",
        max_upload_bytes=max_upload,
        debug_delay_ms=max(delay, 0),
    )
