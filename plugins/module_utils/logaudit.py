# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Log audit: what the SMS app's JSON access log says about a time window.

Input is the app's log, one JSON object per line (``ts`` ISO 8601, ``level``, ``request_id``, ``client``,
``method``, ``path``, ``route``, ``status``, ``duration_ms``, ``bytes``, ``user_agent``; error records carry
``level: error`` and ``error`` / ``message``). Lines that are not a JSON object are ignored and counted. The
window is ``since <= ts < until``; JSON lines without a parseable ``ts`` are ignored and counted.

Lines are fed one at a time (``Audit.feed``), so a log is streamed, never loaded whole; per route only the
durations are kept (8 bytes each, for the exact p95). Pure Python (stdlib only), unit-testable without Ansible.

SQL injection: the path (and a ``query`` / ``query_string`` field when a record has one) is URL-decoded (up to
three rounds, ``+`` as space, so double encoding does not hide anything), then matched case-insensitively
against ``SQLI_PATTERNS``. These are indicators of attempts, not proof of a vulnerability; the app itself only
uses bound parameters.
"""

import array
import collections
import datetime
import json
import math
import re
from urllib.parse import unquote_plus

from .report import parse_time

# (name, regular expression) matched against the decoded path and query, case-insensitively.
SQLI_PATTERNS = (
    ("union select", r"\bunion\b(?:\s|/\*.*?\*/|\+)+(?:all(?:\s|/\*.*?\*/|\+)+)?select\b"),
    ("boolean tautology", r"['\"]\s*(?:or|and)\s*(?:['\"]?\w+['\"]?)\s*(?:=|like)\s*['\"]?\w+"
                          r"|\bor\s+\d+\s*=\s*\d+"),
    ("sql comment", r"'\s*(?:--|#|/\*)|--(?:\s|$|[;'\"])|/\*.*?\*/"),
    ("stacked query", r";\s*(?:drop|delete|insert|update|alter|create|truncate|exec(?:ute)?|shutdown|declare)\b"),
    ("time delay", r"\b(?:sleep|pg_sleep|benchmark)\s*\(|\bwaitfor\s+delay\b"),
    ("schema probe", r"\binformation_schema\b|\bpg_catalog\b|\bsqlite_master\b|\bsysobjects\b|@@version"),
    ("file / command access", r"\bload_file\s*\(|\binto\s+(?:out|dump)file\b|\bxp_cmdshell\b|\bcopy\s+.*\bprogram\b"),
    ("char encoding", r"\b(?:char|chr|concat)\s*\(\s*\d+"),
)
_COMPILED = tuple((name, re.compile(pattern, re.IGNORECASE | re.DOTALL)) for name, pattern in SQLI_PATTERNS)

ERROR_LEVELS = ("error", "critical", "fatal", "emergency", "alert")
WINDOW_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_SENSITIVE_QUERY = re.compile(r"([?&;](?:[^=&;]*(?:pass|token|secret|key|auth|session|sig)[^=&;]*)=)[^&;#]*",
                              re.IGNORECASE)

PATH_LIMIT = 200
MESSAGE_LIMIT = 200
CLIENT_LIMIT = 64


def json_record(text):
    """The JSON object a log line holds, or None (not JSON, or JSON but not an object)."""
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class AuditError(Exception):
    """Something about the audit's input is wrong; the message says what and what to do."""


# ---------------------------------------------------------------------------------------------- time
def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def isoformat(when):
    text = when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[:-3] + "Z"


def parse_ts(value):
    """An aware UTC datetime from an ISO 8601 string (``Z`` or an offset; naive means UTC), or None.

    Only strings: a log record's timestamp is text (report.parse_time also takes numbers and datetimes)."""
    return parse_time(value) if isinstance(value, str) else None


def duration_seconds(text):
    """Seconds of a duration written ``'7d'``, ``'24h'``, ``'90m'``, ``'90min'``, ``'30s'``, ``'2w'`` (fractions such as
    ``'1.5d'`` too), or None when ``text`` is not one (backup.parse_duration says why to its user)."""
    match = WINDOW_RE.match(str(text))
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()] if match else None


def parse_when(value, now=None, what="since"):
    """``'7d'``, ``'24h'``, ``'90m'``, ``'30s'``, ``'2w'`` (before ``now``), ``'now'``, or an ISO 8601 time."""
    now = now or utcnow()
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    text = str(value or "").strip()
    if text.lower() == "now":
        return now
    seconds = duration_seconds(text)
    if seconds is not None:
        return now - datetime.timedelta(seconds=seconds)
    when = parse_ts(text)
    if when is None:
        raise AuditError("%s=%r is neither a duration (like 7d, 24h, 90m, 30s) nor an ISO 8601 time "
                         "(like 2026-11-25T08:00:00Z)" % (what, value))
    return when


def window(since, until=None, now=None):
    """``(since, until)`` as aware datetimes; AuditError when the window is empty."""
    now = now or utcnow()
    start = parse_when(since, now, "since")
    end = parse_when(until, now, "until") if until not in (None, "") else now
    if start >= end:
        raise AuditError("the window is empty: since (%s) is not before until (%s)" % (isoformat(start),
                                                                                       isoformat(end)))
    return start, end


def clamp_since(since, created):
    """The window's start, no earlier than when the container was created (its logs begin there): a 7-minute-old
    container's audit covers 7 minutes, not the 7 days asked for. ``created`` is an ISO time or None."""
    start = parse_ts(created) if created else None
    return start if start is not None and start > since else since


# ---------------------------------------------------------------------------------------------- helpers
def percentile(values, p):
    """Nearest-rank percentile (the smallest value with at least p % of the values at or below it); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(math.ceil(p / 100.0 * len(ordered))))
    return ordered[min(rank, len(ordered)) - 1]


def decode(text):
    """URL-decode up to three rounds (``+`` as space) until nothing changes: double encoding hides nothing."""
    text = str(text)
    for _round in range(3):
        decoded = unquote_plus(text)
        if decoded == text:
            break
        text = decoded
    return text


def sqli_match(text):
    """The name of the first SQL-injection pattern ``text`` (decoded first) matches, or None."""
    decoded = decode(text)
    for name, pattern in _COMPILED:
        if pattern.search(decoded):
            return name
    return None


def scrub(path, secrets=()):
    """A path fit for a report: sensitive query values masked, secrets masked, control characters shown, cut."""
    text = _SENSITIVE_QUERY.sub(lambda m: m.group(1) + "********", str(path))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    text = "".join(ch if ch.isprintable() else "\\x%02x" % ord(ch) if ord(ch) < 256 else "?" for ch in text)
    return text if len(text) <= PATH_LIMIT else text[:PATH_LIMIT - 1] + "\u2026"


def _short(value, limit):
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def iter_lines(chunks):
    """Lines (str, without the line end) from an iterable of byte or str chunks cut anywhere."""
    pending = b""
    for chunk in chunks:
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        pending += chunk
        if b"\n" not in chunk:
            continue
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", "replace").rstrip("\r")


# ---------------------------------------------------------------------------------------------- the audit
class Audit(object):
    """Feed it lines; ``result()`` is the audit of those in ``[since, until)``."""

    def __init__(self, since, until, top=10, samples=5, secrets=()):
        self.since, self.until = since, until
        self.top, self.samples = top, samples
        self.secrets = [str(s) for s in secrets or () if s]
        self.lines = collections.Counter()
        self.requests = 0
        self.status = collections.Counter()
        self.classes = collections.Counter()
        self.routes = collections.Counter()
        self.durations = {}
        self.auth = collections.Counter()
        self.auth_by_code = {401: collections.Counter(), 403: collections.Counter()}
        self.limited = collections.Counter()
        self.sqli = collections.Counter()
        self.sqli_clients = collections.Counter()
        self.sqli_samples = []
        self.errors = collections.Counter()
        self.error_records = 0
        self.first = self.last = None

    def feed(self, line):
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        self.lines["total"] += 1
        text = line.strip()
        record = json_record(text)
        if record is None:
            self.lines["non_json"] += 1
            return
        when = parse_ts(record.get("ts") or record.get("time") or record.get("timestamp"))
        if when is None:
            self.lines["no_timestamp"] += 1
            return
        if not self.since <= when < self.until:
            self.lines["outside_window"] += 1
            return
        self.lines["in_window"] += 1
        self.first = when if self.first is None or when < self.first else self.first
        self.last = when if self.last is None or when > self.last else self.last
        level = str(record.get("level") or "").lower()
        if level in ERROR_LEVELS:
            self.error_records += 1
            message = record.get("message") or record.get("msg") or record.get("error") or "(no message)"
            self.errors[_short(self._mask(message), MESSAGE_LIMIT)] += 1
        try:
            status = int(record.get("status"))
        except (TypeError, ValueError):
            if level not in ERROR_LEVELS:
                self.lines["other_json"] += 1
            return
        self._request(record, status, when)

    def _mask(self, text):
        text = str(text)
        for secret in self.secrets:
            text = text.replace(secret, "********")
        return text

    def _request(self, record, status, when):
        self.requests += 1
        client = _short(record.get("client") or "-", CLIENT_LIMIT)
        route = _short(record.get("route") or record.get("path") or "-", PATH_LIMIT)
        self.status[status] += 1
        self.classes["%dxx" % (status // 100)] += 1
        self.routes[route] += 1
        try:
            duration = float(record.get("duration_ms"))
        except (TypeError, ValueError):
            duration = None
        if duration is not None and not math.isnan(duration):
            self.durations.setdefault(route, array.array("d")).append(duration)
        if status in (401, 403):
            self.auth[client] += 1
            self.auth_by_code[status][client] += 1
        elif status == 429:
            self.limited[client] += 1
        path = str(record.get("path") or "")
        query = record.get("query") or record.get("query_string") or ""
        target = path + ("?" + str(query) if query else "")
        pattern = sqli_match(target) if target else None
        if pattern:
            self.sqli[pattern] += 1
            self.sqli_clients[client] += 1
            if len(self.sqli_samples) < self.samples:
                sample = scrub(target, self.secrets)
                if all(s["path"] != sample for s in self.sqli_samples):
                    self.sqli_samples.append({"ts": isoformat(when), "client": client,
                                              "method": str(record.get("method") or ""), "status": status,
                                              "pattern": pattern, "path": sample})

    def result(self):
        top = self.top
        slowest = []
        for route, values in self.durations.items():
            slowest.append({"route": route, "p95_ms": round(percentile(values, 95), 2), "count": len(values),
                            "max_ms": round(max(values), 2)})
        slowest.sort(key=lambda e: (-e["p95_ms"], e["route"]))
        auth = [{"client": client, "count": count, "unauthorized": self.auth_by_code[401][client],
                 "forbidden": self.auth_by_code[403][client]} for client, count in _most_common(self.auth, top)]
        return {
            "window": {"since": isoformat(self.since), "until": isoformat(self.until),
                       "first_record": isoformat(self.first) if self.first else None,
                       "last_record": isoformat(self.last) if self.last else None},
            "lines": dict((k, self.lines[k]) for k in ("total", "in_window", "non_json", "no_timestamp",
                                                       "outside_window", "other_json")),
            "requests": self.requests,
            "status_classes": dict(sorted(self.classes.items())),
            "status_counts": dict((str(k), v) for k, v in sorted(self.status.items())),
            "unauthorized": self.status[401],
            "forbidden": self.status[403],
            "auth_failures": self.status[401] + self.status[403],
            "rate_limited": self.status[429],
            "server_errors": sum(v for k, v in self.status.items() if 500 <= k <= 599),
            "sqli": {"count": sum(self.sqli.values()), "patterns": dict(self.sqli),
                     "top_clients": [{"client": c, "count": n} for c, n in _most_common(self.sqli_clients, top)],
                     "samples": list(self.sqli_samples)},
            "error_records": self.error_records,
            "top_errors": [{"message": m, "count": n} for m, n in _most_common(self.errors, top)],
            "top_endpoints": [{"route": r, "count": n} for r, n in _most_common(self.routes, top)],
            "slowest_endpoints": slowest[:top],
            "auth_failures_by_client": auth,
            "rate_limited_by_client": [{"client": c, "count": n} for c, n in _most_common(self.limited, top)],
        }


def _most_common(counter, limit):
    """Highest counts first, ties by key, so the output is stable."""
    return sorted(counter.items(), key=lambda item: (-item[1], str(item[0])))[:limit]


def audit_lines(lines, since, until, top=10, samples=5, secrets=()):
    audit = Audit(since, until, top=top, samples=samples, secrets=secrets)
    for line in lines:
        audit.feed(line)
    return audit.result()


def read_file_lines(path):
    """Lines of a log file, streamed; AuditError when it cannot be read."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed when the generator ends
    except OSError as exc:
        raise AuditError("cannot read the log file %s: %s" % (path, exc.strerror)) from None
    with handle:
        for line in handle:
            yield line.decode("utf-8", "replace").rstrip("\r\n")


def document(result, title=None, source=None, generated_at=None, actor=None):
    """The audit result as a report document for ``report.render_audit_*``; ``actor`` (who ran the audit, e.g. the
    AWX user and job: ``alice@awx job 42``) is recorded as ``run_by`` when given."""
    doc = dict(result, kind="audit", title=title or "Rollcall log audit", source=source,
               generated_at=isoformat(generated_at or utcnow())[:-5] + "Z")
    if actor:
        doc["run_by"] = actor
    return doc
