# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL point-in-time recovery with pgBackRest (issue 14; docs/pitr.md), through rollcall.ops.pitr.

The decisions are pure functions (a unit test per branch in tests/unit/test_pitr.py): the server settings that
archive WAL (``configure_plan``), the backup type by age (``choose_type``), ``pgbackrest info --output=json``
read into "newest backup, newest point I can recover to" (``parse_info``, ``window``), a restore target checked
against that window (``validate_target``), ``pgbackrest verify`` judged, WAL gaps included (``parse_verify``,
``judge_verify``; pgBackRest 2.45 itself reports a gap only as DETAIL lines and exits 0), the scratch instance's
mounts and the judgement of a restore (``scratch_mounts``, ``judge_restore``).

``PITR`` carries them out. Every command is an argv list run in a container through docker.py's ContainerRunner
as the ``postgres`` user; the repository's cipher pass is only in pgBackRest's configuration file (mode 0600,
mounted read-only at /etc/pgbackrest by roles/database), never on a command line. A restore goes into a scratch
instance: a new container from the live container's image, on a new volume, with the repository mounted
read-only and no network; the live data directory is never touched.
"""

import datetime
import json
import re
import time

STANZA = "main"
PG_USER = "postgres"
DATA_DIR = "/var/lib/postgresql/data"
CONFIG_DIR = "/etc/pgbackrest"
REPO_DIR = "/var/lib/pgbackrest"
# The off-host repository (repo2: a directory of the backup host mounted on the db host with sshfs, roles/database
# with rollcall_backup_offsite_host): pgBackRest's archive-push writes every WAL segment to both repositories.
OFFSITE_REPO_DIR = "/var/lib/pgbackrest-offsite"
OFFSITE = "offsite"
TYPES = ("full", "diff", "incr")
RESTART_SETTINGS = ("archive_mode", "wal_level")
RECOVERY_LOG = "/var/lib/postgresql/rollcall-pitr-recovery.log"  # the scratch instance's server log
# info status codes (pgBackRest's INFO_STANZA_STATUS_CODE_*) meaning "the stanza exists".
STANZA_EXISTS = (0, 2, 6)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class PITRError(Exception):
    """A refusal or a failure, with a message meant for the user."""


def wanted_settings(stanza=STANZA, archive_timeout=60):
    """The server settings that archive every WAL segment to the repository within ``archive_timeout`` seconds."""
    return {
        "archive_mode": "on",
        "archive_command": "pgbackrest --stanza=%s archive-push %%p" % stanza,
        "archive_timeout": str(int(archive_timeout)),
        "wal_level": "replica",
    }


def configure_plan(live, in_file, wanted, enabled=True):
    """What to change: ``{"set": {name: value}, "reset": [names], "restart": bool}``.

    ``live``: pg_settings' value of each setting; ``in_file``: the values in postgresql.auto.conf (ALTER SYSTEM).
    Enabled: every wanted setting not already in the file is set. Disabled: ours are reset (removed from the
    file). ``restart``: archive_mode / wal_level only change with a restart, needed while the live value is not
    the one the file will hold.
    """
    if enabled:
        to_set = dict((k, v) for k, v in sorted(wanted.items()) if in_file.get(k) != v)
        reset = []
        after = dict(in_file, **to_set)
    else:
        to_set = {}
        reset = sorted(k for k in wanted if k in in_file)
        after = dict((k, v) for k, v in in_file.items() if k not in reset)
    defaults = {"archive_mode": "off", "wal_level": "replica"}
    restart = any(live.get(k) != after.get(k, defaults[k]) for k in RESTART_SETTINGS if k in live)
    return {"set": to_set, "reset": reset, "restart": restart}


def archiving(in_file, stanza=STANZA):
    """Whether the settings in postgresql.auto.conf (``in_file``, as ``configure`` reads them) archive WAL to our
    pgBackRest stanza: what a deploy with rollcall_pitr left, and a deploy with rollcall_pitr false removes."""
    command = str(in_file.get("archive_command") or "")
    return in_file.get("archive_mode") == "on" and command.startswith("pgbackrest --stanza=%s archive-push" % stanza)


def parse_auto_conf(text):
    """``{name: value}`` of a postgresql.auto.conf (ALTER SYSTEM's file: ``name = 'value'`` lines, the last one
    of a name wins; comments and blank lines skipped)."""
    settings = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("''", "'")
        settings[name.strip().lower()] = value
    return settings


def sql_literal(value):
    return "'%s'" % str(value).replace("'", "''")


def choose_type(backups, now, full_every_s=7 * 86400, diff_every_s=86400, requested="auto"):
    """(type, reason) of the next backup: full without a full one or when the newest full is ``full_every_s``
    old, diff when the newest full or diff is ``diff_every_s`` old, else incr. ``requested`` other than auto wins,
    except an incr or diff with no full backup to build on."""
    fulls = [b for b in backups if b["type"] == "full" and not b.get("error")]
    if requested != "auto":
        if requested not in TYPES:
            raise PITRError("backup type must be auto, full, diff or incr, not %r" % requested)
        if requested != "full" and not fulls:
            return "full", "asked for %s, but there is no full backup to build on" % requested
        return requested, "asked for"
    if not fulls:
        return "full", "no full backup yet"
    full_age = now - max(b["stop"] for b in fulls)
    if full_age >= full_every_s:
        return "full", "the newest full backup is %d s old (a full one every %d s)" % (full_age, full_every_s)
    base_age = now - max(b["stop"] for b in backups if b["type"] in ("full", "diff") and not b.get("error"))
    if base_age >= diff_every_s:
        return "diff", "the newest full or diff backup is %d s old (a diff every %d s)" % (base_age, diff_every_s)
    return "incr", ("the newest full backup is %d s old and a diff or full one is recent: only the changes since the "
                    "last backup" % full_age)


def iso(epoch):
    if epoch is None:
        return None
    return (EPOCH + datetime.timedelta(seconds=epoch)).isoformat().replace("+00:00", "Z")


def parse_info(text, stanza=STANZA, repo_key=None):
    """``pgbackrest info --output=json`` of one stanza: status, backups (oldest first), WAL archive range.

    With two repositories (the local one and the backup host's, ``repo1``/``repo2``) pgBackRest lists the backups
    and archive ranges of both: ``repo_key`` keeps those of one repository (each backup says its ``repo``);
    ``repos`` lists every repository's own status, and the stanza ``exists`` only when it exists in each of them
    (``repo_key``: in that one) - pgBackRest's overall code is 4, "different across repos", when one has no backup
    yet."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise PITRError("pgbackrest info did not print JSON: %s" % text[:200]) from None
    entry = next((s for s in doc if s.get("name") == stanza), None)
    if entry is None:
        return {"stanza": stanza, "status_code": 1, "status": "missing stanza", "exists": False, "backups": [],
                "archive_min": None, "archive_max": None, "newest_backup": None, "oldest_backup": None,
                "repos": [], "repo_key": repo_key}

    def in_repo(item):
        return repo_key is None or item.get("database", {}).get("repo-key", 1) == repo_key

    code = entry.get("status", {}).get("code", 99)
    repos = [{"key": r.get("key"), "status_code": r.get("status", {}).get("code", 99),
              "status": r.get("status", {}).get("message", "")} for r in entry.get("repo", [])]
    chosen = [r for r in repos if repo_key is None or r["key"] == repo_key]
    if repo_key is not None and repos and not chosen:
        raise PITRError("pgBackRest has no repository %d in its configuration (repositories: %s)"
                        % (repo_key, ", ".join(str(r["key"]) for r in repos)))
    exists = all(r["status_code"] in STANZA_EXISTS for r in chosen) if chosen else code in STANZA_EXISTS
    status = "; ".join("repo%s: %s" % (r["key"], r["status"]) for r in chosen) if len(repos) > 1 \
        else entry.get("status", {}).get("message", "")
    backups = []
    for b in entry.get("backup", []):
        if not in_repo(b):
            continue
        backups.append({
            "label": b["label"], "type": b["type"], "start": b["timestamp"]["start"],
            "stop": b["timestamp"]["stop"], "started_at": iso(b["timestamp"]["start"]),
            "finished_at": iso(b["timestamp"]["stop"]), "archive_start": b.get("archive", {}).get("start"),
            "archive_stop": b.get("archive", {}).get("stop"), "size": b.get("info", {}).get("size"),
            "repo_size": b.get("info", {}).get("repository", {}).get("size"), "error": bool(b.get("error")),
            "prior": b.get("prior"), "repo": b.get("database", {}).get("repo-key", 1),
        })
    backups.sort(key=lambda b: b["stop"])
    archives = [a for a in entry.get("archive", []) if in_repo(a)]
    mins = [a["min"] for a in archives if a.get("min")]
    maxes = [a["max"] for a in archives if a.get("max")]
    good = [b for b in backups if not b["error"]]
    return {"stanza": stanza, "status_code": code, "status": status,
            "exists": exists, "backups": backups, "cipher": entry.get("cipher"),
            "system_ids": sorted({int(d["system-id"]) for d in entry.get("db", []) if d.get("system-id")}),
            "archive_min": min(mins) if mins else None, "archive_max": max(maxes) if maxes else None,
            "newest_backup": good[-1] if good else None, "oldest_backup": good[0] if good else None,
            "repos": repos, "repo_key": repo_key}


def window(info, archiver, now):
    """The recoverable window: ``{"earliest", "latest"}`` (epoch seconds) with why, or None without a backup.

    earliest: the end of the oldest backup (a time target before it has nothing to start from). latest: when the
    server last archived a WAL segment that the repository holds (pg_stat_archiver; every commit before it is in
    the repository), never before the newest backup's end. ``archiver``: last_archived_wal/_time,
    last_failed_wal/_time (epoch or None).
    """
    if not info["newest_backup"]:
        return None
    newest_stop = info["newest_backup"]["stop"]
    latest, why = newest_stop, "the end of the newest backup"
    if archiver is None:  # a repository whose cluster is gone (restore from_repo): no archiver to ask
        latest, why = newest_stop, ("the end of the newest backup (the cluster that archived here is gone, the time "
                                    "of its last archived WAL is not known; to_time=latest recovers to its end)")
        archiver = {}
    wal, at = archiver.get("last_archived_wal"), archiver.get("last_archived_time")
    if wal and at and info["archive_max"] and wal[:24] <= info["archive_max"] and at > newest_stop:
        latest, why = at, "the last WAL segment archived (%s)" % wal[:24]
    failed_at = archiver.get("last_failed_time")
    failing = bool(failed_at and (not at or failed_at > at))
    return {"earliest": info["oldest_backup"]["stop"], "latest": latest, "earliest_at": iso(info["oldest_backup"]
            ["stop"]), "latest_at": iso(latest), "latest_why": why, "rpo_s": max(0, int(now - latest)),
            "archiving_failing": failing,
            "archiving_error": ("archiving fails since %s (segment %s); the server keeps the WAL until it "
                                "works again" % (iso(failed_at), archiver.get("last_failed_wal")))
            if failing else None}


def parse_time(text):
    """A restore target: ISO 8601 with a time zone ('2026-12-03T05:16:33Z', '... 05:16:33+01:00'), or seconds since
    the epoch (what `date +%s` prints: nine digits or more)."""
    value = str(text).strip().replace(" ", "T", 1)
    if re.fullmatch(r"\d{9,}(\.\d+)?", value):
        return float(value)
    if re.fullmatch(r"\d{4}-\d\d-\d\d", value):  # -e to_time=2026-12-03 05:16:33Z: Ansible split it at the space
        raise PITRError("to_time %r is a date without its time of day: give both, joined by T (%sT05:16:33Z). "
                        "ansible-playbook's -e NAME=VALUE ends a value at a space, so a time written after a space "
                        "was cut off" % (text, value))
    if value.endswith("Z") or value.endswith("z"):
        value = value[:-1] + "+00:00"
    if re.search(r"[+-]\d\d$", value):
        value += ":00"
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise PITRError("to_time %r is not an ISO 8601 time (e.g. 2026-12-03T05:16:33Z)" % text) from None
    if parsed.tzinfo is None:
        raise PITRError("to_time %r has no time zone; add Z (UTC) or an offset such as +01:00" % text)
    return (parsed - EPOCH).total_seconds()


def validate_target(to_time, win, now, reach_now=False, nothing="there is no pgBackRest backup yet, so nothing "
                    "to recover from; run action=backup first", oldest="the oldest backup kept",
                    later="wait for the next archived WAL segment (archive_timeout)"):
    """The target's epoch seconds when a restore can reach it, else PITRError saying why and what is possible.

    ``reach_now``: the caller archives up to now first (``PITR.archive_now``: a marker commit and a WAL switch),
    so the window reaches ``now`` (check mode: what the restore will find). ``nothing``, ``oldest``, ``later``: the
    engine's words (binlog.py: dumps and the binary log).
    """
    if win is None:
        raise PITRError(nothing)
    if to_time in (None, "", "latest"):
        return None
    target = parse_time(to_time)
    if target > now:
        raise PITRError("to_time %s is in the future" % iso(target))
    if target < win["earliest"]:
        raise PITRError("to_time %s is before the recoverable window (%s .. %s): %s ended at %s"
                        % (iso(target), win["earliest_at"], win["latest_at"], oldest, win["earliest_at"]))
    if target > win["latest"] and not reach_now:
        raise PITRError("to_time %s is after the newest point the repository can recover to, %s (%s); %s or pick "
                        "a time in %s .. %s" % (iso(target), win["latest_at"], win["latest_why"], later,
                                                win["earliest_at"], win["latest_at"]))
    return target


def pg_time(epoch):
    """A time pgBackRest's --target and PostgreSQL read: '2026-12-03 05:16:33.261357+00'."""
    return (EPOCH + datetime.timedelta(seconds=epoch)).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def next_segment(name):
    """The WAL segment after ``name`` (16 MB segments: 256 per log file)."""
    tli, log, seg = name[:8], int(name[8:16], 16), int(name[16:24], 16)
    if seg >= 0xFF:
        log, seg = log + 1, 0
    else:
        seg += 1
    return "%s%08X%08X" % (tli, log, seg)


def prev_segment(name):
    """The WAL segment before ``name``."""
    tli, log, seg = name[:8], int(name[8:16], 16), int(name[16:24], 16)
    if seg == 0:
        log, seg = log - 1, 0xFF
    else:
        seg -= 1
    return "%s%08X%08X" % (tli, log, seg)


_RANGE = re.compile(r"archiveId: (\S+), wal start: ([0-9A-F]{24}), wal stop: ([0-9A-F]{24})")
_WAL_TOTAL = re.compile(r"archiveId: (\S+), total WAL checked: (\d+), total valid WAL: (\d+)")
_BACKUP = re.compile(r"backup: (\S+), status: (\S+?),")
_COUNTS = re.compile(r"missing: (\d+), checksum invalid: (\d+), size invalid: (\d+), other: (\d+)")
_STATUS = re.compile(r"^\s*status: (.+)$", re.M)


def parse_verify(text):
    """``pgbackrest verify --output=text --log-level-console=detail`` read: status, WAL ranges, errors."""
    ranges = {}
    for archive_id, start, stop in _RANGE.findall(text):
        if (start, stop) not in ranges.setdefault(archive_id, []):
            ranges[archive_id].append((start, stop))
    status = _STATUS.findall(text)
    counts = [tuple(int(n) for n in c) for c in _COUNTS.findall(text)]
    return {"status": status[-1].strip() if status else None, "ranges": ranges,
            "wal": dict((a, {"checked": int(c), "valid": int(v)}) for a, c, v in _WAL_TOTAL.findall(text)),
            "backups": dict(_BACKUP.findall(text)),
            "bad_files": sum(sum(c) for c in counts)}


def wal_gaps(ranges):
    """[(archive_id, first missing, last missing)] between consecutive ranges of one timeline."""
    gaps = []
    for archive_id, spans in sorted(ranges.items()):
        spans = sorted(spans)
        for (_start, stop), (start, _stop) in zip(spans, spans[1:], strict=False):
            if stop[:8] != start[:8]:
                continue  # a new timeline starts its own range
            expected = next_segment(stop)
            if expected != start:
                gaps.append((archive_id, expected, prev_segment(start)))
    return gaps


def newest_backup_start(backups):
    """The first WAL segment of the newest good backup (``parse_info``'s backups), or None: recovery from it on
    needs no segment before it."""
    good = [b for b in backups or () if not b.get("error") and b.get("archive_start")]
    return max(good, key=lambda b: b.get("finished_at") or "")["archive_start"] if good else None


def gap_behind(last_missing, start):
    """A gap whose last missing segment comes before ``start`` (the newest backup's first segment, same timeline)."""
    return bool(start) and last_missing[:8] == start[:8] and last_missing < start


def judge_verify(rc, parsed, stderr="", backups=None):
    """``{"passed", "problems", "notes", "message"}`` of a verify run.

    ``backups`` (``parse_info``'s, optional): a WAL gap before the newest good backup's first segment - archiving
    was off for a while (rollcall_pitr turned off and on again), and a full backup was taken since - limits only
    recovery to a time before that backup; it is a note, not a failure. A gap after it is a failure."""
    problems, notes = [], []
    start = newest_backup_start(backups)
    if rc != 0:
        problems.append("pgbackrest verify failed (exit code %s): %s" % (rc, (stderr or "").strip()[-500:]))
    if parsed["status"] not in (None, "ok"):
        problems.append("the repository's status is %r" % parsed["status"])
    for label, status in sorted(parsed["backups"].items()):
        if status != "valid":
            problems.append("backup %s is %s" % (label, status))
    for archive_id, totals in sorted(parsed["wal"].items()):
        if totals["valid"] != totals["checked"]:
            problems.append("archive %s: %d of %d WAL segments are damaged or missing" % (
                archive_id, totals["checked"] - totals["valid"], totals["checked"]))
    if parsed["bad_files"] and not problems:
        problems.append("%d files are missing or damaged" % parsed["bad_files"])
    for archive_id, first, last in wal_gaps(parsed["ranges"]):
        missing = first if first == last else "%s .. %s" % (first, last)
        if gap_behind(last, start):
            notes.append("WAL gap in archive %s: segment %s missing, before the newest backup (which starts at %s): "
                         "a recovery to a time before that backup stops at the gap" % (archive_id, missing, start))
            continue
        problems.append("WAL gap in archive %s: segment %s missing from the repository; no recovery can go past "
                        "it (restore to a time before it, and take a full backup now so that recovery starts "
                        "after it: playbooks/backup.yml -e rollcall_pitr_backup_type=full)" % (archive_id, missing))
    if rc == 0 and parsed["status"] is None and not parsed["ranges"]:
        problems.append("pgbackrest verify printed no result (nothing in the repository?)")
    if problems:
        message = "; ".join(problems)
    else:
        message = "verified: every backup and WAL segment is readable, " + ("; ".join(notes) if notes else "no gap")
    return {"passed": not problems, "problems": problems, "notes": notes, "message": message}


def _mount_source(mounts, destination):
    return next((m.get("Name") if m.get("Type") == "volume" else m.get("Source") for m in mounts
                 if m.get("Destination") == destination), None)


def scratch_mounts(mounts, repo=None):
    """[(source, target, read_only)] the scratch instance needs from the live container's inspect ``Mounts``:
    the configuration (read-only) and the repository (read-only: a scratch never pushes WAL). ``repo``: restore
    from that repository (a host directory or a volume: the one a lost cluster archived to, or the backup host's,
    ``offsite``) instead of the live container's own. The scratch instance reads it as its repository 1."""
    if repo == OFFSITE:
        repo = _mount_source(mounts, OFFSITE_REPO_DIR)
        if not repo:
            raise PITRError("this stack has no off-host repository (nothing mounted at %s): it needs "
                            "rollcall_backup_offsite_host and a deploy with rollcall_pitr: true" % OFFSITE_REPO_DIR)
    found = {REPO_DIR: repo} if repo else {}
    for m in mounts:
        if m.get("Destination") in (CONFIG_DIR, REPO_DIR) and m["Destination"] not in found:
            found[m["Destination"]] = m.get("Name") if m.get("Type") == "volume" else m.get("Source")
    missing = [d for d in (CONFIG_DIR, REPO_DIR) if d not in found]
    if missing:
        raise PITRError("the database container has nothing mounted at %s: point-in-time recovery is off for "
                        "this stack (set rollcall_pitr: true and deploy)" % ", ".join(missing))
    return [(found[CONFIG_DIR], CONFIG_DIR, True), (found[REPO_DIR], REPO_DIR, True)]


def repo_source(repo, mounts):
    """Where a restore reads: ``"live"`` (the live container's repository) without ``repo`` or when ``repo`` is
    that one; ``"offsite"`` for ``repo=offsite`` or the live container's off-host repository (the same cluster's
    WAL, on the backup host); else ``"repository"`` (the repository of a lost cluster, e.g. after a rebuild: the
    new cluster archives to its own repository and cannot use the old one, whose stanza holds another system
    identifier)."""
    if not repo:
        return "live"
    if repo == OFFSITE:
        return OFFSITE
    wanted = str(repo).rstrip("/")
    if (_mount_source(mounts, REPO_DIR) or "").rstrip("/") == wanted:
        return "live"
    if (_mount_source(mounts, OFFSITE_REPO_DIR) or "").rstrip("/") == wanted:
        return OFFSITE
    return "repository"


def preview_target(to_time, now):
    """The target of a restore from another repository before its window is known (check mode): parsed, and
    refused in the future; ``None`` for the newest point."""
    if to_time in (None, "", "latest"):
        return None
    target = parse_time(to_time)
    if target > now:
        raise PITRError("to_time %s is in the future" % iso(target))
    return target


def data_volume(mounts):
    return next((m.get("Name") or m.get("Source") for m in mounts if m.get("Destination") == DATA_DIR), None)


WAL_SEGMENT_SIZE = 16 * 1024 * 1024  # our clusters' (initdb's default)


def parse_lsn(text):
    """``0/13000D70`` -> the byte position in the WAL (int)."""
    high, low = str(text).strip().split("/")
    return (int(high, 16) << 32) | int(low, 16)


def segment_name(timeline, lsn, segment_size=WAL_SEGMENT_SIZE):
    """The WAL segment file that holds ``lsn`` (text or int) on ``timeline``."""
    position = parse_lsn(lsn) if isinstance(lsn, str) else int(lsn)
    per_id = 0x100000000 // segment_size
    number = position // segment_size
    return "%08X%08X%08X" % (int(timeline), number // per_id, number % per_id)


def parse_stop(log):
    """Where a recovery to a time stopped, from the server's log: ``{"xid", "redo_done"}`` ("recovery stopping
    before commit of transaction N", "redo done at X/Y"), or None when it did not stop before a commit."""
    stop = re.search(r"recovery stopping before commit of transaction (\d+)", log or "")
    done = re.search(r"redo done at ([0-9A-F]+/[0-9A-F]+)", log or "")
    if not stop or not done:
        return None
    return {"xid": int(stop.group(1)), "redo_done": done.group(1)}


def parse_history(text):
    """The timeline history file a promotion wrote: its last line's parent timeline and switch point
    (``{"parent", "switch"}``), or None."""
    rows = [line.split("\t") for line in (text or "").splitlines() if line.strip() and not line.startswith("#")]
    if not rows or len(rows[-1]) < 2:
        return None
    return {"parent": int(rows[-1][0]), "switch": rows[-1][1].strip()}


WALDUMP_RECORD = re.compile(r"^rmgr: (?P<rmgr>\S+)\b.*\btx:\s+(?P<tx>\d+), lsn: (?P<lsn>[0-9A-F]+/[0-9A-F]+), "
                            r"prev (?P<prev>[0-9A-F]+/[0-9A-F]+)(?:, desc: (?P<desc>.*))?")


def waldump_records(waldump_text):
    """pg_waldump's output, one ``{"rmgr", "tx", "lsn", "prev", "desc"}`` per record line (others skipped)."""
    for line in (waldump_text or "").splitlines():
        found = WALDUMP_RECORD.search(line)
        if found:
            yield dict(found.groupdict(), tx=int(found.group("tx")), desc=found.group("desc") or "")


def last_transaction_end(waldump_text):
    """The LSN of the last COMMIT or ABORT record in pg_waldump's output (``-r Transaction``), or None."""
    ends = [r["lsn"] for r in waldump_records(waldump_text)
            if r["rmgr"] == "Transaction" and r["desc"].startswith(("COMMIT", "ABORT"))]
    return ends[-1] if ends else None


def last_invalid_mark(waldump_text):
    """The LSN of the last in-place update of ``pg_database`` (rel ``1664/0/1262``) in pg_waldump's output
    (``-r Heap``), or None: a DROP DATABASE's invalid mark (logged without a transaction id, before its transaction's
    first record); a recovery that stops just before it has nothing of the drop."""
    marks = [r["lsn"] for r in waldump_records(waldump_text)
             if r["rmgr"] == "Heap" and r["desc"].startswith("INPLACE") and re.search(r"\brel \d+/0/1262\b", r["desc"])]
    return marks[-1] if marks else None


def record_after(waldump_text, lsn):
    """The LSN of the WAL record that follows the one at ``lsn`` (its ``prev``), from pg_waldump's output."""
    return next((r["lsn"] for r in waldump_records(waldump_text) if parse_lsn(r["prev"]) == parse_lsn(lsn)), None)


def partly_dropped(state):
    """After a recovery to a time: the database is marked invalid (``datconnlimit`` -2) in the recovered cluster.
    PostgreSQL writes a DROP DATABASE's invalid mark and the removal of its files to the WAL before the transaction's
    commit, and a recovery to a time stops only at a commit: when the first commit after the target is that DROP's,
    the recovery has replayed the removal and stops before the commit. ``state``: the database's row as
    ``{"exists", "connlimit"}``."""
    return bool(state.get("exists")) and int(state.get("connlimit", -1)) == -2


def dropped_before(database, target):
    """The refusal when ``database`` is not in the cluster recovered to ``target`` at all: its DROP DATABASE
    committed before that point (or it never existed there)."""
    return ("database %s does not exist in the cluster recovered to %s: it was dropped (or not yet created) before "
            "that point; pick a time before its DROP DATABASE (a moment before the drop is enough: the restore then "
            "stops just after the last transaction that ended before it)"
            % (database, "the newest archived point" if target is None else iso(target)))


def restore_args(target, process_max=1, lsn=None):
    """pgbackrest restore's arguments: to a time, promoted there; without a target (latest), every archived
    segment replayed (``--type=default``; pgBackRest refuses ``--target-action`` with it, and PostgreSQL promotes
    at the end of the WAL by itself). Never archiving from the scratch instance. Always repository 1: the
    scratch instance has the one repository it restores from mounted there (the configuration may name a
    second one, the backup host's, which the scratch instance does not see). ``process_max`` > 1: files are
    fetched, decrypted and decompressed by that many processes (pgBackRest's default is one). ``lsn``: to just
    before that WAL record instead, into the data directory a first recovery left (``--delta``)."""
    parallel = ["--process-max=%d" % process_max] if process_max and process_max > 1 else []
    if lsn:  # just before that WAL record (the first of a transaction whose start must not be replayed)
        return ["restore", "--repo=1", "--type=lsn", "--target=%s" % lsn, "--target-exclusive",
                "--target-action=promote", "--archive-mode=off", "--delta"] + parallel
    if target is None:
        return ["restore", "--repo=1", "--type=default", "--archive-mode=off"] + parallel
    return ["restore", "--repo=1", "--type=time", "--target=%s" % pg_time(target), "--target-action=promote",
            "--archive-mode=off"] + parallel


def restore_plan(target, container, scratch, scratch_volume, image, stanza=STANZA, repo=None, offsite=None):
    """The steps a restore takes (what check mode reports). ``repo``: from that repository, not the live one;
    ``offsite``: from the live cluster's off-host repository (that path, on the backup host)."""
    to = "the newest archived point" if target is None else pg_time(target)
    first = ("archive up to now on %s (a marker commit and a WAL switch), read the recoverable window (pgbackrest "
             "info, pg_stat_archiver) and check the target" % container) if not repo else (
        "restore from the repository %s (not %s's own): read it there (pgbackrest info, verify) and check the "
        "target against its backups" % (repo, container))
    if offsite:
        first = ("archive up to now on %s (a marker commit and a WAL switch: pgBackRest pushes it to both "
                 "repositories), read the recoverable window of the backup host's repository %s (pgbackrest info "
                 "--repo=2, pg_stat_archiver) and check the target; verify that repository" % (container, offsite))
    return [
        first,
        "create volume %s and container %s from %s (no network; repository and configuration read-only)"
        % (scratch_volume, scratch, image),
        "pgbackrest --stanza=%s %s into it" % (stanza, " ".join(restore_args(target))),
        "start PostgreSQL there (archive_mode=off, TCP on its own loopback only), wait until recovery reached %s "
        "and it is promoted" % to,
        "check: the replayed point against the target, row counts of every table, the check query",
        "leave %s running for the next step (swap, dump, or removal with action=drop_scratch)" % scratch,
    ]


def judge_restore(target, state):
    """``{"passed", "problems"}`` of a started scratch instance. ``state``: in_recovery, replay_time (epoch or
    None), log (the server's log tail), counts, started (bool)."""
    problems = []
    log = state.get("log") or ""
    if not state.get("started"):
        if "recovery ended before configured recovery target was reached" in log:
            problems.append("recovery ran out of WAL before the target: the repository lacks a segment between "
                            "the backup and the target (a gap; run action=verify) or the target is past the "
                            "newest archived WAL")
        else:
            problems.append("the scratch instance did not start: %s" % (log.strip().splitlines() or ["no log"])[-1])
        return {"passed": False, "problems": problems}
    if state.get("in_recovery"):
        problems.append("the scratch instance is still in recovery (not promoted)")
    replay = state.get("replay_time")
    if target is not None and replay is not None and replay > target + 0.001:
        problems.append("recovery replayed a transaction of %s, after the target %s" % (iso(replay), iso(target)))
    if state.get("counts") is None:
        problems.append("the restored database could not be read (row counts)")
    return {"passed": not problems, "problems": problems}


def volume_archives(volume, image, docker_host=None, stanza=STANZA):
    """Whether the cluster in ``volume`` (no container runs it: removed by a teardown that kept the data) is set to
    archive WAL to the repository, read from its postgresql.auto.conf by a one-off container of ``image`` with no
    network. False when the volume does not exist (a new stack: never created here) or holds no such file."""
    from . import docker as dockerlib

    client = dockerlib.client(docker_host)
    import docker.errors  # the client above reports a missing SDK

    try:
        client.volumes.get(volume)
    except docker.errors.NotFound:
        return False
    try:
        code, out = dockerlib.run_once(client, image, ["/v/postgresql.auto.conf"], entrypoint=["cat"],
                                       network_mode="none", volumes={volume: {"bind": "/v", "mode": "ro"}})
    except docker.errors.ImageNotFound:
        raise PITRError("cannot read volume %s: the image %s is not on this host" % (volume, image)) from None
    return code == 0 and archiving(parse_auto_conf(out.decode("utf-8", "replace")), stanza)


COUNT_SQL = (
    "SELECT coalesce(json_object_agg(table_schema || '.' || table_name, (xpath('/row/c/text()', query_to_xml("
    "format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text::bigint), "
    "'{}') FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
    "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
)


def other_cluster(system_ids, system_id, container):
    """The refusal to archive into a repository whose stanza was made for other clusters (``system_ids``, from
    ``pgbackrest info``) than this one (``system_id``: pg_control_system()), or None. The volume is there, so
    lost_server_repo let the deploy go on: a stack rebuilt without point-in-time recovery after a teardown with
    volumes (``make demo``), then ``-e rollcall_pitr=true``. Before, the deploy turned archiving on (ALTER SYSTEM,
    a restart) and then failed with pgBackRest's "[028] backup and archive info files exist but do not match the
    database", leaving a server whose every WAL segment failed to archive."""
    ids = [int(i) for i in system_ids or []]
    if not ids or system_id is None or int(system_id) in ids:
        return None
    return ("Point-in-time recovery was not turned on for %s: the repository (rollcall_pitr_repo) holds the archive "
            "of another PostgreSQL cluster (system identifier %s; this one's is %s), one that a teardown with volumes "
            "or a lost volume removed. That archive is the only copy of its last writes, and this cluster cannot "
            "archive into it. Set rollcall_pitr_repo to a new directory in the inventory and deploy again; restore "
            "the lost cluster's writes with playbooks/restore.yml -e to_time=latest -e pitr_from_repo=<the old "
            "repository> (docs/pitr.md, After losing the database), or move the old repository away first."
            % (container, ", ".join(str(i) for i in ids), system_id))


def lost_server_repo(engine, volume, volume_exists, repo, archive_found, database="sms"):
    """A deploy that would start a new database server on the archive of a lost one: refuse it (the reason), or None.

    ``volume_exists``: the stack's data volume is there (the server it holds goes on); without it the deploy starts a
    new server (after ``teardown.yml -e teardown_volumes=true``, or a lost volume). ``archive_found``: the
    point-in-time repository ``repo`` holds an archive (PostgreSQL: a stanza; MariaDB: archived binary log files).
    That archive is the lost server's, the only copy of its last writes, and the new server cannot archive into it:
    PostgreSQL's stanza holds another system identifier (pgBackRest's check fails with error 028 after the server
    is up), MariaDB's new log files reuse the archived names (every backup.yml then fails after its dump). The way
    on is docs/pitr.md "After losing the database": a new repository, the deploy, a restore from the old one."""
    if volume_exists or not archive_found:
        return None
    what = {"postgresql": "PostgreSQL cluster", "mariadb": "MariaDB server"}.get(engine, "%s server" % engine)
    return ("Nothing was changed: the database volume %s does not exist, so this deploy would start a new %s, but "
            "the point-in-time repository %s holds the archive of the one that volume held (removed by a teardown "
            "with volumes, or lost). That archive is the only copy of its last writes, and a new server cannot "
            "archive into it. To rebuild and recover them: set rollcall_pitr_repo to a new directory in the "
            "inventory (for example %s-2), deploy again (with -e rollcall_db_rebuild=true unless a teardown forgot "
            "the stack's release history), then run playbooks/restore.yml -e to_time=latest "
            "-e pitr_from_repo=%s -e confirm=%s (docs/pitr.md, After losing the database). To start afresh without "
            "that data, move %s somewhere else first."
            % (volume, what, repo, repo.rstrip("/"), repo, database, repo))


class PITR:
    """pgBackRest and psql in the live database container (and in a scratch instance)."""

    def __init__(self, container, docker_host=None, stanza=STANZA, runner=None):
        self.container = container
        self.docker_host = docker_host
        self.stanza = stanza
        if runner is None:
            from .docker import ContainerRunner
            runner = ContainerRunner(container, docker_host)
        self.runner = runner

    def pgbackrest(self, *args, runner=None, console="warn"):
        argv = ["pgbackrest", "--stanza=%s" % self.stanza, "--log-level-console=%s" % console,
                "--log-level-stderr=error"] + list(args)
        return (runner or self.runner).run(argv, user=PG_USER)

    def must(self, result, what):
        if result.rc != 0:
            raise PITRError("%s failed: %s" % (what, result.explained((result.stderr or result.text).strip()
                                                                      [-800:])))
        return result

    def sql(self, query, database="postgres", runner=None):
        result = (runner or self.runner).run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", "-d", database,
                                              "-c", query], user=PG_USER)
        return self.must(result, "psql").text.strip()

    # -- reading ------------------------------------------------------------------------------------------------
    def info(self, repo_key=None):
        return parse_info(self.must(self.pgbackrest("info", "--output=json"), "pgbackrest info").text, self.stanza,
                          repo_key)

    def archiver(self):
        row = json.loads(self.sql(
            "SELECT json_build_object('last_archived_wal', last_archived_wal, 'last_archived_time', "
            "extract(epoch FROM last_archived_time), 'last_failed_wal', last_failed_wal, 'last_failed_time', "
            "extract(epoch FROM last_failed_time)) FROM pg_stat_archiver"))
        return row

    def archive_now(self, wait_s=60):
        """Make the repository reach now: a commit (a marker transaction: recovery to a time stops at the first
        commit after it, and a quiet database has none) and a WAL switch, then wait until that segment is
        archived. Returns the segment."""
        self.sql("SELECT pg_current_xact_id()")  # assigns a transaction id: its commit is logged with a time
        segment = self.sql("SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.time() + wait_s
        while True:
            archiver = self.archiver()
            last = archiver.get("last_archived_wal") or ""
            if last[:8] == segment[:8] and last[:24] >= segment:
                return segment
            if time.time() > deadline:
                raise PITRError("WAL segment %s was not archived within %d s (last archived: %s; last failure: %s at "
                                "%s); check the repository with action=check" % (
                                    segment, wait_s, last or "none", archiver.get("last_failed_wal"),
                                    iso(archiver.get("last_failed_time"))))
            time.sleep(0.5)

    def status(self, now=None, repo_key=1):
        """The repository's backups and the recoverable window: repository 1 (the local one, what a restore reads)
        unless ``repo_key`` says another (2: the backup host's)."""
        now = now or time.time()
        info = self.info(repo_key)
        return info, window(info, self.archiver(), now)

    def file_settings(self, names):
        """Our settings as postgresql.auto.conf holds them (ALTER SYSTEM), {name: value}."""
        # The names are ours (wanted_settings), quoted by sql_literal.
        file_sql = ("SELECT coalesce(json_object_agg(name, setting), '{}') FROM pg_file_settings WHERE name IN (%s) "
                    "AND sourcefile LIKE '%%postgresql.auto.conf' AND error IS NULL")
        return json.loads(self.sql(file_sql % ", ".join(sql_literal(n) for n in names)))

    def archives(self):
        """Whether the server is set to archive WAL to the repository (``archiving``; reads, changes nothing)."""
        return archiving(self.file_settings(wanted_settings(self.stanza)), self.stanza)

    # -- changing -----------------------------------------------------------------------------------------------
    def configure(self, enabled, archive_timeout, check_mode):
        if enabled:
            self.check_owner()
        wanted = wanted_settings(self.stanza, archive_timeout)
        names = ", ".join(sql_literal(n) for n in wanted)
        # The names are ours (wanted_settings), quoted by sql_literal.
        live_sql = "SELECT coalesce(json_object_agg(name, setting), '{}') FROM pg_settings WHERE name IN (%s)"
        live = json.loads(self.sql(live_sql % names))
        in_file = self.file_settings(wanted)
        plan = configure_plan(live, in_file, wanted, enabled)
        if not check_mode:
            for name, value in sorted(plan["set"].items()):
                self.sql("ALTER SYSTEM SET %s = %s" % (name, sql_literal(value)))
            for name in plan["reset"]:
                self.sql("ALTER SYSTEM RESET %s" % name)
            if plan["set"] or plan["reset"]:
                self.sql("SELECT pg_reload_conf()")
        return plan

    def check_owner(self):
        """PITRError (``other_cluster``) when the repository's stanza belongs to another cluster; a repository
        pgBackRest cannot read yet (no stanza, a first run) is left to the steps after."""
        try:
            ids = self.info().get("system_ids")
        except PITRError:
            return
        if ids:
            problem = other_cluster(ids, self.sql("SELECT system_identifier FROM pg_control_system()"), self.container)
            if problem:
                raise PITRError(problem)

    def restart(self, wait_s=120):
        """Restart the live server (archive_mode / wal_level) and wait until it accepts connections."""
        from . import docker as dockerlib

        dockerlib.restart(self.container, self.docker_host)
        deadline = time.time() + wait_s
        while True:
            try:
                ready = self.runner.run(["pg_isready", "-q"], user=PG_USER).rc == 0
            except Exception:  # noqa: BLE001 - the container is coming back; asked again below
                ready = False
            if ready:
                return
            if time.time() > deadline:
                raise PITRError("%s did not accept connections within %d s of its restart"
                                % (self.container, wait_s))
            time.sleep(1)

    def stanza_create(self, check_mode):
        info = self.info()
        if info["exists"]:
            return False
        if not check_mode:
            self.must(self.pgbackrest("stanza-create"), "pgbackrest stanza-create")
        return True

    def check(self):
        result = self.pgbackrest("check")
        return {"passed": result.rc == 0, "message": "WAL archiving works: a segment reached the repository"
                if result.rc == 0 else result.explained((result.stderr or result.text).strip()[-800:])}

    def backup(self, kind, process_max, compress_type, compress_level, now=None, full_every_s=7 * 86400,
               diff_every_s=86400, check_mode=False, repo_key=1):
        """A physical backup into repository ``repo_key`` (1: the local one, 2: the backup host's), its type
        chosen from that repository's own backups (each repository has its own chain and retention)."""
        now = now or time.time()
        before = self.info(repo_key)
        chosen, why = choose_type(before["backups"], now, full_every_s, diff_every_s, kind)
        if check_mode:
            return {"type": chosen, "why": why, "backup": None, "repo": repo_key,
                    "repos": [r["key"] for r in before["repos"]] or [1]}
        args = ["backup", "--repo=%d" % repo_key, "--type=%s" % chosen, "--process-max=%d" % process_max,
                "--compress-type=%s" % compress_type, "--start-fast"]
        if compress_level is not None:
            args.append("--compress-level=%d" % compress_level)
        self.must(self.pgbackrest(*args), "pgbackrest backup (repository %d)" % repo_key)
        after = self.info(repo_key)
        return {"type": chosen, "why": why, "backup": after["newest_backup"], "repo": repo_key,
                "repos": [r["key"] for r in after["repos"]] or [1]}

    def verify(self, repo_key=1):
        result = self.pgbackrest("verify", "--repo=%d" % repo_key, "--output=text", console="detail")
        parsed = parse_verify(result.text)
        try:  # the backups' first segments: a gap before the newest backup is only a note
            backups = self.info(repo_key)["backups"]
        except PITRError:
            backups = None
        verdict = judge_verify(result.rc, parsed, result.stderr, backups)
        if repo_key != 1 and not verdict["passed"]:
            verdict["message"] = "repository %d (the backup host's): %s" % (repo_key, verdict["message"])
        return dict(verdict, ranges=parsed["ranges"], repo=repo_key)

    # -- the scratch instance -------------------------------------------------------------------------------------
    def _database_row(self, runner, database):
        """``{"exists", "connlimit"}`` of ``database`` in the cluster ``runner`` reaches."""
        # the name quoted by sql_literal
        return json.loads(self.sql(
            "SELECT coalesce((SELECT json_build_object('exists', true, 'connlimit', datconnlimit) FROM pg_database "  # noqa: S608
            "WHERE datname = %s), json_build_object('exists', false))" % sql_literal(database), runner=runner))

    def _before_partial_drop(self, runner, database, row):
        """After a recovery to a time in the scratch instance: when ``database`` (its ``row``, ``_database_row``)
        came back marked invalid (``partly_dropped``), the LSN to recover to instead (exclusive): the record after the
        last transaction that ended before the stop, so that nothing of the DROP DATABASE the recovery stopped before
        is replayed (read with pg_waldump from the archived segments around the stop); else None. PITRError when that
        record cannot be found (the restore cannot reach a point before the drop)."""
        if not partly_dropped(row):
            return None
        log = runner.run(["tail", "-n", "80", RECOVERY_LOG], user=PG_USER).text
        stop = parse_stop(log)
        timeline = self.sql("SELECT timeline_id FROM pg_control_checkpoint()", runner=runner)
        history = runner.run(["cat", "%s/pg_wal/%08X.history" % (DATA_DIR, int(timeline))], user=PG_USER)
        switched = parse_history(history.text) if history.rc == 0 else None
        if not stop or not switched:
            raise PITRError("database %s is not in the cluster recovered to the time (dropped, or its DROP DATABASE "
                            "replayed in part), and the point before it was not found in the recovery's log; pick "
                            "an earlier time" % database)
        segment = segment_name(switched["parent"], stop["redo_done"])
        before = segment_name(switched["parent"], max(parse_lsn(stop["redo_done"]) - WAL_SEGMENT_SIZE, 0))
        wal_dir = "/var/lib/postgresql/rollcall-wal"  # in the scratch instance, beside its recovery log
        runner.run(["mkdir", "-p", wal_dir], user=PG_USER)
        fetched = [name for name in dict.fromkeys([before, segment]) if self.pgbackrest(
            "archive-get", name, "%s/%s" % (wal_dir, name), runner=runner).rc == 0]
        # Just after the last transaction that ended before the stop: the DROP's invalid mark (an in-place update
        # of pg_database, logged without a transaction id) comes before its transaction's first record.
        lsn = None
        if fetched:
            ends = runner.run(["pg_waldump", "--path=%s" % wal_dir, "--rmgr=Transaction", "--end=%s"
                               % stop["redo_done"]] + fetched, user=PG_USER)
            end = last_transaction_end(ends.text)
            if end:
                following = runner.run(["pg_waldump", "--path=%s" % wal_dir, "--timeline=%d" % switched["parent"],
                                        "--start=%s" % end, "--limit=2"], user=PG_USER)
                lsn = record_after(following.text, end)
            if not lsn:  # no transaction ended in these segments: just before the DROP's invalid mark itself
                marks = runner.run(["pg_waldump", "--path=%s" % wal_dir, "--timeline=%d" % switched["parent"],
                                    "--rmgr=Heap", "--end=%s" % stop["redo_done"]] + fetched, user=PG_USER)
                lsn = last_invalid_mark(marks.text)
        if not lsn:
            raise PITRError("database %s is not in the cluster recovered to the time: the recovery stopped before the "
                            "commit of transaction %d (a DROP DATABASE, whose removal PostgreSQL writes before its "
                            "commit) and neither the last transaction before it nor its invalid mark was found in the "
                            "archived WAL; pick a time before the last change made before the drop"
                            % (database, stop["xid"]))
        return lsn

    def restore(self, to_time, scratch, scratch_volume, query=None, database="postgres", keep_failed=False,
                check_mode=False, wait_s=300, now=None, repo=None, process_max=1):
        from . import docker as dockerlib

        now = now or time.time()
        live = dockerlib.inspect(self.container, self.docker_host)
        source = repo_source(repo, live.get("Mounts", []))
        from_repo = repo if source == "repository" else None
        mounts = scratch_mounts(live.get("Mounts", []), OFFSITE if source == OFFSITE else from_repo)
        offsite = mounts[1][0] if source == OFFSITE else None
        if from_repo:  # the repository is read in the scratch instance, where it is mounted
            info, win, target = None, None, preview_target(to_time, now)
        else:  # the live cluster: its archiver says how far its repositories reach (both get every segment)
            if not check_mode:  # "latest" of a live cluster is now: its current segment archived first
                self.archive_now()
            info, win = self.status(time.time(), repo_key=2 if offsite else 1)
            target = validate_target(to_time, win, now, reach_now=check_mode)
        if scratch_volume == data_volume(live.get("Mounts", [])) or scratch == self.container:
            raise PITRError("the scratch instance must be new: %s / %s is the live database"
                            % (scratch, scratch_volume))
        image = live["Config"]["Image"]
        plan = restore_plan(target, self.container, scratch, scratch_volume, image, self.stanza, from_repo, offsite)
        result = {"plan": plan, "target": iso(target) if target is not None else None, "window": win,
                  "scratch": scratch, "scratch_volume": scratch_volume, "image": image, "source": source,
                  "repo": from_repo or offsite}
        if check_mode:
            return result
        from .docker import ContainerRunner

        started = time.time()
        timings, mark = {}, [started]

        def took(step):  # seconds per step (RV timings): where a restore's time goes
            timings[step] = round(time.time() - mark[0], 2)
            mark[0] = time.time()

        dockerlib.run_scratch(scratch, image, scratch_volume, DATA_DIR, mounts, self.docker_host,
                              labels={"rollcall.pitr.of": self.container})
        took("scratch_container")
        try:
            runner = ContainerRunner(scratch, self.docker_host)
            if from_repo or offsite:  # read and verified where the scratch instance has it: its repository 1
                info = parse_info(self.must(self.pgbackrest("info", "--repo=1", "--output=json", runner=runner),
                                            "pgbackrest info").text, self.stanza, 1)
                checked = self.pgbackrest("verify", "--repo=1", "--output=text", console="detail", runner=runner)
                verdict = judge_verify(checked.rc, parse_verify(checked.text), checked.stderr)
                if not verdict["passed"]:
                    raise PITRError("the repository %s: %s" % (from_repo or offsite, verdict["message"]))
            if from_repo:
                win = window(info, None, time.time())
                target = validate_target(to_time, win, now)
                result.update(window=win, target=iso(target) if target is not None else None,
                              plan=restore_plan(target, self.container, scratch, scratch_volume, image,
                                                self.stanza, from_repo))

            def recover(args):
                self.must(self.pgbackrest(*args, runner=runner), "pgbackrest restore")
                took("pgbackrest_restore")
                start = runner.run(["pg_ctl", "-D", DATA_DIR, "-w", "-t", str(wait_s), "-l", RECOVERY_LOG, "start",
                                    "-o", "-c listen_addresses=127.0.0.1 -c archive_mode=off"], user=PG_USER)
                found = {"started": start.rc == 0}
                deadline = time.time() + wait_s
                while found["started"]:
                    row = json.loads(self.sql("SELECT json_build_object('in_recovery', pg_is_in_recovery(), "
                                              "'replay_time', extract(epoch FROM pg_last_xact_replay_timestamp()))",
                                              runner=runner))
                    found.update(row)
                    if not row["in_recovery"] or time.time() > deadline:
                        break
                    time.sleep(0.5)
                took("start_and_recovery")
                return found

            state = recover(restore_args(target, process_max))
            if state["started"] and database != "postgres":
                row = self._database_row(runner, database)
                if not row["exists"]:
                    raise PITRError(dropped_before(database, target))
                lsn = self._before_partial_drop(runner, database, row) if target is not None else None
                if lsn:
                    runner.run(["pg_ctl", "-D", DATA_DIR, "-w", "-m", "fast", "stop"], user=PG_USER)
                    state = recover(restore_args(target, process_max, lsn=lsn))
                    result["stopped_before"] = (
                        "WAL position %s, where the transaction that dropped database %s begins: a recovery to "
                        "the time replayed its removal (PostgreSQL writes it before the commit), so the restore "
                        "stopped just after the last transaction that ended before it" % (lsn, database))
            if state["started"]:
                state["counts"] = json.loads(self.sql(COUNT_SQL, database=database, runner=runner) or "{}")
                took("counts")
                if query:
                    result["query_result"] = self.sql(query, database=database, runner=runner)
            tail = runner.run(["tail", "-n", "20", RECOVERY_LOG], user=PG_USER)
            state["log"] = tail.text
            verdict = judge_restore(target, state)
        except Exception:
            if not keep_failed:
                dockerlib.remove_scratch(scratch, scratch_volume, self.docker_host)
            raise
        result.update(verdict, recovered_to=iso(state.get("replay_time")), counts=state.get("counts"),
                      log=state["log"].strip().splitlines()[-5:], duration_s=round(time.time() - started, 1),
                      timings=timings)
        if not verdict["passed"] and not keep_failed:
            dockerlib.remove_scratch(scratch, scratch_volume, self.docker_host)
            result["scratch_removed"] = True
        return result


def summary(info, win):
    """What backup_info says about point-in-time recovery: the newest physical backup and recoverable point."""
    newest = info["newest_backup"]
    return {
        "stanza": info["stanza"], "status": info["status"], "backups": len(info["backups"]),
        "newest_backup": newest["label"] if newest else None,
        "newest_backup_type": newest["type"] if newest else None,
        "newest_backup_at": newest["finished_at"] if newest else None,
        "earliest_recoverable_at": win["earliest_at"] if win else None,
        "newest_recoverable_at": win["latest_at"] if win else None,
        "rpo_s": win["rpo_s"] if win else None,
        "archiving_error": win["archiving_error"] if win else None,
    }


def read_summary(container, docker_host=None, stanza=STANZA):
    """``summary`` of the live container's repository (pgbackrest info and pg_stat_archiver, read-only)."""
    info, win = PITR(container, docker_host, stanza).status()
    return summary(info, win)
