"""Configuration from the environment, validated once, with errors a person can act on."""

import contextlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy.engine import make_url

MIN_SECRET_KEY = 48  # seed 002: secrets.token_urlsafe(48), "48+ char"
STAMP = "%Y-%m-%dT%H:%M:%SZ"
FALLBACKS_FORMAT = ('a JSON list of earlier keys, each {"key": "...", "expires": "2026-05-01T12:00:00Z"} (or a bare '
                    'key string, kept until removed)')


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
    # Earlier secret keys that still verify what they signed (SECRET_KEY_FALLBACKS), oldest first, each
    # (key, expires: seconds since the epoch or None); nothing is ever signed with them.
    secret_key_fallbacks: tuple = field(default=(), repr=False)
    # Lifetime of a signed download link unless the request asks for less (DOWNLOAD_LINK_SECONDS).
    download_link_seconds: int = 3600

    def __repr__(self):  # never the keys or the database password
        return "Config(database=%s)" % self.database_location()

    def verifying_keys(self, now=None):
        """The keys a signature may come from at ``now``: the unexpired fallbacks, oldest first, then SECRET_KEY
        (itsdangerous signs with the last key of the list and verifies with any of them)."""
        now = time.time() if now is None else now
        return [key for key, expires in self.secret_key_fallbacks if expires is None or expires > now] + \
            [self.secret_key]

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


def parse_fallbacks(raw):
    """SECRET_KEY_FALLBACKS -> ((key, expires or None), ...) ordered by expiry (no expiry last); ConfigError
    naming the item and what is wrong, never its value."""
    raw = (raw or "").strip()
    if not raw:
        return ()
    try:
        items = json.loads(raw)
    except ValueError:
        raise ConfigError("SECRET_KEY_FALLBACKS is not valid JSON; it must be %s" % FALLBACKS_FORMAT) from None
    if not isinstance(items, list):
        raise ConfigError("SECRET_KEY_FALLBACKS must be %s" % FALLBACKS_FORMAT)
    out = []
    for number, item in enumerate(items, 1):
        if isinstance(item, str):
            item = {"key": item}
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ConfigError("SECRET_KEY_FALLBACKS item %d has no key; each item is {\"key\": \"...\", "
                              "\"expires\": \"YYYY-MM-DDTHH:MM:SSZ\"} or a key string" % number)
        if len(item["key"]) < MIN_SECRET_KEY:
            raise ConfigError("SECRET_KEY_FALLBACKS item %d is shorter than %d characters" % (number, MIN_SECRET_KEY))
        expires = item.get("expires")
        if expires is not None:
            try:
                expires = datetime.strptime(expires, STAMP).replace(tzinfo=UTC).timestamp()
            except (TypeError, ValueError):
                raise ConfigError("SECRET_KEY_FALLBACKS item %d: expires must be a UTC time like "
                                  "2026-05-01T12:00:00Z" % number) from None
        out.append((item["key"], expires))
    return tuple(sorted(out, key=lambda pair: float("inf") if pair[1] is None else pair[1]))


def _fallback_keys(raw):
    """The keys in SECRET_KEY_FALLBACKS as far as they can be read (for masking; never raises)."""
    try:
        return [key for key, _ in parse_fallbacks(raw)]
    except ConfigError:
        return []


def redact(message):
    """``message`` with the database password and the secret keys (from the environment) masked."""
    secrets = [os.environ.get("SECRET_KEY", "")] + _fallback_keys(os.environ.get("SECRET_KEY_FALLBACKS"))
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
    # Only what serves (and signs) needs the earlier keys; maintenance commands never read them.
    fallbacks = parse_fallbacks(env.get("SECRET_KEY_FALLBACKS")) if require_secret else ()
    try:
        rate = int(env.get("RATE_LIMIT_PER_MINUTE", "60"))
        max_upload = int(env.get("MAX_UPLOAD_BYTES", str(10 * 1024 * 1024)))
        delay = int(env.get("SMS_DEBUG_DELAY_MS", "0") or "0")
        link_seconds = int(env.get("DOWNLOAD_LINK_SECONDS", "3600") or "3600")
    except ValueError:
        raise ConfigError("RATE_LIMIT_PER_MINUTE, MAX_UPLOAD_BYTES, SMS_DEBUG_DELAY_MS and DOWNLOAD_LINK_SECONDS "
                          "must be whole numbers") from None
    return Config(
        database_url=database_url,
        secret_key=secret_key,
        upload_dir=env.get("UPLOAD_DIR", "/data/uploads"),
        rate_limit_per_minute=max(rate, 0),
        trust_proxy=env.get("TRUST_PROXY", "0") == "1",
        max_upload_bytes=max_upload,
        debug_delay_ms=max(delay, 0),
        secret_key_fallbacks=fallbacks,
        download_link_seconds=max(link_seconds, 1),
    )
