# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app's SECRET_KEY and the earlier keys it still accepts (SECRET_KEY_FALLBACKS), per app host.

A rotation replaces SECRET_KEY; what the previous key signed (download links handed out) keeps working while that
key is a *fallback*: the app verifies with it, never signs with it, and stops accepting it when its grace period
ends (the app checks the expiry itself). ``decide`` is the whole decision, a pure function: given the key the
inventory wants, what the live container runs with, what is recorded and the time, it returns the fallbacks to
start the app with and the new record. ``SecretKeyStore`` keeps that record on the app host:

``<state_dir>/<app>/secret_keys.json`` (mode 0600, in the 0700 directory of the release state)::

    {"version": 1,
     "current": {"fingerprint": "3f1c...", "since": "2026-05-01T12:00:00Z"},
     "fallbacks": [{"key": "...", "fingerprint": "9ab2...", "retired_at": "...", "expires": "..."}]}

The record is the authority on fallbacks: an entry removed from it (or given an earlier expiry) is gone from the
app at the next deploy. Only when there is no record at all (a new state directory) are the fallbacks the live
container runs with taken over. A fingerprint is the first 12 hex digits of the key's sha256: enough to tell keys
apart in an audit line, nothing to sign with. No key ever leaves this module except in ``env``.

No Ansible here: the module ``secret_keys`` is a thin wrapper; the unit tests drive this with a fixed clock.
"""

import datetime
import hashlib
import json
import os

from .artifact import ArtifactError, write_json_atomic
from .release import ReleaseError, ReleaseStore

MIN_LENGTH = 48  # seed 002: secrets.token_urlsafe(48), "48+ char"; the app refuses shorter keys
RECORD = "secret_keys.json"
STAMP = "%Y-%m-%dT%H:%M:%SZ"
ENV = "SECRET_KEY_FALLBACKS"


class SecretKeyError(Exception):
    """Something about the keys or their record is wrong; the message says what (never a key)."""


def fingerprint(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def stamp(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(STAMP)


def epoch(text):
    """Seconds since the epoch of a ``YYYY-mm-ddTHH:MM:SSZ`` stamp; None for None; SecretKeyError otherwise."""
    if text is None:
        return None
    try:
        return datetime.datetime.strptime(text, STAMP).replace(tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        raise SecretKeyError("%r is not a UTC time like 2026-05-01T12:00:00Z" % (text,)) from None


def _order(entry):
    expires = epoch(entry.get("expires"))
    return (float("inf") if expires is None else expires, entry["fingerprint"])


# ---------------------------------------------------------------------------------------------- the env value
def parse_env(value):
    """The fallbacks in a SECRET_KEY_FALLBACKS value (the app's format: a JSON list of {"key", "expires"} or key
    strings) as [{"key", "fingerprint", "expires"}]; SecretKeyError when it cannot be read."""
    if not (value or "").strip():
        return []
    try:
        items = json.loads(value)
    except ValueError:
        raise SecretKeyError("%s of the live container is not JSON" % ENV) from None
    if not isinstance(items, list):
        raise SecretKeyError("%s of the live container is not a JSON list" % ENV)
    out = []
    for number, item in enumerate(items, 1):
        item = {"key": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not item["key"]:
            raise SecretKeyError("%s item %d of the live container has no key" % (ENV, number))
        try:
            epoch(item.get("expires"))
        except SecretKeyError as exc:
            raise SecretKeyError("%s item %d of the live container: expires %s" % (ENV, number, exc)) from None
        out.append({"key": item["key"], "fingerprint": fingerprint(item["key"]), "expires": item.get("expires")})
    return out


def render_env(fallbacks):
    """The SECRET_KEY_FALLBACKS value for these fallbacks ("" for none): compact JSON, soonest expiry first, the
    same text for the same fallbacks (it is part of the release's config hash)."""
    if not fallbacks:
        return ""
    items = [{"key": f["key"], "expires": f.get("expires")} for f in sorted(fallbacks, key=_order)]
    return json.dumps(items, separators=(",", ":"), sort_keys=True)


def secrets_in_env(env):
    """(SECRET_KEY, fallbacks parsed from SECRET_KEY_FALLBACKS) of a container environment (["NAME=value"])."""
    values = dict(str(item).partition("=")[::2] for item in env or ())
    return values.get("SECRET_KEY") or None, parse_env(values.get(ENV))


# ---------------------------------------------------------------------------------------------- the decision
def _check_record(record):
    """``record`` when it has the shape this module writes; SecretKeyError naming what is wrong."""
    if not isinstance(record, dict) or not isinstance(record.get("fallbacks", []), list):
        raise SecretKeyError("it is not an object with a list of fallbacks")
    for number, entry in enumerate(record.get("fallbacks", []), 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not entry["key"]:
            raise SecretKeyError("fallback %d has no key" % number)
        try:
            epoch(entry.get("expires"))
        except SecretKeyError as exc:
            raise SecretKeyError("fallback %d: expires %s" % (number, exc)) from None
    current = record.get("current")
    if current is not None and not isinstance(current, dict):
        raise SecretKeyError("current is not an object")
    return record


def decide(key, live_key, live_fallbacks, record, now, grace_seconds, min_length=MIN_LENGTH):
    """What to start the app with on one host, and what to record.

    key             the SECRET_KEY the inventory wants (at least ``min_length`` characters)
    live_key        the SECRET_KEY of the live app container, None when there is none
    live_fallbacks  the fallbacks the live container runs with (``parse_env``), [] or None when none
    record          the recorded state (see the module docstring), None when nothing is recorded yet
    now             seconds since the epoch
    grace_seconds   how long the key being replaced keeps verifying what it signed; 0 keeps no fallback at all
                    (earlier ones are dropped too: the way to end every grace at once when a key leaked)

    Returns a dict: ``env`` (the SECRET_KEY_FALLBACKS value, "" for none), ``record`` (to write), ``changed``
    (the record differs), ``event`` (what the audit log should say: secret_key_rotated,
    secret_key_fallbacks_dropped, secret_key_fallbacks_adopted, or None: nothing worth a line), ``rotated``
    (the key changes on this host), ``previous`` (fingerprint of the key replaced, or None), ``kept`` (the
    fallback entry kept for it, without its key, or None), ``fallbacks`` and ``dropped`` (fingerprints and
    expiries, reasons; no keys), ``notes`` and a one-line ``summary``.
    """
    if not isinstance(key, str) or len(key) < min_length:
        raise SecretKeyError("the new SECRET_KEY is missing or shorter than %d characters" % min_length)
    if grace_seconds < 0:
        raise SecretKeyError("the grace period must be 0 or more, not %s" % grace_seconds)
    before = _check_record(record) if record is not None else None
    notes, dropped = [], []
    current_fp = fingerprint(key)
    if before is not None:
        fallbacks = [dict(entry, fingerprint=fingerprint(entry["key"])) for entry in before.get("fallbacks", [])]
        recorded_fp = (before.get("current") or {}).get("fingerprint")
    else:
        fallbacks = [dict(entry, retired_at=None) for entry in live_fallbacks or []]
        recorded_fp = None
        if fallbacks:
            notes.append("nothing was recorded on this host: the %d fallback(s) the live app runs with are kept"
                         % len(fallbacks))

    # Which key signed until now: the live container's; without one, the recorded fingerprint says only that
    # it differed (the key itself is gone, so what it signed can no longer be accepted).
    previous = fingerprint(live_key) if live_key else recorded_fp
    rotated = previous is not None and previous != current_fp
    kept = None
    if rotated and grace_seconds > 0:
        if not live_key:
            notes.append("the previous key (%s) is not known on this host (no app container): what it signed is "
                         "no longer accepted" % previous)
        elif len(live_key) < min_length:
            notes.append("the previous key (%s) is shorter than %d characters, which the app refuses as a "
                         "fallback: what it signed is no longer accepted" % (previous, min_length))
        else:
            # It signs until the switch, so its grace starts now (a run whose release failed recorded it already:
            # that entry is replaced).
            kept = {"key": live_key, "fingerprint": previous, "retired_at": stamp(now),
                    "expires": stamp(now + grace_seconds)}
            fallbacks = [entry for entry in fallbacks if entry["key"] != live_key] + [kept]

    survivors = []
    for entry in fallbacks:
        expires = epoch(entry.get("expires"))
        if entry["key"] == key:
            reason = "it is the current key again"
        elif grace_seconds == 0:
            reason = "no grace period (grace 0)"
        elif expires is not None and expires <= now:
            reason = "its grace period ended at %s" % entry["expires"]
        else:
            survivors.append(entry)
            continue
        dropped.append({"fingerprint": entry["fingerprint"], "expires": entry.get("expires"), "reason": reason})
    survivors.sort(key=_order)

    current = (before or {}).get("current") or {}
    if recorded_fp != current_fp or not current.get("since"):
        current = {"fingerprint": current_fp, "since": stamp(now)}
    after = {"version": 1, "current": {"fingerprint": current["fingerprint"], "since": current["since"]},
             "fallbacks": [{"key": e["key"], "fingerprint": e["fingerprint"], "retired_at": e.get("retired_at"),
                            "expires": e.get("expires")} for e in survivors]}
    public = [{k: v for k, v in entry.items() if k != "key"} for entry in after["fallbacks"]]
    kept_public = {k: v for k, v in kept.items() if k != "key"} if kept is not None and kept in survivors else None
    adopted = before is None and bool(survivors)
    event = ("secret_key_rotated" if rotated else "secret_key_fallbacks_dropped" if dropped else
             "secret_key_fallbacks_adopted" if adopted else None)
    return {"env": render_env(after["fallbacks"]), "record": after, "changed": after != before, "event": event,
            "rotated": rotated, "previous": previous if rotated else None, "current": current_fp,
            "kept": kept_public, "fallbacks": public, "dropped": dropped, "notes": notes,
            "summary": summarize(rotated, previous, current_fp, kept_public, public, dropped, notes)}


def summarize(rotated, previous, current, kept, fallbacks, dropped, notes):
    """One line for people and the audit log: fingerprints and times only."""
    parts = []
    if rotated:
        parts.append("SECRET_KEY %s replaced by %s" % (previous, current))
        parts.append("what %s signed stays valid until %s" % (previous, kept["expires"]) if kept else
                     "what %s signed is no longer accepted" % previous)
    else:
        parts.append("SECRET_KEY %s unchanged" % current)
    for entry in dropped:
        parts.append("fallback %s dropped: %s" % (entry["fingerprint"], entry["reason"]))
    parts.append("fallbacks: %s" % (", ".join("%s until %s" % (f["fingerprint"], f.get("expires") or "removed")
                                              for f in fallbacks) or "none"))
    return "; ".join(parts + notes)


# ---------------------------------------------------------------------------------------------- one run
def argument_spec():
    """The options of the modules that decide the keys on an app host (secret_keys, app_standby; their
    documentation: doc_fragments/secret_keys.py)."""
    return dict(
        app=dict(type="str", required=True),
        state_dir=dict(type="path", default="/var/lib/rollcall"),
        key=dict(type="str", required=True, no_log=True),
        container=dict(type="str", required=True),
        docker_host=dict(type="str"),
        grace_hours=dict(type="float", default=168),
        min_length=dict(type="int", default=MIN_LENGTH),
    )


def describe(record):
    """The record for --diff: fingerprints and times, never keys."""
    if record is None:
        return ""
    current = record.get("current") or {}
    lines = ["current: %s since %s" % (current.get("fingerprint"), current.get("since"))]
    for entry in record.get("fallbacks", []):
        lines.append("fallback: %s retired %s, valid until %s"
                     % (fingerprint(entry["key"]), entry.get("retired_at"), entry.get("expires")))
    return "\n".join(lines) + "\n"


def keep_on_host(params, environment_of, now, check_mode=False, diff=False):
    """keep() with the modules' options (argument_spec()); ``environment_of(container)`` reads the live container's
    environment. SecretKeyError for a bad option or record."""
    if params["grace_hours"] < 0:
        raise SecretKeyError("grace_hours must be 0 or more, not %s" % params["grace_hours"])
    store = SecretKeyStore(params["state_dir"], params["app"])
    return keep(store, environment_of(params["container"]), params["key"], params["grace_hours"],
                params["min_length"], now, check_mode=check_mode, diff=diff)


def keep(store, environment, key, grace_hours, min_length, now, check_mode=False, diff=False):
    """One run on a host: decide from the record in ``store`` and the live container's ``environment`` (None: no
    live container), write the new record unless ``check_mode``; the module result (``env`` holds keys)."""
    record = store.read()
    live_key, live_fallbacks = secrets_in_env(environment) if environment is not None else (None, [])
    decision = decide(key, live_key, live_fallbacks, record, now, int(round(grace_hours * 3600)), min_length)
    mode = store.mode()
    changed = decision["changed"] or (mode is not None and mode != 0o600)
    if changed and not check_mode:
        store.write(decision["record"])
    result = {k: decision[k] for k in ("env", "event", "rotated", "current", "previous", "kept", "fallbacks",
                                       "dropped", "notes", "summary")}
    result.update(changed=changed or decision["rotated"], record=store.path)
    if diff:
        result["diff"] = {"before": describe(record), "after": describe(decision["record"]),
                          "before_header": store.path, "after_header": store.path}
    return result


# ---------------------------------------------------------------------------------------------- the record
class SecretKeyStore:
    """``<state_dir>/<app>/secret_keys.json`` on the app host (the directory of the release state, 0700)."""

    def __init__(self, state_dir, app):
        try:
            self.release = ReleaseStore(state_dir, app)
        except ReleaseError as exc:
            raise SecretKeyError(str(exc)) from None
        self.path = os.path.join(self.release.directory, RECORD)

    def read(self):
        """The record, None when there is none; SecretKeyError when it cannot be used."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                record = json.load(handle)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretKeyError("cannot read %s: %s; run with become, or set rollcall_state_dir to a directory "
                                 "this user can read" % (self.path, exc.strerror)) from None
        except ValueError:
            raise SecretKeyError("%s is not valid JSON; repair it, or move it aside to take over the fallbacks the "
                                 "live app runs with" % self.path) from None
        try:
            return _check_record(record)
        except SecretKeyError as exc:
            raise SecretKeyError("%s cannot be used (%s); repair it, or move it aside to take over the fallbacks the "
                                 "live app runs with" % (self.path, exc)) from None

    def mode(self):
        """The record's permission bits, None when there is no record."""
        try:
            return os.stat(self.path).st_mode & 0o7777
        except FileNotFoundError:
            return None

    def write(self, record):
        """Replace the record: temporary file (0600) in the same directory, fsync, rename, directory fsync."""
        try:
            self.release.ensure_directory()
        except ReleaseError as exc:
            raise SecretKeyError(str(exc)) from None
        try:
            write_json_atomic(self.path, record, replace=True)
        except ArtifactError as exc:
            raise SecretKeyError("%s; nothing was changed" % exc) from None
