# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything ``health_check`` looks at on one host, each judged ok / warning / critical with the reason.

Two layers, so the judgement is unit-testable with plain data:

- ``evaluate_*``: pure functions from facts (numbers, inspect output, manifests) and thresholds to a check.
- gatherers (``container_checks``, ``endpoint_check``, ``database_check``, ...): read the facts (Docker SDK,
  HTTP, the engine adapters' ``activity()``, /proc, ``backup.describe()``, TLS) and never raise: a check that
  cannot run is ``critical`` with "could not ..." as its reason.

A check is ``{"name", "kind", "status", "reason", "metrics": {numbers}, "details": {...}}``; ``run()`` gathers the
requested checks concurrently and returns ``{"status", "checks", "summary", "checked_at"}`` with every string
passed through ``redact()``.
"""

import datetime
import json
import math
import os
import re
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

from . import backup, keyring, release
from . import checks as http
from . import docker as docker_access
from .checks import CRITICAL, OK, WARNING
from .engines import mssql
from .engines.base import EngineError
from .logaudit import json_record
from .redact import redact, redact_data, secrets_from_env
from .runner import ContainerMissing, LocalRunner, RunnerError
from .timefmt import age_text, docker_epoch, iso_minute

try:
    from cryptography import x509

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - the stdlib fallback below reads host certificates without it
    HAS_CRYPTOGRAPHY = False

KINDS = ("container", "http", "database", "disk", "memory", "cpu", "backup", "logs", "tls", "lock")
SEVERITY = {OK: 0, WARNING: 1, CRITICAL: 2}

# [warning, critical]; a value at or beyond a bound has that status (for tls_days_left: at or below).
# null (None) switches that level off. Every key is documented in the module's ``thresholds`` option.
THRESHOLDS = {
    "latency_p95_ms": [500, 1000],
    "error_rate_percent": [2, 5],
    "connections_percent": [80, 95],
    "long_queries": [1, None],
    "disk_used_percent": [80, 90],
    "memory_used_percent": [85, 95],
    "cpu_used_percent": [80, 95],
    "container_restarts": [1, None],
    "backup_age_hours": [24, None],
    "verified_backup_age_hours": [24, None],
    "log_error_lines": [1, 50],
    "tls_days_left": [30, 7],
    # SQL Server (issue 17): the transaction log's use, sessions blocked by another, and on Express the data
    # files against its 10 GB per-database limit.
    "log_used_percent": [70, 90],
    "blocked_sessions": [1, None],
    "express_size_percent": [80, 95],
    # The deploy lock held this long (a deploy or patching run that died holding it blocks every later one).
    "deploy_lock_minutes": [30, 120],
    # PostgreSQL with point-in-time recovery: minutes since WAL was last archived while archiving fails now (the
    # recovery point stuck there, pg_wal growing); any failing is a warning, this long a critical.
    "archive_failing_minutes": [0, 15],
    # MariaDB with point-in-time recovery: minutes since the oldest change the archive does not hold yet (the log is
    # shipped by playbooks/archive_log.yml, every 5 minutes on AWX): what losing the db host would lose.
    "binlog_unshipped_minutes": [15, 60],
}
LOWER_IS_WORSE = frozenset(["tls_days_left"])

LOG_SAMPLES = 5
LOG_SAMPLE_CHARS = 300
# Default "error-ish" lines: JSON lines with level error/critical/fatal or an HTTP status >= 500 (access log);
# other lines with a Python traceback or an upper-case ERROR / CRITICAL / FATAL / PANIC word.
DEFAULT_LOG_PATTERNS = (r"Traceback \(most recent call last\)", r"\b(?:ERROR|CRITICAL|FATAL|PANIC)\b")
_ERROR_LEVELS = ("error", "critical", "fatal", "panic", "emergency", "alert")


class CheckError(Exception):
    """A check could not run; the message says what could not be reached or read."""


# ------------------------------------------------------------------------------------------ thresholds
def merge_thresholds(overrides=None):
    """THRESHOLDS with ``overrides`` applied; ValueError names the offending key (bad module arguments)."""
    merged = {key: list(value) for key, value in THRESHOLDS.items()}
    for key, value in (overrides or {}).items():
        if key not in THRESHOLDS:
            raise ValueError("thresholds: unknown key %r (known: %s)" % (key, ", ".join(sorted(THRESHOLDS))))
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError("thresholds.%s must be a list [warning, critical] (null switches a level off), not %r"
                             % (key, value))
        bounds = []
        for bound in value:
            if bound is None or bound == "":
                bounds.append(None)
                continue
            try:
                bounds.append(float(bound))
            except (TypeError, ValueError):
                raise ValueError("thresholds.%s: %r is not a number" % (key, bound)) from None
        warn, crit = bounds
        if warn is not None and crit is not None and (crit > warn if key in LOWER_IS_WORSE else crit < warn):
            raise ValueError("thresholds.%s: the critical bound %s is %s than the warning bound %s"
                             % (key, _num(crit), "higher" if key in LOWER_IS_WORSE else "lower", _num(warn)))
        merged[key] = bounds
    return merged


def rate(key, value, thresholds):
    """The status of ``value`` against ``thresholds[key]``: critical, warning or ok."""
    warn, crit = thresholds[key]
    if value is None:
        return OK
    lower = key in LOWER_IS_WORSE

    def beyond(bound):
        return bound is not None and (value <= bound if lower else value >= bound)

    if beyond(crit):
        return CRITICAL
    if beyond(warn):
        return WARNING
    return OK


def _bound(key, status, thresholds):
    return thresholds[key][0 if status == WARNING else 1]


def _judge(problems, key, value, thresholds, label, unit=""):
    """Rate ``value``; when it is not ok, append (status, "label value unit >= bound unit") to ``problems``."""
    status = rate(key, value, thresholds)
    if status != OK:
        sign = "<=" if key in LOWER_IS_WORSE else ">="
        bound = _num(_bound(key, status, thresholds))
        problems.append((status, "%s %s%s %s %s%s" % (label, _num(value), unit, sign, bound, unit)))
    return status


def worst(statuses):
    statuses = list(statuses)
    return max(statuses, key=SEVERITY.__getitem__) if statuses else OK


def _num(value):
    if isinstance(value, float):
        return ("%.1f" % value).rstrip("0").rstrip(".") if not value.is_integer() else "%d" % value
    return str(value)


def make_check(name, kind, status, reason, metrics=None, details=None):
    return {"name": name, "kind": kind, "status": status, "reason": reason, "metrics": metrics or {},
            "details": details or {}}


def _verdict(name, kind, problems, base, metrics, details=None):
    """A check from ``problems`` [(status, text)]: the worst status, the problems first in the reason."""
    status = worst(p[0] for p in problems)
    ordered = [text for level, text in sorted(problems, key=lambda p: -SEVERITY[p[0]])]
    reason = "; ".join(ordered + [base]) if ordered else base
    return make_check(name, kind, status, reason, metrics, details)


def could_not(name, kind, error, metrics=None):
    """A check that could not run: always critical, never silently ok."""
    text = str(error)
    if not text.startswith("could not"):
        text = "could not check %s: %s" % (name, text)
    return make_check(name, kind, CRITICAL, text, metrics)


def summarize(found):
    summary = {OK: 0, WARNING: 0, CRITICAL: 0}
    for check in found:
        summary[check["status"]] += 1
    return worst(c["status"] for c in found), summary


# ------------------------------------------------------------------------------------------------ http
def percentile(values, pct):
    """Nearest-rank percentile (the smallest value with at least ``pct`` % of the values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(math.ceil(pct / 100.0 * len(ordered))))
    return ordered[min(rank, len(ordered)) - 1]


def sample_ok(probe, expect_status=None):
    """One sample counts as an error when nothing answered or the status is not the expected one (default 2xx)."""
    if probe.error is not None or probe.http_status is None:
        return False
    if expect_status:
        return probe.http_status in expect_status
    return 200 <= probe.http_status < 300


def evaluate_endpoint(name, url, probes, thresholds, expect_status=None):
    samples = len(probes)
    errors = [p for p in probes if not sample_ok(p, expect_status)]
    latencies = [p.latency_ms for p in probes if p.error is None and p.latency_ms is not None]
    error_rate = round(100.0 * len(errors) / samples, 1) if samples else 100.0
    metrics = {"samples": samples, "error_rate": error_rate}
    if not latencies:
        last = probes[-1] if probes else None
        why = last.error if last is not None and last.error else "no sample answered"
        return could_not(name, "http", "could not reach %s: %s (%d samples)" % (url, why, samples),
                         dict(metrics, error_rate=100.0))
    for pct in (50, 95, 99):
        metrics["p%d_ms" % pct] = round(percentile(latencies, pct), 1)
    problems = []
    _judge(problems, "latency_p95_ms", metrics["p95_ms"], thresholds, "p95 latency", " ms")
    if _judge(problems, "error_rate_percent", error_rate, thresholds, "error rate", " %") != OK:
        first = errors[0]
        problems[-1] = (problems[-1][0], problems[-1][1] + " (%s)" % (
            first.error or "HTTP %s" % first.http_status))
    base = "%s: %d samples, p50 %s ms, p95 %s ms, p99 %s ms, %s %% errors" % (
        url, samples, _num(metrics["p50_ms"]), _num(metrics["p95_ms"]), _num(metrics["p99_ms"]), _num(error_rate))
    return _verdict(name, "http", problems, base, metrics)


def endpoint_check(endpoint, thresholds, request_timeout=5.0, validate_certs=True, probe=http.probe_http):
    url = endpoint["url"]
    name = endpoint.get("name") or url
    probes = [probe(url, timeout=request_timeout, validate_certs=validate_certs)
              for _sample in range(max(1, int(endpoint.get("samples") or 5)))]
    return evaluate_endpoint(name, url, probes, thresholds, endpoint.get("expect_status"))


def gate_check(probe, attempts):
    """The deploy gate (``url``): ok when the endpoint became healthy, critical otherwise. No latency rating."""
    latency = probe.latency_ms or 0.0
    metrics = {"samples": 1, "error_rate": 0.0 if probe.healthy else 100.0}
    if probe.error is None:
        metrics.update(p50_ms=latency, p95_ms=latency, p99_ms=latency)
    reason = probe.reason() + ("" if attempts == 1 else " (after %d attempts)" % attempts)
    return make_check(probe.url, "http", OK if probe.healthy else CRITICAL, reason, metrics)


# ------------------------------------------------------------------------------------------ containers
def evaluate_container(name, inspect, thresholds, probe=None, missing=None):
    """From ``docker inspect`` output (None: no such container). ``probe``: (exit code, output) of the container's
    own health test run now, asked when Docker's first probe is still to come (health "starting"). ``missing``:
    for a missing container, what to say of it (docker.missing: what the engine has instead; container_checks)."""
    if inspect is None:
        return make_check(name, "container", CRITICAL, str(missing or ContainerMissing(name)),
                          {"running": 0, "restart_count": 0})
    state = inspect.get("State") or {}
    restarts = int(inspect.get("RestartCount") or 0)
    status = state.get("Status") or ("running" if state.get("Running") else "unknown")
    if state.get("Restarting"):
        status = "restarting"
    health = (state.get("Health") or {}).get("Status")
    metrics = {"running": 1 if status == "running" else 0, "restart_count": restarts}
    problems = []
    if status == "restarting":
        problems.append((WARNING, "container %s is restarting (restarted %d times, last exit code %s)"
                         % (name, restarts, state.get("ExitCode"))))
    elif status == "paused":  # frozen (docker pause): it answers nothing; no exit code to speak of
        problems.append((CRITICAL, "container %s is paused: it answers nothing until docker unpause %s (or "
                                   "playbooks/incident.yml -e restart=true restarts it)" % (name, name)))
    elif status != "running":
        problems.append((CRITICAL, "container %s is %s (exit code %s%s)" % (
            name, status, state.get("ExitCode"), ", %s" % state["Error"] if state.get("Error") else "")))
    if status == "running" and health == "unhealthy":
        log = (state.get("Health") or {}).get("Log") or []
        last = (log[-1].get("Output") or "").strip().splitlines() if log else []
        problems.append((CRITICAL, "container %s is unhealthy%s" % (name, ": %s" % last[-1][:200] if last else "")))
    elif status == "running" and health == "starting" and probe is not None and probe[0] == 0:
        health = "starting, its health test passes when run now"
    elif status == "running" and health == "starting":
        said = (probe[1].splitlines() or [""])[-1][:200] if probe is not None else ""
        problems.append((WARNING, "container %s is still starting (health check not passed yet%s)"
                         % (name, ": %s" % said if said else "")))
    if status != "restarting":
        _judge(problems, "container_restarts", restarts, thresholds, "restart count")
    if status == "running":
        base = "container %s is running%s, %d restarts" % (name, " (%s)" % health if health else "", restarts)
    else:  # the problem above said its state; Docker keeps the last health status of a stopped container
        base = "%d restarts" % restarts
    return _verdict(name, "container", problems, base, metrics)


def container_checks(names, docker_api, thresholds):
    """One check per expected container; ``docker_api()`` returns a low-level Docker API client or raises."""
    try:
        api = docker_api()
    except Exception as exc:  # noqa: BLE001 - the engine is down / SDK missing: every container is critical
        return [could_not(n, "container", "could not reach the Docker engine: %s" % exc,
                          {"running": 0, "restart_count": 0}) for n in names]
    inspected = {}
    for name in names:
        try:
            inspected[name] = _inspect(api, name)
        except Exception as exc:  # noqa: BLE001
            inspected[name] = exc
    # None of the stack's containers here at all: a mistyped rollcall_project (or another stack's inventory), or a
    # stack whose containers were removed, so each says which (docker.missing). One missing among running ones is
    # just missing.
    stray = names and all(inspected[n] is None for n in names)
    found = []
    for name in names:
        inspect = inspected[name]
        if isinstance(inspect, Exception):
            found.append(could_not(name, "container", "could not inspect container %s: %s" % (name, inspect),
                                   {"running": 0, "restart_count": 0}))
            continue
        missing = docker_access.missing(api, name) if stray else None
        found.append(evaluate_container(name, inspect, thresholds, _probe_if_starting(api, inspect), missing))
    return found


def _probe_if_starting(api, inspect):
    """A running container whose health is still "starting" (Docker probes 30 s after a start): its health test,
    run now; None otherwise, or when it cannot be run (the check then says "still starting")."""
    state = (inspect or {}).get("State") or {}
    if not state.get("Running") or state.get("Restarting") or (state.get("Health") or {}).get("Status") != "starting":
        return None
    try:
        return docker_access.run_health_test(api, inspect)
    except Exception:  # noqa: BLE001 - an exec refused or timed out leaves the answer "still starting"
        return None


def _inspect(api, name):
    try:
        return api.inspect_container(name)
    except Exception as exc:
        if getattr(getattr(exc, "response", None), "status_code", None) == 404 or type(exc).__name__ == "NotFound":
            return None
        raise


# -------------------------------------------------------------------------------------------- database
def database_name(params):
    return "database %s %s" % (params["engine"], params.get("database") or params.get("path") or "")


def evaluate_database(name, where, activity, thresholds, long_query_seconds):
    active, limit = activity.get("active_connections"), activity.get("max_connections")
    long_queries = activity.get("long_queries") or []
    metrics = {"long_queries": len(long_queries)}
    problems = []
    if active is not None:
        metrics["active_connections"] = active
    if limit:
        metrics["max_connections"] = limit
        percent = round(100.0 * active / limit, 1) if active is not None else None
        _judge(problems, "connections_percent", percent, thresholds, "connections at", " % of max_connections")
    if _judge(problems, "long_queries", len(long_queries), thresholds, "queries running longer than %d s:"
              % long_query_seconds) != OK:
        longest = long_queries[0]
        problems[-1] = (problems[-1][0], problems[-1][1] + " (longest: pid %s, %d s: %s)" % (
            longest["pid"], longest["duration_s"], longest["query"]))
    if active is None:
        base = "%s reachable" % where
    else:
        base = "%s: %d of %s connections" % (where, active, limit if limit else "?")
    if not long_queries:
        base += ", no query running longer than %d s" % long_query_seconds
    base += _judge_archiver(problems, activity.get("archiver"), thresholds, metrics)
    base += _judge_binlog(problems, activity.get("binlog"), thresholds, metrics)
    return _verdict(name, "database", problems, base, metrics, {"long_queries": long_queries})


def _judge_archiver(problems, archiver, thresholds, metrics):
    """PostgreSQL's WAL archiving (``rollcall_pitr``): failing now, i.e. the last failure after the last success.
    Appends the problem; returns what to add to the check's reason when all is well."""
    if not archiver or archiver.get("mode") in (None, "off"):
        return ""
    archived, failed, now = archiver.get("last_archived_time"), archiver.get("last_failed_time"), archiver["now"]
    failing = bool(failed and (archived is None or failed > archived))
    metrics["archive_failing"] = 1 if failing else 0
    if archived is not None:
        metrics["archive_last_success_age_s"] = max(0, now - archived)
    if not failing:
        return ", WAL archiving working" if archived is not None else ", WAL archiving on (nothing archived yet)"
    # never archived: stuck since the server started archiving; judged as stuck for good
    minutes = round(max(0, now - archived) / 60.0, 1) if archived is not None else float("inf")
    status = rate("archive_failing_minutes", minutes, thresholds)
    if status == OK:
        return ""
    since = ("the last success %s ago, %s UTC" % (age_text(now - archived), iso_minute(archived))
             if archived is not None else "nothing archived since archiving was turned on")
    problems.append((status, "WAL archiving to the point-in-time repository fails (last failure %s UTC, segment %s; "
                             "%s): a restore to a time cannot go past that success, and pg_wal grows until "
                             "archiving works again. Check the repository: its directory, space and permissions "
                             "(playbooks/backup.yml runs pgbackrest check), and the database's log"
                     % (iso_minute(failed), archiver.get("last_failed_wal"), since)))
    return ""


def _judge_binlog(problems, shipping, thresholds, metrics):
    """MariaDB's binary log shipping (``rollcall_pitr``; binlog.BinlogPITR.shipping): how old the oldest change is
    that the archive does not hold. Appends the problem; returns what to add to the check's reason when all is
    well."""
    if not shipping:
        return ""
    if shipping.get("error"):
        problems.append((WARNING, "could not read how far the binary log archive %s is behind the server: %s"
                         % (shipping.get("repo"), shipping["error"])))
        return ""
    if not shipping.get("log_bin"):
        if not shipping.get("required"):
            return ""
        problems.append((WARNING, "point-in-time recovery is on for this stack (rollcall_pitr) but the server writes "
                                  "no binary log, so a restore to a time has nothing to replay: playbooks/deploy.yml "
                                  "turns it on (one restart of the database)"))
        return ""
    oldest, now = shipping.get("oldest_change_at"), shipping["now"]
    if oldest is None:
        metrics["binlog_unshipped_s"] = 0
        return ", binary log archived up to its last change"
    age = max(0, now - oldest)
    metrics["binlog_unshipped_s"] = age
    status = rate("binlog_unshipped_minutes", age / 60.0, thresholds)
    if status == OK:
        return ", binary log archived but for the last %s" % age_text(age)
    newest = shipping.get("newest_archived")
    when = (shipping.get("archived_at") or "?")[:16].replace("T", " ")
    last = "the newest archived file %s, archived %s UTC" % (newest, when) if newest else "nothing archived yet"
    problems.append((status, "the binary log holds changes from %s UTC (%s ago) that the archive %s does not (%s; "
                             "%d file(s) not archived): losing the database host now loses them. "
                             "playbooks/archive_log.yml ships the log; it runs every 5 minutes on AWX "
                             "(awx_config_log_shipping_enabled, docs/pitr.md): check that its schedule is on and "
                             "its last jobs passed. A longer accepted loss: binlog_unshipped_minutes in "
                             "rollcall_health_thresholds"
                     % (iso_minute(oldest), age_text(age), shipping.get("repo"), last,
                        len(shipping.get("unshipped") or ()))))
    return ""


def binlog_shipping(engine, params, docker_host=None):
    """binlog.BinlogPITR.shipping for the ``database`` option's ``binlog_repo``, or ``{"error": ...}``."""
    from .binlog import BinlogPITR

    repo = params["binlog_repo"]
    try:
        found = BinlogPITR(params.get("container"), repo, docker_host=docker_host, engine=engine).shipping()
    except Exception as exc:  # noqa: BLE001 - PITRError, RunnerError, EngineError, an unreadable manifest
        found = {"error": str(exc)}
    found["repo"], found["required"] = repo, bool(params.get("binlog_required"))
    return found


def database_target(params, docker_host=None):
    """The engine adapters' Target for the ``database`` option; EngineError names a missing setting."""
    return backup.target_from_params(dict(params, docker_host=docker_host, jobs=1))


def open_database(params, docker_host=None):
    """The adapter with its usual runner (docker exec in ``container``, else on this host); SQL Server through
    pymssql (no backup directories needed for activity())."""
    target = database_target(params, docker_host)
    if target.engine == "mssql":
        if not mssql.HAS_PYMSSQL:
            raise EngineError("engine mssql needs the Python package pymssql where the module runs")
        return mssql.MSSQL(LocalRunner(), target)
    try:
        return backup.open_engine(target)
    except ContainerMissing as exc:
        raise EngineError("%s (deploy the stack first: playbooks/deploy.yml; or check rollcall_db_container)"
                          % exc) from None
    except RunnerError as exc:  # stopped, or the engine is down: the modules' own error, not a traceback
        raise EngineError(str(exc)) from None


def database_check(params, thresholds, open_engine=open_database, docker_host=None):
    """``open_engine(params)`` returns an engine adapter (whose runner may raise when its container is gone).
    ``binlog_repo`` (MariaDB with point-in-time recovery): how far that archive is behind the server too."""
    name = database_name(params)
    seconds = int(params.get("long_query_seconds") or 60)
    what = "%s database %s" % (params["engine"], params.get("path") or params.get("database") or "")
    where = what.strip()
    if params.get("container"):
        where += " in container %s" % params["container"]
    try:
        engine = open_engine(params)
        where = "%s at %s" % (what.strip(), engine.target.where()) if params["engine"] != "sqlite" else where
        activity = engine.activity(seconds)
    except Exception as exc:  # noqa: BLE001 - EngineError, RunnerError, or a driver's own
        return could_not(name, "database", "could not reach the %s: %s" % (where, exc), {"long_queries": 0})
    if params.get("binlog_repo") and params["engine"] == "mysql":
        activity["binlog"] = binlog_shipping(engine, params, docker_host)
    return evaluate_database(name, where, activity, thresholds, seconds)


def evaluate_sqlserver(name, where, facts, thresholds):
    """The SQL Server check (issue 17) from ``MSSQL.server_health()`` facts."""
    problems, metrics = [], {"blocked_sessions": len(facts["blocked"])}
    state = facts["state"]
    if state is None:
        return make_check(name, "database", CRITICAL, "%s: the database does not exist" % where, metrics)
    if state != "ONLINE":
        problems.append((CRITICAL, "the database is %s, not ONLINE" % state))
    if facts["user_access"] and facts["user_access"] != "MULTI_USER":
        problems.append((WARNING, "the database is %s (an interrupted restore leaves it so; ALTER DATABASE ... SET "
                                  "MULTI_USER)" % facts["user_access"]))
    if facts["read_only"]:
        problems.append((WARNING, "the database is READ_ONLY"))
    if facts["log_used_percent"] is not None:
        metrics.update(log_used_percent=facts["log_used_percent"], log_bytes=facts["log_bytes"])
        _judge(problems, "log_used_percent", facts["log_used_percent"], thresholds, "transaction log", " % used")
    if _judge(problems, "blocked_sessions", len(facts["blocked"]), thresholds, "sessions blocked:") != OK:
        first = facts["blocked"][0]
        problems[-1] = (problems[-1][0], problems[-1][1] + " (session %d waits %d s on session %d: %s)" % (
            first["pid"], first["wait_s"], first["blocked_by"], first["query"]))
    size = ""
    if facts["data_bytes"] is not None:
        metrics["data_bytes"] = facts["data_bytes"]
        size = ", data %s" % human_bytes(facts["data_bytes"])
        if facts["express"]:
            percent = round(100.0 * facts["data_bytes"] / mssql.EXPRESS_DATA_LIMIT_BYTES, 1)
            metrics["express_size_percent"] = percent
            size += " (%s %% of Express's 10 GB limit)" % _num(percent)
            _judge(problems, "express_size_percent", percent, thresholds,
                   "Express edition capacity: data files at", " % of the 10 GB limit")
    outside = facts["outside_full"]
    if outside:
        problems.append((WARNING, "a full backup taken outside Rollcall %s ago (%s) is now the differential base: "
                                  "Rollcall's differentials fail until its next full backup (take them COPY_ONLY)"
                         % (age_text(outside["age_s"]), outside["device"])))
    history = []
    for kind in ("full", "differential", "log"):
        entry = facts["newest"].get(kind)
        if entry:
            metrics["msdb_newest_%s_age_s" % kind] = entry["age_s"]
            theirs = "" if entry["ours"] else " (not Rollcall's)"
            history.append("%s %s ago%s" % (kind, age_text(entry["age_s"]), theirs))
    base = "%s: %s, %s%s; msdb newest backups: %s; %s" % (
        where, state, facts["recovery_model"] or "?", size, ", ".join(history) or "none",
        "%s edition, no SQL Server Agent (schedules from AWX)" % facts["edition"] if facts["express"]
        else "%s edition" % (facts["edition"] or "unknown"))
    return _verdict(name, "database", problems, base, metrics, {"blocked": facts["blocked"]})


def sqlserver_check(params, thresholds, open_engine=open_database):
    """State, log space, blocking, msdb history and (Express) capacity of a SQL Server database."""
    name = "sqlserver %s" % params.get("database")
    where = "mssql database %s" % params.get("database")
    try:
        engine = open_engine(params)
        where = "%s at %s" % (where, engine.target.where())
        facts = engine.server_health(params["database"], params.get("server_directory"))
    except Exception as exc:  # noqa: BLE001 - EngineError, or a driver's own
        return could_not(name, "database", "could not reach the %s: %s" % (where, exc), {"blocked_sessions": 0})
    return evaluate_sqlserver(name, where, facts, thresholds)


# ------------------------------------------------------------------------------------------ deploy lock
def evaluate_deploy_lock(app, lock, thresholds, describe):
    """The deploy lock of ``app``: free is ok; held is rated by how long (``deploy_lock_minutes``), naming the
    holder. ``lock`` is ReleaseStore.read_lock()'s answer (None: free); metric ``held_s`` (0 when free)."""
    name = "deploy lock %s" % app
    if lock is None:
        return make_check(name, "lock", OK, "free", {"held_s": 0})
    held = lock.get("age_s") or 0
    problems = []
    _judge(problems, "deploy_lock_minutes", round(held / 60.0, 1), thresholds, "deploy lock held for", " min")
    base = "held by %s" % describe(lock)
    if problems:
        base += "; if that run is dead, break it: app_release action=break_lock (docs/releases.md)"
    return _verdict(name, "lock", problems, base, {"held_s": held})


def deploy_lock_check(spec, thresholds, state=None):
    """Read the deploy lock under ``spec['state_dir']`` for ``spec['app']`` (release.ReleaseStore) and rate it."""
    try:
        reader = state or release.ReleaseStore(spec["state_dir"], spec["app"])
        lock = reader.read_lock()
    except release.ReleaseError as exc:
        return could_not("deploy lock %s" % spec["app"], "lock", str(exc))
    return evaluate_deploy_lock(spec["app"], lock, thresholds, release.describe_lock)


# ------------------------------------------------------------------------------------ disk, memory, cpu
def evaluate_disk(path, used_percent, free_bytes, thresholds):
    problems = []
    _judge(problems, "disk_used_percent", used_percent, thresholds, "disk used", " %")
    base = "%s: %s %% used, %s free" % (path, _num(used_percent), human_bytes(free_bytes))
    return _verdict("disk %s" % path, "disk", problems, base, {"used_percent": used_percent})


def disk_check(path, thresholds, statvfs=os.statvfs):
    try:
        st = statvfs(path)
    except OSError as exc:
        return could_not("disk %s" % path, "disk", "could not read disk usage of %s: %s" % (path, exc.strerror or exc))
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    usable = used + st.f_bavail * st.f_frsize  # what df shows: reserved blocks do not count as available
    percent = round(100.0 * used / usable, 1) if usable else 0.0
    return evaluate_disk(path, percent, st.f_bavail * st.f_frsize, thresholds)


def parse_meminfo(text):
    """{field: bytes} from /proc/meminfo."""
    values = {}
    for line in text.splitlines():
        key, rest = line.partition(":")[::2]
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return values


def evaluate_memory(meminfo, thresholds):
    total, available = meminfo.get("MemTotal"), meminfo.get("MemAvailable")
    if not total or available is None:
        return could_not("memory", "memory", "could not read memory usage: MemTotal/MemAvailable missing in "
                                             "/proc/meminfo")
    percent = round(100.0 * (total - available) / total, 1)
    problems = []
    _judge(problems, "memory_used_percent", percent, thresholds, "memory used", " %")
    base = "memory %s %% used, %s of %s available" % (_num(percent), human_bytes(available), human_bytes(total))
    return _verdict("memory", "memory", problems, base, {"used_percent": percent})


def memory_check(thresholds, path="/proc/meminfo"):
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError as exc:
        return could_not("memory", "memory", "could not read %s: %s" % (path, exc.strerror or exc))
    return evaluate_memory(parse_meminfo(text), thresholds)


def parse_stat(text):
    """(busy, total) jiffies from the ``cpu`` line of /proc/stat (idle and iowait count as not busy)."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            fields = [int(f) for f in line.split()[1:]]
            total = sum(fields[:8])  # guest time is already part of user/nice
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
            return total - idle, total
    raise ValueError("no cpu line in /proc/stat")


def cpu_percent(first, second):
    busy, total = second[0] - first[0], second[1] - first[1]
    return round(100.0 * busy / total, 1) if total > 0 else 0.0


def evaluate_cpu(percent, interval, thresholds):
    problems = []
    _judge(problems, "cpu_used_percent", percent, thresholds, "CPU busy", " %")
    return _verdict("cpu", "cpu", problems, "CPU %s %% busy over %s s" % (_num(percent), _num(float(interval))),
                    {"used_percent": percent})


def cpu_check(thresholds, interval=1.0, path="/proc/stat", sleep=time.sleep):
    try:
        with open(path) as handle:
            first = parse_stat(handle.read())
        sleep(interval)
        with open(path) as handle:
            second = parse_stat(handle.read())
    except (OSError, ValueError) as exc:
        return could_not("cpu", "cpu", "could not read %s: %s" % (path, getattr(exc, "strerror", None) or exc))
    return evaluate_cpu(cpu_percent(first, second), interval, thresholds)


def human_bytes(value):
    value = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return ("%.1f %s" % (value, unit)) if unit != "B" else "%d B" % value
        value /= 1024
    return "%d B" % value  # pragma: no cover


# ---------------------------------------------------------------------------------------------- backup
def evaluate_backups(directory, items, thresholds, ring=None):
    """From ``backup.describe()`` items (newest first, already filtered by engine / database).

    ``ring``: the keyring.KeyRing the inventory gives the backups now (None: not checked). When the newest backup
    made with a key was made with one that is not in it (a deleted or regenerated key file, a wrong vault), the
    next backup refuses (keyring.key_break) and no restore can read it: critical, said now rather than at the
    night's backup or the next disaster."""
    name = "backup %s" % directory
    damaged = [i for i in items if "error" in i]
    complete = [i for i in items if "error" not in i]
    if not complete:
        extra = " (%d damaged: %s)" % (len(damaged), damaged[0]["error"]) if damaged else ""
        return make_check(name, "backup", CRITICAL, "no backup in %s%s" % (directory, extra), {})
    newest = complete[0]
    verified = [i for i in complete if i.get("verified")]
    verification = newest.get("verification") or {}
    # 1 when the newest backup's latest verification passed, 0 when it failed or never ran; failed: 1 only when it
    # failed (what health calls critical and BackupVerifyFailed pages for: not a restore's safety backup, which is
    # never verified, nor a verification that could not reach the server or had the wrong key).
    metrics = {"newest_age_s": newest["age_s"], "newest_verify_passed": int(verification.get("status") == "passed"),
               "newest_verify_failed": int(verification.get("status") == "failed")}
    problems = []
    # the recorded result (backup.verify_backup) says what went wrong in its last step
    detail = (verification.get("detail") or ((verification.get("steps") or [{}])[-1] or {}).get("detail")
              or verification.get("status"))
    if verification and verification.get("status") == "error":  # the server or the key, not the backup: again
        cause = ((verification.get("steps") or [{}])[-1] or {}).get("cause")
        said = (newest["name"], verification.get("level", "?"), "the key given did not fit it" if cause == "key"
                else "the server could not be reached or logged into", detail, newest["name"])
        problems.append((WARNING, "newest backup %s could not be verified (%s: %s): %s; once that is fixed, run "
                                  "playbooks/verify_backup.yml -e backup_name=%s" % said))
    elif verification and verification.get("status") != "passed":
        problems.append((CRITICAL, "newest backup %s failed verification (%s): %s" % (
            newest["name"], verification.get("level", "?"), detail)))
    elif verification:  # passed: whole, but what it found about the data is the operator's to hear
        problems.extend((WARNING, "newest backup %s: %s" % (newest["name"], warning))
                        for warning in verification.get("data_warnings") or [])
    _judge(problems, "backup_age_hours", newest["age_s"] / 3600.0, thresholds, "newest backup age", " h")
    if verified:
        metrics["newest_verified_age_s"] = verified[0]["age_s"]
        _judge(problems, "verified_backup_age_hours", verified[0]["age_s"] / 3600.0, thresholds,
               "newest verified backup age", " h")
    else:
        problems.append((WARNING, "no verified backup (run backup_verify)"))
    if damaged:
        problems.append((WARNING, "%d damaged backup(s), e.g. %s" % (len(damaged), damaged[0]["error"])))
    if ring is not None:
        keyed = next(((i["name"], i["key_id"]) for i in complete if i.get("key_id")), None)
        broken = keyring.key_break(keyed, ring, newest.get("database") or "the database",
                                   lead="The next backup.yml will refuse, and restores of the newest backups fail")
        if broken:
            problems.append((CRITICAL, broken))
    base = "newest backup %s is %s old%s" % (newest["name"], age_text(newest["age_s"]),
                                             ", newest verified %s old" % age_text(verified[0]["age_s"])
                                             if verified else "")
    return _verdict(name, "backup", problems, base, metrics)


def backup_check(directory, thresholds, describe, engine=None, database=None, project=None, ring=None):
    """``ring``: a keyring.KeyRing, or a callable that makes one (its ArtifactError is this check's error)."""
    name = "backup %s" % directory
    if not os.path.isdir(directory):
        return could_not(name, "backup", "could not read backups: directory %s does not exist (no backup was ever "
                                         "made here: run playbooks/backup.yml)" % directory)
    try:
        items = describe(directory)
    except Exception as exc:  # noqa: BLE001 - ArtifactError, OSError
        return could_not(name, "backup", "could not read backups in %s: %s" % (directory, exc))
    try:
        ring = ring() if callable(ring) else ring
    except backup.ArtifactError as exc:
        return could_not(name, "backup", "could not check the backup key: %s" % exc)
    return evaluate_backups(directory, backup.select(items, engine, database, project), thresholds, ring)


# ------------------------------------------------------------------------------------------------ logs
def compile_patterns(patterns):
    """The ``logs.patterns`` option as compiled regexes; ValueError (bad arguments) for an invalid one."""
    compiled = []
    for pattern in patterns or ():
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError("logs.patterns: %r is not a valid regular expression: %s" % (pattern, exc)) from None
    return compiled


_DEFAULT_COMPILED = compile_patterns(DEFAULT_LOG_PATTERNS)


def is_error_line(line, patterns=None):
    """Default: JSON with level error/critical (or status >= 500), a traceback, an ERROR/CRITICAL word."""
    if patterns:
        return any(p.search(line) for p in patterns)
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            level = str(doc.get("level") or doc.get("levelname") or doc.get("severity") or "").lower()
            status = doc.get("status")
            return level in _ERROR_LEVELS or (isinstance(status, int) and not isinstance(status, bool)
                                              and status >= 500)
    return any(p.search(line) for p in _DEFAULT_COMPILED)


def _is_real_error(line):
    """An error-level record or a plain error line (not an access-log line that only has a 5xx status)."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            return True
        if isinstance(doc, dict):
            return str(doc.get("level") or doc.get("levelname") or doc.get("severity") or "").lower() in _ERROR_LEVELS
    return True


def describe_log_line(line, limit=LOG_SAMPLE_CHARS):
    """A log line as a person reads it: a JSON record as ``level status METHOD path: error: message``, so the
    part that makes it an error is never cut off; other lines as they are."""
    stripped = line.strip()
    doc = json_record(stripped)
    if doc is None:
        return stripped[:limit]
    head = [str(doc.get(k)) for k in ("level", "levelname", "severity") if doc.get(k) not in (None, "")]
    head += ["status %s" % doc["status"]] if doc.get("status") not in (None, "") else []
    head += [str(doc[k]) for k in ("method", "path") if doc.get(k)]
    tail = [str(doc[k]) for k in ("error", "message", "msg", "exc_info") if doc.get(k)]
    text = " ".join(head) + (": " + ": ".join(tail) if tail else "")
    when = doc.get("ts") or doc.get("time") or doc.get("timestamp")
    return ((text or stripped) + (" (at %s)" % when if when else ""))[:limit]


def split_timestamp(line):
    """``(epoch, text)`` of a ``docker logs --timestamps`` line; ``(None, line)`` without a stamp."""
    stamp, _sep, text = line.partition(" ")
    if len(stamp) >= 20 and stamp[4:5] == "-" and stamp[10:11] == "T":
        when = docker_epoch(stamp)  # nanoseconds, which older Pythons' ISO parsers refuse
        if when is not None:
            return when, text
    return None, line


def evaluate_logs(container, lines, since_minutes, thresholds, patterns=None, secrets=(), recent_minutes=None,
                  now=None, recent_after=None, after_why=None):
    """Error lines over ``since_minutes``, judged on the last ``recent_minutes`` (None: the whole window).

    ``lines`` are strings or ``(epoch or None, text)``; a line without a time counts as recent. An outage that is
    over (errors in the window, none recently) is a warning that says when the last error was, not critical for
    the rest of the window. ``recent_after`` (an epoch, e.g. when incident.yml restarted what was failing, or when a
    container of the stack last started) starts the judged part there when that is later: what came before it only
    warns; ``after_why`` says what happened then ("rollcall-db started"). Samples: real error records first (not
    access lines that only carry a 5xx), newest first, described so the error part is shown."""
    now = time.time() if now is None else now
    entries = [line if isinstance(line, tuple) else (None, line) for line in lines]
    errors = [(when, text) for when, text in entries if text.strip() and is_error_line(text, patterns)]
    recent_window = recent_minutes is not None and recent_minutes < since_minutes
    cutoff = now - recent_minutes * 60 if recent_window else None
    since_restart = recent_after is not None and (cutoff is None or recent_after > cutoff) and recent_after <= now
    if since_restart:
        cutoff, recent_window = recent_after, True
        part = "since %s%s UTC" % ("%s at " % after_why if after_why else "",
                                   time.strftime("%H:%M:%S", time.gmtime(recent_after)))
    else:
        part = "in the last %d min" % recent_minutes if recent_window else ""
    recent = [e for e in errors if cutoff is None or e[0] is None or e[0] >= cutoff]
    ordered = sorted(errors, key=lambda e: (not _is_real_error(e[1]), -(e[0] or now)))
    samples = [redact(describe_log_line(text), secrets) for _when, text in ordered[:LOG_SAMPLES]]
    problems = []
    _judge(problems, "log_error_lines", len(recent), thresholds,
           "error lines %s" % part if recent_window else "error lines")
    base = "container %s: %d error line(s) of %d in the last %d min" % (
        container, len(errors), len(entries), since_minutes)
    if recent_window:
        base += ", %d %s" % (len(recent), part)
        stamps = [e[0] for e in errors if e[0] is not None]
        if errors and not recent and stamps:
            problems.append((WARNING, "%d error line(s) earlier in the last %d min, none %s (the last %s ago)" % (
                len(errors), since_minutes, part, age_text(now - max(stamps)))))
    if samples:
        base += "; newest error: %s" % samples[0][:200]
    return _verdict("logs %s" % container, "logs", problems, base,
                    {"error_lines": len(errors), "recent_error_lines": len(recent)}, {"samples": samples})


def newest_start(inspects):
    """``(epoch, name)`` of the container that started last when every one of them runs, else None.
    ``inspects``: {name: inspect or None (missing)}.

    Errors logged before it are of an outage that a start ended (the database started again by hand, the app
    restarted): a check right after it judges what came since, not the last 15 minutes. While one of them is down
    the outage is not over, and no start counts."""
    starts = []
    for name, inspect in sorted(inspects.items()):
        state = (inspect or {}).get("State") or {}
        if not state.get("Running"):
            return None
        when = docker_epoch(state.get("StartedAt"))
        if when is not None and when > 0:  # the engine's "never" is year 1
            starts.append((when, name))
    return max(starts) if starts else None


def log_checks(spec, docker_api, thresholds, secrets=(), now=time.time):
    names = spec.get("containers") or []
    since = int(spec.get("since_minutes") or 60)
    recent = spec.get("recent_minutes")
    after = spec.get("recent_after")
    why = None
    patterns = compile_patterns(spec.get("patterns"))
    try:
        api = docker_api()
    except Exception as exc:  # noqa: BLE001
        return [could_not("logs %s" % n, "logs", "could not reach the Docker engine: %s" % exc) for n in names]
    stack_names = spec.get("since_started") or []
    if stack_names:
        inspects = {}
        for name in stack_names:
            try:
                inspects[name] = _inspect(api, name)
            except Exception:  # noqa: BLE001  (the container check says what is wrong with it)
                inspects[name] = None
        newest = newest_start(inspects)
        if newest and (after is None or newest[0] > float(after)):
            after, why = newest[0], "%s started" % newest[1]  # "since NAME started at HH:MM:SS UTC"
    found = []
    for name in names:
        started = now()
        try:
            inspect = _inspect(api, name)
            if inspect is None:
                raise CheckError("container %s does not exist" % name)
            # The container's own secrets (SECRET_KEY, DATABASE_URL's password) are masked in the samples too.
            known = list(secrets) + secrets_from_env((inspect.get("Config") or {}).get("Env") or [])
            raw = api.logs(name, stdout=True, stderr=True, since=int(started - since * 60), timestamps=True)
        except Exception as exc:  # noqa: BLE001
            found.append(could_not("logs %s" % name, "logs", "could not read the logs of %s: %s" % (name, exc)))
            continue
        lines = raw.decode("utf-8", "replace").splitlines() if isinstance(raw, bytes) else list(raw)
        found.append(evaluate_logs(name, [split_timestamp(line) for line in lines], since, thresholds, patterns,
                                   known, None if recent is None else int(recent), started,
                                   None if after is None else float(after), why))
    return found


# ------------------------------------------------------------------------------------------------- tls
def evaluate_tls(name, not_after, now, thresholds):
    days = round((not_after - now).total_seconds() / 86400.0, 1)
    problems = []
    if days <= 0:
        problems.append((CRITICAL, "certificate expired %s days ago" % _num(-days)))
    else:
        _judge(problems, "tls_days_left", days, thresholds, "days left")
    until = not_after.strftime("%Y-%m-%d %H:%M UTC")
    base = "%s: certificate valid until %s (%s days left)" % (name, until, _num(days))
    return _verdict(name, "tls", problems, base, {"days_left": days})


def _not_after(cert):
    value = getattr(cert, "not_valid_after_utc", None)
    if value is None:  # cryptography < 42
        value = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return value


def certificate_expiry(entry, timeout=5.0):
    """``notAfter`` (aware datetime) of a PEM file (``path``) or of what ``host``:``port`` presents."""
    if entry.get("path"):
        if not HAS_CRYPTOGRAPHY:
            raise CheckError("reading PEM files needs the Python package cryptography on the managed host")
        try:
            with open(entry["path"], "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise CheckError("could not read %s: %s" % (entry["path"], exc.strerror or exc)) from None
        try:
            return _not_after(x509.load_pem_x509_certificate(data))
        except ValueError as exc:
            raise CheckError("%s is not a PEM certificate: %s" % (entry["path"], exc)) from None
    host, port = entry["host"], int(entry.get("port") or 443)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if HAS_CRYPTOGRAPHY:
                # Only the expiry date is read here, so the handshake accepts any certificate (even an expired
                # or self-signed one, whose expiry is exactly what we want to report).
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                with context.wrap_socket(sock, server_hostname=host) as tls:
                    return _not_after(x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)))
            with ssl.create_default_context().wrap_socket(sock, server_hostname=host) as tls:
                stamp = ssl.cert_time_to_seconds(tls.getpeercert()["notAfter"])
                return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)
    except (OSError, ssl.SSLError) as exc:
        raise CheckError("could not reach %s:%d: %s" % (host, port, getattr(exc, "reason", None) or exc)) from None


def tls_name(entry):
    return entry.get("name") or ("tls %s" % entry["path"] if entry.get("path") else "tls %s:%s" % (
        entry["host"], entry.get("port") or 443))


def tls_check(entry, thresholds, expiry=certificate_expiry, now=None):
    name = tls_name(entry)
    try:
        not_after = expiry(entry)
    except Exception as exc:  # noqa: BLE001
        return could_not(name, "tls", exc)
    return evaluate_tls(name, not_after, now or datetime.datetime.now(datetime.timezone.utc), thresholds)


# ------------------------------------------------------------------------------------------------- run
def run(jobs, secrets=(), workers=8):
    """Run ``jobs`` (callables returning a check or a list of checks) concurrently; keep their order.

    A job that raises becomes a critical check (never a silent ok). Every string in the result is redacted.
    """
    def safe(job):
        try:
            found = job()
        except Exception as exc:  # noqa: BLE001
            label = getattr(job, "label", ("check", "http"))
            return [could_not(label[0], label[1], "could not run the %s check: %s" % (label[0], exc))]
        return found if isinstance(found, list) else [found]

    found = []
    if jobs:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
            for result in pool.map(safe, jobs):
                found.extend(result)
    found = redact_data(found, secrets)
    status, summary = summarize(found)
    return {"status": status, "checks": found, "summary": summary,
            "checked_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def labelled(label, kind, function, *args, **kwargs):
    """A job for ``run()`` that knows its check's name and kind (for the message should it raise)."""
    def job():
        return function(*args, **kwargs)

    job.label = (label, kind)
    return job
