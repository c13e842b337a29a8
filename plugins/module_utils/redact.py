# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Masking secrets in text a person (or a report) will read. Pure functions, stdlib only.

``redact(text, secrets)`` replaces every known secret value (a password handed to a module, a container's
``SECRET_KEY``) and anything that *looks* like a secret: ``SECRET_KEY=...``, ``password: ...``, the password
in ``scheme://user:password@host`` URLs, ``PASSWORD '...'`` / ``IDENTIFIED BY '...'`` in SQL.
"""

import json
import re

MASK = "***"
# Shorter values would mask ordinary words ("on", "sms") all over a log line.
MIN_SECRET_LENGTH = 4

# Names whose value is a secret, in KEY=value / "key": "value" / key: value form.
SENSITIVE_NAME = (r"[A-Za-z0-9_.-]*(?:SECRET|PASSWORD|PASSWD|PWD|TOKEN|API_?KEY|PRIVATE_?KEY|ENCRYPTION_?KEY"
                  r"|CREDENTIAL)[A-Za-z0-9_.-]*")
_PATTERNS = (
    # "password": "value" (JSON) - the value up to the closing quote
    (re.compile(r'("%s"\s*:\s*")((?:[^"\\]|\\.)*)(")' % SENSITIVE_NAME, re.I), r"\1%s\3" % MASK),
    # KEY='value', KEY = "value" (quoted: the whole quoted value), then KEY=value, KEY: value (up to a space)
    (re.compile(r"""(\b%s\s*[=:]\s*)(['"])(.*?)(\2)""" % SENSITIVE_NAME, re.I), r"\1\2%s\4" % MASK),
    (re.compile(r"""(\b%s\s*[=:]\s*)([^\s'",;&]+)""" % SENSITIVE_NAME, re.I), r"\1%s" % MASK),
    # scheme://user:password@host
    (re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)([^\s@/]+)(@)"), r"\1%s\3" % MASK),
    # SQL: PASSWORD 'x', IDENTIFIED BY 'x'
    (re.compile(r"(\b(?:PASSWORD|IDENTIFIED\s+BY)\s+)('(?:[^']|'')*')", re.I), r"\1'%s'" % MASK),
)
_ENV_SECRET = re.compile(r"^%s$" % SENSITIVE_NAME, re.I)
_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:([^\s@/]+)@")


def redact(text, secrets=()):
    """``text`` with every value in ``secrets`` and everything that looks like a secret replaced by ``***``."""
    if text is None:
        return None
    if not isinstance(text, str):
        text = str(text)
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}, key=len,
                         reverse=True):
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_data(data, secrets=()):
    """``redact`` applied to every string (values, not keys) in nested dicts and lists."""
    if isinstance(data, dict):
        return {key: redact_data(value, secrets) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(value, secrets) for value in data]
    if isinstance(data, str):
        return redact(data, secrets)
    return data


def _listed_keys(value):
    """The keys in a JSON list of keys or of {"key": ...} objects (SECRET_KEY_FALLBACKS); [] for anything else."""
    if not value.lstrip().startswith("["):
        return []
    try:
        items = json.loads(value)
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    keys = [item.get("key") if isinstance(item, dict) else item for item in items]
    return [key for key in keys if isinstance(key, str)]


def secrets_from_env(env):
    """Secret values in a container's environment (``["NAME=value", ...]`` or a dict).

    Values of variables named like a secret (SECRET_KEY, *_PASSWORD, *TOKEN, ...), each key of a JSON list in
    one (SECRET_KEY_FALLBACKS=[{"key": ..., "expires": ...}]), and the password part of any URL-valued variable
    (DATABASE_URL=postgresql://user:password@host/db).
    """
    items = env.items() if isinstance(env, dict) else (entry.partition("=")[::2] for entry in env or ())
    found = []
    for name, value in items:
        if not value:
            continue
        if _ENV_SECRET.match(name):
            found.append(value)
            found.extend(_listed_keys(value))
        match = _URL_PASSWORD.match(value)
        if match:
            found.append(match.group(1))
    return [value for value in found if len(value) >= MIN_SECRET_LENGTH]
