# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MariaDB point-in-time recovery: the binary log archived into a repository, replayed onto a dump (issue 14;
docs/pitr.md), through rollcall.ops.binlog.

The server writes every change to its binary log (``--log-bin``, ROW format: roles/database turns it on with
``rollcall_pitr``). Our dumps then record the log position of their snapshot (``mysqldump --master-data=2``,
``manifest["mysql"]["binlog"]``). Recovery to a time = the newest dump finished before it, loaded into a scratch
instance, plus the log from the dump's position up to that time (``mariadb-binlog --stop-datetime``).

The archive ("the repository", a directory next to the backups; default ``<backup dir>/pitr/<project>``): every
closed log file, streamed out of the container, compressed and encrypted with the backup key like a dump
(artifact.py), with a signed manifest of its own (``<file>.manifest.json``: size and sha256 of the log, its event
count, first and last event times, the file it rotated to). ``FLUSH BINARY LOGS`` closes the file being
written, so an archive run reaches now. Verification reads every archived file: signature, checksum, every
event's CRC32, and the chain (the numbers follow each other and each file's closing rotate event names the next:
a missing file is a gap, named).

The decisions are pure functions with a unit test per branch (tests/unit/test_binlog.py): reading a log's events
(``Scanner``), what to archive (``archive_plan``), the gaps (``gaps``), the base dump and the files a target needs
(``choose_base``, ``files_for``), the recoverable window (``window``) and the target checked against it
(``validate_target``), the replay's command (``replay_argv``). ``BinlogPITR`` carries them out: SQL through the
MySQL adapter (engines/mysql.py), files and the scratch instance through docker.py.

Resolution: the log's event times are whole seconds. A replay to ``T`` applies the events stamped before the
second of ``T`` (``--stop-datetime`` = ``T`` rounded down): nothing written after ``T`` is ever replayed; writes in
the same second as ``T`` are not either.
"""

import contextlib
import datetime
import os
import re
import struct
import tempfile
import time
import zlib

from . import artifact
from .pitr import PITRError, iso, parse_time
from .pitr import validate_target as pitr_target

MAGIC = b"\xfebin"
HEADER = struct.Struct("<IBIIIH")  # timestamp, type code, server id, event length, next position, flags
STOP_EVENT, ROTATE_EVENT, FORMAT_DESCRIPTION_EVENT = 3, 4, 15
COMMITTING = (2, 16)  # QUERY_EVENT (DDL, COMMIT of a statement-logged transaction), XID_EVENT (InnoDB commit)
LOG_IN_USE = 0x1  # the format description event's flag while the server still writes the file
CHECKSUM_CRC32 = 1
NAME = re.compile(r"^(?P<base>[A-Za-z0-9_-][A-Za-z0-9_.-]*)\.(?P<seq>\d{6,})$")
KIND = "binlog"
DATA_DIR = "/var/lib/mysql"
REPLAY_DIR = "/srv/rollcall-binlog"  # in the scratch container, outside the data directory
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def sequence(name):
    """(base, number) of a log file name (``mariadb-bin.000012`` -> ("mariadb-bin", 12)), else PITRError."""
    match = NAME.match(name or "")
    if not match:
        raise PITRError("%r is not a binary log file name (like mariadb-bin.000012)" % name)
    return match.group("base"), int(match.group("seq"))


def next_name(name):
    base, number = sequence(name)
    digits = len(name) - len(base) - 1
    return "%s.%0*d" % (base, digits, number + 1)


# -------------------------------------------------------------------------------------------- reading a log
class EventStream:
    """A binary log streamed in chunks of any size, split into whole events: ``feed(data)`` returns
    [(position, event bytes)]. The first problem (no magic number, an impossible length) ends the stream
    (``broken``); ``end_problem()`` says what is wrong once the input ended (that, or empty, or truncated)."""

    def __init__(self):
        self.buffer = bytearray()
        self.offset = 0  # file position of buffer[0]
        self.started = False  # the magic number was read
        self.broken = None

    def feed(self, data):
        if self.broken:
            return []
        self.buffer += data
        if not self.started:
            if len(self.buffer) < len(MAGIC):
                return []
            if bytes(self.buffer[:4]) != MAGIC:
                return self._break("not a binary log (no magic number at the start)")
            del self.buffer[:4]
            self.offset, self.started = 4, True
        events = []
        while len(self.buffer) >= HEADER.size:
            length = HEADER.unpack_from(self.buffer)[3]
            if length < HEADER.size:
                return events + self._break("event at position %d has an impossible length %d (damaged)"
                                            % (self.offset, length))
            if len(self.buffer) < length:
                break
            events.append((self.offset, bytes(self.buffer[:length])))
            del self.buffer[:length]
            self.offset += length
        return events

    def _break(self, problem):
        self.broken = problem
        self.buffer.clear()
        return []

    def end_problem(self):
        if self.broken:
            return self.broken
        if not self.started:
            return "empty or cut before its first event (no magic number)"
        if self.buffer:
            return ("cut in the middle of an event at position %d (%d bytes left over): truncated"
                    % (self.offset, len(self.buffer)))
        return None


def checksum_of(format_description):
    """"crc32" or "none": the algorithm a log's format description event names (its last byte before its own
    CRC32, which it has only when the algorithm is CRC32)."""
    return "crc32" if len(format_description) > 24 and format_description[-5] == CHECKSUM_CRC32 else "none"


FLAGS_AT = HEADER.size - 2  # the header's flags field


def closed_copy(format_description):
    """A format description event with its in-use flag clear, as in a file its server closed."""
    event = bytearray(format_description)
    struct.pack_into("<H", event, FLAGS_AT, struct.unpack_from("<H", event, FLAGS_AT)[0] & ~LOG_IN_USE)
    return bytes(event)


def crc_view(event, code, flags):
    """The bytes an event's CRC32 covers, as the server computed it: a format description event's with its in-use
    flag clear. The server sets that flag while it writes the file and clears it in place when it closes the file,
    without a new CRC32 (MariaDB's event_checksum_test masks it the same way); the file a crashed server was writing
    keeps it set. Before, every such file failed its check ("event at position 4 fails its CRC32 checksum
    (damaged)"): after a database crash (docker kill, OOM, power loss) no backup.yml could archive the log again."""
    if code == FORMAT_DESCRIPTION_EVENT and flags & LOG_IN_USE:
        return closed_copy(event)[:-4]
    return event[:-4]


def event_body(event, checksum):
    """An event without its header and CRC32."""
    return event[HEADER.size:len(event) - (4 if checksum == "crc32" else 0)]


class Scanner:
    """Reads a binary log's events as it streams past (any chunk sizes): counts them, checks each event's length,
    position and CRC32, and keeps the first and last event times and the file a closing rotate event names.

    ``start`` / ``stop`` (optional): the position replay starts at and the epoch second it stops at (the first
    event stamped at or after it ends the replay, as ``mariadb-bin --stop-datetime`` does); ``replayed_to`` is
    then the time of the last event replay applies.
    """

    def __init__(self, start=None, stop=None):
        self.stream = EventStream()
        self.events = 0
        self.first_at = self.last_at = None
        self.next_file = None
        self.in_use = False
        self.closed = False
        self.checksum = None
        self.problems = []
        self.start, self.stop = start, stop
        self.stopped = False
        self.replayed_to = None

    def feed(self, data):
        for at, event in self.stream.feed(data):
            self._event(at, event, *HEADER.unpack_from(event))

    def _event(self, at, event, when, code, _server, _length, next_pos, flags):
        self.events += 1
        if code == FORMAT_DESCRIPTION_EVENT and self.checksum is None:
            self.checksum = checksum_of(event)
            self.in_use = bool(flags & LOG_IN_USE)
        if self.checksum == "crc32":  # every event, the format description included, ends with its CRC32
            stored = struct.unpack_from("<I", event, len(event) - 4)[0]
            if zlib.crc32(crc_view(event, code, flags)) & 0xFFFFFFFF != stored and len(self.problems) < 5:
                self.problems.append("event at position %d fails its CRC32 checksum (damaged)" % at)
        if next_pos and next_pos != at + len(event) and len(self.problems) < 5:
            self.problems.append("event at position %d says the next one is at %d, not %d (damaged)"
                                 % (at, next_pos, at + len(event)))
        if self.first_at is None:
            self.first_at = when
        self.last_at = when if self.last_at is None else max(self.last_at, when)
        self.closed = code in (ROTATE_EVENT, STOP_EVENT)
        if code == ROTATE_EVENT:
            self.next_file = event_body(event, self.checksum)[8:].decode("utf-8", "replace") or None
        if not self.stopped and code in COMMITTING:
            if self.stop is not None and when >= self.stop:
                self.stopped = True
            elif self.start is None or at >= self.start:
                self.replayed_to = when if self.replayed_to is None else max(self.replayed_to, when)

    def result(self):
        ended = self.stream.end_problem()
        problems = self.problems + ([ended] if ended else [])
        return {"events": self.events, "first_at": self.first_at, "last_at": self.last_at,
                "next_file": self.next_file, "closed": self.closed and not self.in_use, "checksum": self.checksum,
                "problems": problems}


# ---------------------------------------------------------------------------------------- keeping one database
QUERY_EVENTS = (2, 165)  # QUERY_EVENT, QUERY_COMPRESSED_EVENT: the default database is in the same place
TABLE_MAP_EVENT = 19
ANNOTATE_ROWS_EVENT = 160
ROWS_EVENTS = (23, 24, 25, 30, 31, 32, 166, 167, 168, 169, 170, 171)  # write/update/delete, v1/v2/compressed
STMT_END_F = 0x1
# The file's GTID state and checkpoint, at its start: kept before the start position too (mariadb-binlog checks that
# the GTIDs it reads continue the state the first file begins with).
FILE_STATE_EVENTS = (161, 163)  # BINLOG_CHECKPOINT_EVENT, GTID_LIST_EVENT
TRANSACTION_CONTROL = (b"BEGIN", b"COMMIT", b"ROLLBACK", b"XA ")


class DatabaseFilter:
    """A binary log rewritten to hold only ``database``'s changes from position ``start`` on, for mariadb-binlog
    to turn into SQL. Its own ``--database`` does this wrong for a statement whose rows span two databases (our
    audit triggers write every change of the app's tables into ``<db>_audit``): it drops the event that ends the
    statement and prints the rest without its ``BINLOG '`` line, which the server rejects.

    Kept: the format description and the file's GTID state; everything outside row statements except statements
    whose default database is another one (mariadb-binlog's rule for statements; BEGIN/COMMIT always); of a row
    statement (annotate, table maps, rows events up to the one flagged STMT_END_F) the table maps and rows of
    ``database`` only, the last kept rows event flagged as the statement's end. Every kept event gets its new
    position and CRC32.
    """

    def __init__(self, database, start=None, stop=None):
        self.database = database.encode("utf-8")
        # `db`. in a statement of another default database that changes tables (a restore's swap renames the
        # tables without one): dropping it would replay later rows onto the wrong tables, so it stops the replay.
        self.foreign_ddl = re.compile(rb"^\s*(RENAME|DROP|ALTER|TRUNCATE|CREATE)\b.*`%s`\s*\." % re.escape(
            database.replace("`", "``").encode("utf-8")), re.I | re.S)
        self.start, self.stop = start, stop
        self.stream = EventStream()
        self.out_offset = 0  # nothing written yet; 4 after the magic number
        self.checksum = None
        self.pending = []
        self.tables = {}
        self.dropped = 0

    def feed(self, data):
        events = self.stream.feed(data)
        if self.stream.broken:
            raise PITRError(self.stream.broken)
        out = []
        if self.stream.started and not self.out_offset:
            out.append(MAGIC)
            self.out_offset = len(MAGIC)
        for at, event in events:
            out.extend(self._event(event, at))
        return b"".join(out)

    def close(self):
        ended = self.stream.end_problem()
        if ended and self.stream.started:  # an empty input gives an empty output; the Scanner beside says so
            raise PITRError("the binary log is %s" % ended)
        return b"".join(self._flush())

    def _body(self, event):
        return event_body(event, self.checksum)

    def _emit(self, event, flags=None):
        event = bytearray(event)
        struct.pack_into("<I", event, 13, self.out_offset + len(event))  # next position
        if flags is not None:
            struct.pack_into("<H", event, HEADER.size + 6, flags)
        if self.checksum == "crc32":
            struct.pack_into("<I", event, len(event) - 4, zlib.crc32(bytes(event[:-4])) & 0xFFFFFFFF)
        self.out_offset += len(event)
        return bytes(event)

    def _event(self, event, at):
        code = event[4]
        if code == FORMAT_DESCRIPTION_EVENT and self.checksum is None:
            self.checksum = checksum_of(event)
            return [self._emit(closed_copy(event))]  # the copy is a closed file (a crashed server's flag clear)
        if self.start is not None and at < self.start and code not in FILE_STATE_EVENTS:
            return []
        if code in (ANNOTATE_ROWS_EVENT, TABLE_MAP_EVENT) or code in ROWS_EVENTS:
            self.pending.append((code, event))
            if code in ROWS_EVENTS and struct.unpack_from("<H", event, HEADER.size + 6)[0] & STMT_END_F:
                return self._flush()
            return []
        kept = self._flush()
        if code in QUERY_EVENTS:
            body = self._body(event)
            db_len, status_len = body[8], struct.unpack_from("<H", body, 11)[0]
            db = body[13 + status_len:13 + status_len + db_len]
            query = body[13 + status_len + db_len + 1:].lstrip()
            if db != self.database and not query.upper().startswith(TRANSACTION_CONTROL):
                when = HEADER.unpack_from(event)[0]
                if self.foreign_ddl.match(query) and (self.stop is None or when < self.stop):
                    shown = query[:80].decode("utf-8", "replace")
                    raise PITRError(
                        "the binary log changes tables of %s from outside it at %s (position %d: %s): a restore's "
                        "swap, or DDL run without USE; a replay from this dump cannot go past it. Pick a time before "
                        "%s, or one after the next dump (backup.yml; restore.yml takes one after its swap)"
                        % (self.database.decode(), iso(when), at, shown, iso(when)))
                self.dropped += 1
                return kept
        return kept + [self._emit(event)]

    def _flush(self):
        pending, self.pending = self.pending, []
        if not pending:
            return []
        for code, event in pending:
            if code == TABLE_MAP_EVENT:
                body = self._body(event)
                table_id = int.from_bytes(body[:6], "little")
                db_len = body[8]
                self.tables[table_id] = bytes(body[9:9 + db_len])
        ours = [i for i, (code, event) in enumerate(pending) if code in ROWS_EVENTS
                and self.tables.get(int.from_bytes(self._body(event)[:6], "little")) == self.database]
        if not ours:
            self.dropped += len(pending)
            return []
        out = []
        for index, (code, event) in enumerate(pending):
            if code == TABLE_MAP_EVENT:
                body = self._body(event)
                if self.tables.get(int.from_bytes(body[:6], "little")) != self.database:
                    self.dropped += 1
                    continue
                out.append(self._emit(event))
            elif code in ROWS_EVENTS:
                if index not in ours:
                    self.dropped += 1
                    continue
                flags = struct.unpack_from("<H", event, HEADER.size + 6)[0]
                out.append(self._emit(event, flags | STMT_END_F if index == ours[-1] else flags & ~STMT_END_F))
            else:
                out.append(self._emit(event))
        return out


# ------------------------------------------------------------------------------------------------ decisions
def archive_plan(server_logs, archived):
    """What an archive run copies: ``{"copy": [names], "archived": [names already there], "active": name}``.

    ``server_logs``: SHOW BINARY LOGS as [(name, size)] oldest first; the last one is the file being written (not
    copied: the run first closes it with FLUSH BINARY LOGS). ``archived``: {name: manifest}. A closed file already
    archived with another size is not the same file (RESET MASTER, or a rebuilt server reusing the names):
    PITRError, nothing copied.
    """
    if not server_logs:
        raise PITRError("the server has no binary log (log_bin is off): turn on point-in-time recovery "
                        "(rollcall_pitr: true) and deploy")
    closed, active = server_logs[:-1], server_logs[-1][0]
    copy, already = [], []
    for name, size in closed:
        entry = archived.get(name)
        if entry is None:
            copy.append(name)
            continue
        if int(entry["binlog"]["size"]) != int(size):
            raise PITRError("the server's binary log %s (%d bytes) is not the one archived under that name (%d "
                            "bytes): the server's logs were reset (RESET MASTER) or it is a rebuilt server; point "
                            "rollcall_pitr_repo at a new directory for it and keep this one (it holds the lost "
                            "server's log)" % (name, int(size), int(entry["binlog"]["size"])))
        already.append(name)
    return {"copy": copy, "archived": already, "active": active}


# The events a new log file starts with (MariaDB writes them when it opens the file): a file holding only these has no
# change to recover. SHOW BINLOG EVENTS names the types this way.
HEADER_EVENTS = frozenset(["Format_desc", "Gtid_list", "Binlog_checkpoint", "Start_encryption"])


def holds_changes(event_types):
    """Whether the file being written holds anything beyond its header (``event_types``: the Event_type column of
    SHOW BINLOG EVENTS IN it, first rows): when it does not, closing it adds nothing to recover, only one more file
    (a run every few minutes, playbooks/archive_log.yml, would add one a run at night)."""
    return any(kind not in HEADER_EVENTS for kind in event_types)


# The events that frame a file (its header, its closing rotate or stop) by type code: any other event is a change.
START_ENCRYPTION_EVENT = 164
FRAME_EVENTS = frozenset((STOP_EVENT, ROTATE_EVENT, FORMAT_DESCRIPTION_EVENT, START_ENCRYPTION_EVENT)
                         + FILE_STATE_EVENTS)
HEAD_BYTES = 1 << 16  # the first change's GTID event follows the file's header, a few hundred bytes in


def first_change_at(data):
    """The time (epoch second) of the first change in ``data``, the head of a log file, or None when it holds only
    the file's frame: the first event that is not one of FRAME_EVENTS (a transaction's GTID event, stamped when it
    began). An event cut off at the end of ``data`` is not read."""
    for _at, event in EventStream().feed(data):
        when, code = HEADER.unpack_from(event)[:2]
        if code not in FRAME_EVENTS:
            return when
    return None


def index_names(text):
    """The log files a binary log index lists, oldest first (``./mariadb-bin.000012`` or a full path per line)."""
    return [os.path.basename(line.strip()) for line in text.splitlines() if line.strip()]


def unshipped(server_names, archived):
    """The server's log files after the newest archived one, oldest first (the last one is the file being written).
    Older files the archive does not hold are not counted: its retention deleted them (the server keeps its own for
    rollcall_pitr_binlog_days too), and a file missing in the middle is a gap, which verify names."""
    newest = sequence(newest_archived(archived))[1] if archived else None
    return [name for name in server_names if name not in archived
            and (newest is None or sequence(name)[1] > newest)]


def make_repo(repo, what):
    """Create the repository directory (owner only). An OSError (a path through a file, a read-only or full disk, no
    permission) is ArtifactError saying what failed and what to do; before, it ended the module with a traceback
    ("Module result deserialization failed")."""
    try:
        os.makedirs(repo, 0o700, exist_ok=True)
    except OSError as exc:
        raise artifact.ArtifactError(artifact.storage_error(repo, exc, "%s into %s" % (what, repo))
                                     + "; nothing was archived (rollcall_pitr_repo names the repository)") from None


LOCK_FILE = ".archive.lock"
LOCK_WAIT_S = 600  # a run that archives a large log file, or mirrors it over the network, takes minutes at most


@contextlib.contextmanager
def repo_lock(repo, what, wait_s=LOCK_WAIT_S, sleep=time.sleep, clock=time.time):
    """Hold the repository's lock (``flock`` on ``<repo>/.archive.lock``) while ``what`` changes its files. Two runs
    at once (archive_log.yml on its 5-minute schedule beside a backup.yml or a manual run) both copied the same log
    file: one took the other's data file for an interrupted run's leftover and deleted it after the other had
    written its manifest, and every later run then failed on a manifest without its data. The second run now waits
    (at most ``wait_s``) and then finds the file archived. The lock goes with the process (a killed run frees it)."""
    from . import locks

    path = os.path.join(repo, LOCK_FILE)
    try:
        fd = locks.open_lock(path)
    except OSError as exc:
        raise artifact.ArtifactError(artifact.storage_error(repo, exc, "%s (its lock file)" % what)
                                     + "; nothing was changed") from None

    def busy(waited_s, holder):
        return PITRError("%s: another run has been changing the repository %s for %d s (its lock %s, held by %s); "
                         "nothing was changed: run again when it has finished" % (what, repo, waited_s, path, holder))

    with locks.held(fd, wait_s, busy, "%s (pid %d)" % (what, os.getpid()), sleep=sleep, clock=clock):
        yield


def without_data(repo, archived, server_logs):
    """The archived files (``read_archive``) whose manifest is there but whose data file is not, and that the server
    still has, closed and of the archived size (``server_logs`` as ``archive_plan`` takes them): archived again."""
    closed = dict((name, int(size)) for name, size in (server_logs or [])[:-1])
    return sorted(name for name, manifest in archived.items()
                  if closed.get(name) == int(manifest["binlog"]["size"])
                  and not os.path.exists(os.path.join(repo, manifest["data"]["file"])))


def mirror_plan(source, target):
    """What a mirror run copies from one repository to another (the backup host's): ``{"copy": [names],
    "present": [names]}``, oldest first. ``source``/``target``: {name: manifest}. A name in both with another
    checksum is not the same file (a rebuilt server's log under a reused name, or a target that belongs to another
    stack): PITRError, nothing copied."""
    copy, present = [], []
    for name in sorted(source, key=lambda n: sequence(n)[1]):
        there = target.get(name)
        if there is None:
            copy.append(name)
            continue
        if there["data"].get("sha256") != source[name]["data"].get("sha256"):
            raise PITRError("binary log %s is in both repositories with different contents: the off-host one "
                            "belongs to another server (a rebuilt one reusing the names?); point "
                            "rollcall_pitr_offsite_repo at a new directory and keep that one" % name)
        present.append(name)
    return {"copy": copy, "present": present}


def _copy_file_atomic(source, target):
    """Copy ``source`` to ``target`` through a temp file (fsync, then rename); never over an existing target."""
    directory = os.path.dirname(target)
    temp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(target), os.getpid()))
    try:
        with open(source, "rb") as src, os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                                                  "wb") as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        if os.path.exists(target):
            raise artifact.ArtifactError("%s already exists; refusing to overwrite it" % target)
        os.rename(temp, target)
    except OSError as exc:
        raise artifact.ArtifactError(artifact.storage_error(directory, exc, "copying %s" % os.path.basename(target))
                                     + "; nothing was kept") from None
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def mirror(source_repo, target_repo, check_mode=False):
    """Copy every archived file of ``source_repo`` that ``target_repo`` lacks: the data file, then its manifest
    (what makes it archived there; a data file an interrupted run left without one is replaced). The files are
    copied as they are (encrypted, manifests signed): the target is read and verified like any repository."""
    source, target = read_archive(source_repo), read_archive(target_repo)
    plan = mirror_plan(source, target)
    if check_mode or not plan["copy"]:
        return dict(plan, copied=[])
    make_repo(target_repo, "copying the binary log")
    with repo_lock(source_repo, "copying the binary log to %s" % target_repo):
        # the off-host directory may be sshfs (no flock there): the lock is the local repository's, which every
        # mirror run of this stack reads from; what another run copied meanwhile is left as it is
        plan = mirror_plan(source, read_archive(target_repo))
        return dict(plan, copied=_mirror_copy(source_repo, target_repo, source, plan["copy"]))


def _mirror_copy(source_repo, target_repo, source, names):
    copied = []
    for name in names:
        data = source[name]["data"]["file"]
        if os.path.exists(os.path.join(target_repo, data)):  # without its manifest: an interrupted copy
            os.unlink(os.path.join(target_repo, data))
        _copy_file_atomic(os.path.join(source_repo, data), os.path.join(target_repo, data))
        try:
            _copy_file_atomic(artifact.manifest_path(source_repo, name), artifact.manifest_path(target_repo, name))
        except BaseException:
            os.unlink(os.path.join(target_repo, data))
            raise
        artifact.fsync_directory(target_repo)
        copied.append(name)
    return copied


def gaps(archived):
    """Sentences naming every break in the archived chain: a number missing between two archived files, or a
    file whose closing rotate event names another file than the one that follows it."""
    problems = []
    by_base = {}
    for name in archived:
        base, number = sequence(name)
        by_base.setdefault(base, []).append((number, name))
    for base, entries in sorted(by_base.items()):
        entries.sort()
        for (number, name), (later, later_name) in zip(entries, entries[1:], strict=False):
            if later != number + 1:
                missing = [next_name(name)]
                if later > number + 2:
                    missing.append("%s.%0*d" % (base, len(name) - len(base) - 1, later - 1))
                problems.append("binary log gap: %s missing from the repository between %s and %s; no recovery "
                                "can go past %s (restore to a time before its end, and take a dump now so that "
                                "recovery starts after the gap)" % (" .. ".join(missing), name, later_name, name))
                continue
            named = archived[name]["binlog"].get("next_file")
            if named and named != later_name:
                problems.append("binary log %s rotated to %s, but the repository's next file is %s"
                                % (name, named, later_name))
    return problems


def base_candidates(manifests, database, failed=(), project=None):
    """The dumps a replay can start from: full MySQL/MariaDB dumps of ``database`` that recorded their binary
    log position, oldest first, as {"name", "finished", "file", "position"}; never one whose latest
    verification failed (names in ``failed``), nor, given ``project``, a dump of another stack (a backup directory
    several stacks share: another MariaDB stack's database of the same name, whose server runs at the same time as
    this one, so ``same_server`` cannot tell them apart; a dump that records no project is taken)."""
    found = []
    for m in manifests:
        position = (m.get("mysql") or {}).get("binlog")
        if m.get("engine") != "mysql" or m.get("database") != database or m.get("type") != "full" or not position:
            continue
        if project and m.get("project") and m["project"] != project:
            continue
        if m["name"] in failed:
            continue
        found.append({"name": m["name"], "finished": parse_time(m["finished_at"]), "file": position["file"],
                      "position": int(position["position"]),
                      "started": parse_time(m["started_at"]) if m.get("started_at") else None})
    return sorted(found, key=lambda b: b["finished"])


# Binary log event times are whole seconds, the manifests' times the module's clock: this much either way is the same.
CLOCK_SLACK_S = 2


def same_server(base, archived):
    """Whether the dump ``base`` (base_candidates) and the archived file of its log position come from the same
    server: that file was being written while the dump ran, so its first event (the file's opening) is not after
    the dump's end and its last event (the rotation that closed it, after the dump) not before the dump's start.
    A stack runs one server at a time, and a rebuilt server's log reuses the names from mariadb-bin.000001: without
    this, a replay of the lost server's archive (pitr_from_repo) started from a rebuilt server's dump at a position
    in another file of the same name, and a new repository's files were taken for the old dumps' (found on the
    demo: the replay went on from a wrong position until a DDL statement stopped it). A file or dump without these
    times (made before they were recorded) is taken as the same server."""
    entry = archived.get(base["file"])
    if entry is None:
        return False
    log = entry.get("binlog") or {}
    first, last = log.get("first_at"), log.get("last_at")
    opened_after = first is not None and base.get("finished") is not None and first > base["finished"] + CLOCK_SLACK_S
    closed_before = last is not None and base.get("started") is not None and last < base["started"] - CLOCK_SLACK_S
    return not (opened_after or closed_before)


def retention_plan(archived, bases, now, keep_s):
    """Which archived files no recovery can use any more (``{"delete", "keep", "oldest_base", "why"}``): those
    before the log file of the oldest dump a replay can start from (a base: its file archived; the backup
    directory's own retention decides which dumps stay), and only when their last event is older than ``keep_s``
    (the days kept whatever the dumps, like the server's own expire_logs_days; a dump of another server under the
    same database name cannot make a recent file go). Nothing goes without a base, nor a file of another log base
    name than the oldest base's, nor the newest archived file."""
    names = sorted(archived, key=sequence)
    usable = [b for b in bases if same_server(b, archived)]
    if not usable:
        return {"delete": [], "keep": names, "oldest_base": None,
                "why": "no dump to replay onto has its log file archived: nothing is deleted"}
    oldest = min(usable, key=lambda b: sequence(b["file"]))
    cut_base, cut = sequence(oldest["file"])
    newest = names[-1] if names else None
    delete = []
    for name in names:
        base, number = sequence(name)
        last_at = archived[name]["binlog"].get("last_at") or 0
        if base == cut_base and number < cut and name != newest and last_at < now - keep_s:
            delete.append(name)
    return {"delete": delete, "keep": [n for n in names if n not in delete], "oldest_base": oldest["name"],
            "why": "before %s, the log file of the oldest dump to replay onto (%s), and older than %g days"
                   % (oldest["file"], oldest["name"], keep_s / 86400.0)}


def newest_archived(archived):
    """The name of the newest archived file (the highest sequence number), None for an empty archive."""
    return max(archived, key=lambda n: sequence(n)[1]) if archived else None


def window(bases, archived, now):
    """The recoverable window ``{"earliest", "latest", ..._at, "rpo_s"}`` or None (nothing to start from).

    earliest: the end of the oldest dump whose log file is archived (a replay starts from a dump's snapshot, and
    a dump is finished after it). latest: the last event of the newest archived file (every write before it is
    in the repository); never before that dump's end."""
    usable = [b for b in bases if same_server(b, archived)]
    if not usable or not archived:
        return None
    newest = newest_archived(archived)
    latest = max(archived[newest]["binlog"].get("last_at") or 0, usable[-1]["finished"])
    earliest = usable[0]["finished"]
    return {"earliest": earliest, "latest": latest, "earliest_at": iso(earliest), "latest_at": iso(latest),
            "latest_why": "the last event of %s, the newest archived binary log" % newest,
            "rpo_s": max(0, int(now - latest)), "newest_file": newest}


def validate_target(to_time, win, now, reach_now=False):
    """The target's epoch seconds (None for the newest point), or PITRError saying what is possible
    (pitr.validate_target with the words for dumps and the binary log). ``reach_now``: an archive run (FLUSH
    BINARY LOGS) comes first, so the window reaches now."""
    return pitr_target(to_time, win, now, reach_now, nothing="nothing to recover from: no dump with a binary log "
                       "position whose log file is archived; run playbooks/backup.yml (a dump, then the log archived)",
                       oldest="the oldest dump to replay onto", later="archive the log (playbooks/backup.yml)")


def choose_base(bases, archived, target):
    """The dump to replay onto: the newest whose end is not after the target (any for the newest point) and
    whose log file is archived."""
    usable = [b for b in bases if same_server(b, archived) and (target is None or b["finished"] <= target)]
    if not usable:
        raise PITRError("no dump to start from: none finished before %s with its binary log file archived (%d "
                        "dumps with a log position)" % (iso(target) if target is not None else "now", len(bases)))
    return usable[-1]


def files_for(base, archived, target):
    """The archived files a replay from ``base`` to ``target`` reads, in order: from the dump's file to the first
    one whose last event reaches the target (all for the newest point). PITRError on a missing file."""
    names = [base["file"]]
    stop = None if target is None else int(target)
    newest = sequence(newest_archived(archived))[1]
    while True:
        current = names[-1]
        if current not in archived:
            raise PITRError("binary log %s is missing from the repository (a gap after dump %s); recovery can only "
                            "reach the end of %s" % (current, base["name"], names[-2] if len(names) > 1 else
                                                     "the dump"))
        last_at = archived[current]["binlog"].get("last_at") or 0
        if (stop is not None and last_at >= stop) or sequence(current)[1] >= newest:
            return names
        names.append(next_name(current))


def stop_datetime(target):
    """``mariadb-binlog --stop-datetime`` for a target: its second, rounded down, in UTC (run with TZ=UTC)."""
    return (EPOCH + datetime.timedelta(seconds=int(target))).strftime("%Y-%m-%d %H:%M:%S")


def replay_argv(files, target, directory=REPLAY_DIR):
    """``mariadb-binlog`` turning the files (already cut to the dump's position and to the database by
    ``DatabaseFilter``) into SQL up to the target's second. ``--no-defaults``: the image's [client] options are not
    the tool's."""
    argv = ["mariadb-binlog", "--no-defaults"]
    if target is not None:
        argv.append("--stop-datetime=%s" % stop_datetime(target))
    return argv + ["%s/%s" % (directory, name) for name in files]


def restore_plan(target, container, scratch, scratch_volume, image, base=None, files=None):
    to = "the newest archived point" if target is None else stop_datetime(target) + " UTC (to the second)"
    return [
        "archive up to now on %s (FLUSH BINARY LOGS, the closed files copied), read the window and check the "
        "target" % container,
        "the newest dump finished before the target with its log file archived: %s"
        % (base["name"] if base else "(chosen then)"),
        "create volume %s and container %s from %s (no network) and load that dump"
        % (scratch_volume, scratch, image),
        "replay the binary log %s from position %s to %s (mariadb-binlog, that database only)"
        % (", ".join(files) if files else "(the files after the dump)", base["position"] if base else "?", to),
        "check: row counts of every table, the check query; leave %s running for the next step" % scratch,
    ]


def judge_restore(state):
    problems = []
    if state.get("replay_rc") not in (0, None):
        error = state.get("replay_error") or "exit code %s" % state["replay_rc"]
        problems.append("replaying the binary log failed: %s" % error)
    if state.get("counts") is None:
        problems.append("the restored database could not be read (row counts)")
    return {"passed": not problems, "problems": problems}


# ------------------------------------------------------------------------------------------------- the archive
def read_archive(repo):
    """{name: manifest} of the archived log files in ``repo`` (only ours: ``"kind": "binlog"``)."""
    found = {}
    if not os.path.isdir(repo):
        return found
    for entry in sorted(os.listdir(repo)):
        if not entry.endswith(".manifest.json") or entry.startswith("."):
            continue
        name = entry[:-len(".manifest.json")]
        if not NAME.match(name):
            continue
        manifest = artifact.read_manifest(repo, name)
        if manifest.get("kind") == KIND:
            found[name] = manifest
    return found


def files_by_key(archived):
    """``{key id: [file names, in log order]}`` of the archive (``read_archive``): which key reads each file
    ("none" for files archived without a key). After a key rotation the files archived before it keep their key
    until retention removes them, so the ring must keep that key as long as it is listed here."""
    from . import keyring

    found = {}
    for name in sorted(archived, key=lambda n: sequence(n)[1]):
        ids = keyring.needed_ids(archived[name]) or ["none"]
        found.setdefault(ids[0], []).append(name)
    return found


class BinlogPITR:
    """The binary log of the live MariaDB container: archived, verified, replayed in a scratch instance."""

    def __init__(self, container, repo, key=None, user="root", password=None, docker_host=None, engine=None,
                 project=None):
        """``key``: the backup key, or a keyring.KeyRing: files are written with its current key and each archived
        file or dump is read with the key its manifest names (after a rotate_backup_key.yml the files archived
        before it keep their old key). ``project``: the stack's; other stacks' dumps are never a base."""
        from .keyring import KeyRing

        self.project = project
        self.container = container
        self.repo = repo
        self.key = key
        self.write_key = key.current if isinstance(key, KeyRing) else key
        self.user = user
        self.password = password
        self.docker_host = docker_host
        self._engine = engine

    def engine(self, container=None, database=None):
        if container is None and self._engine is not None:
            return self._engine
        from .backup import open_engine
        from .engines.base import Target

        made = open_engine(Target("mysql", database, user=self.user, password=self.password,
                                  container=container or self.container, docker_host=self.docker_host))
        if container is None:
            self._engine = made
        return made

    def log_settings(self):
        """(on, basename, index file) of the server's binary log; reading server variables needs no privilege."""
        rows = self.engine().sql("SELECT @@log_bin, @@log_bin_basename, @@log_bin_index;",
                                 what="reading the binary log settings")
        if not rows or rows[0][0] != "1":
            return False, None, None
        basename = rows[0][1]
        index = rows[0][2] if len(rows[0]) > 2 and rows[0][2] not in ("", "NULL") else basename + ".index"
        return True, basename, index

    def server_logs(self):
        engine = self.engine()
        on, basename, _index = self.log_settings()
        if not on:
            raise PITRError("the binary log is off on %s: point-in-time recovery needs it (rollcall_pitr: true "
                            "and a deploy turn it on)" % self.container)
        directory = os.path.dirname(basename) or DATA_DIR
        logs = [(r[0], int(r[1])) for r in engine.sql("SHOW BINARY LOGS;", what="listing the binary logs")]
        return directory, logs

    def active_written(self):
        """Whether the file being written holds changes (holds_changes over its first events)."""
        engine = self.engine()
        status = engine.sql("SHOW MASTER STATUS;", what="reading the binary log being written")
        if not status:
            return True  # log_bin off: server_logs() says so next
        from .engines.mysql import quote_literal

        events = engine.sql("SHOW BINLOG EVENTS IN %s LIMIT 8;" % quote_literal(status[0][0]),
                            what="reading the events of the binary log being written")
        return holds_changes(row[2] for row in events if len(row) > 2)

    def check_key(self, archived):
        """PITRError when the newest archived file was written with a key the ring does not hold (keyring.key_break:
        a deleted or regenerated key would start another key without a word)."""
        from .keyring import KeyRing, first_keyed, key_break

        ring = self.key if isinstance(self.key, KeyRing) else KeyRing(self.key)
        newest = first_keyed((name, archived[name])
                             for name in sorted(archived, key=lambda n: sequence(n)[1], reverse=True))
        problem = key_break(newest, ring, None, "Nothing was archived",
                            "the newest archived binary log file in %s" % self.repo,
                            "the files archived with it cannot be read again, and the archive's verification fails "
                            "on them: start a new archive, rollcall_pitr_repo pointed at a new directory, then "
                            "playbooks/backup.yml (and -e rollcall_backup_key_lost=true for its dump; docs/pitr.md)")
        if problem:
            raise PITRError(problem)

    def shipping(self, now=None, runner=None):
        """How far the archive is behind the server, for health.yml: ``{"log_bin": False}`` when the server writes no
        binary log, else ``{"log_bin": True, "now", "oldest_change_at"`` (the first change in a file not archived
        yet, None when there is none), ``"unshipped"`` (those files), ``"newest_archived"``, ``"archived_at"``
        (when that file was archived)}``. Needs no privilege beyond reading server variables (the monitor role):
        the index and the files' heads are read in the container as mysql."""
        on, basename, index = self.log_settings()
        if not on:
            return {"log_bin": False}
        if runner is None:
            from .docker import ContainerRunner

            runner = ContainerRunner(self.container, self.docker_host)
        names = index_names(self._head(runner, index, None).decode("utf-8", "replace"))
        archived = read_archive(self.repo)
        pending = unshipped(names, archived)
        oldest = None
        for name in pending:
            oldest = first_change_at(self._head(runner, os.path.join(os.path.dirname(basename) or DATA_DIR, name),
                                                HEAD_BYTES))
            if oldest is not None:
                break
        newest = newest_archived(archived)
        return {"log_bin": True, "now": int(now if now is not None else time.time()), "oldest_change_at": oldest,
                "unshipped": pending, "newest_archived": newest,
                "archived_at": archived[newest].get("archived_at") if newest else None}

    def _head(self, runner, path, size):
        """The first ``size`` bytes of a file in the container (all of it when None), read as mysql."""
        argv = ["head", "-c", str(size), path] if size else ["cat", path]
        result = runner.run(argv, user="mysql")
        if result.rc != 0:
            raise PITRError("reading %s in %s failed: %s" % (path, self.container, result.last_error_line()))
        return result.stdout

    def archive(self, flush=True, check_mode=False, flush_idle=True, key_lost=False):
        """Close the file being written (FLUSH BINARY LOGS) and copy every closed file not archived yet. With
        ``flush_idle`` false the file is closed only when it holds changes (a frequent scheduled run).
        ``key_lost``: go on with a key that did not write the newest archived file (``check_key``)."""
        close = flush and (flush_idle or self.active_written())
        if not check_mode and close:
            self.engine().sql("FLUSH BINARY LOGS;", what="closing the binary log being written")
        directory, logs = self.server_logs()
        archived = read_archive(self.repo)
        if not key_lost:
            self.check_key(archived)
        plan, lost = archive_plan(logs, archived), without_data(self.repo, archived, logs)
        if check_mode:
            return dict(plan, copied=[], flushed=False, would_flush=close, recopy=lost)
        copied, recopied = [], []
        if plan["copy"] or lost:
            if not os.path.isdir(self.repo):
                make_repo(self.repo, "archiving the binary log")
            with repo_lock(self.repo, "archiving the binary log"):
                artifact.remove_stale_leftovers(self.repo)  # a run killed hard: its temporary file stayed
                # A manifest whose data file is gone (what two runs at once left before the lock) archives nothing:
                # the server still has that file, so it is archived again.
                for name in without_data(self.repo, read_archive(self.repo), logs):
                    os.unlink(artifact.manifest_path(self.repo, name))
                    recopied.append(name)
                plan = archive_plan(logs, read_archive(self.repo))  # what another run archived meanwhile is done
                for name in plan["copy"]:
                    copied.append(self._copy(directory, name))
        return dict(plan, copied=[c["name"] for c in copied], flushed=bool(close), files=copied, recopied=recopied)

    def _copy(self, directory, name, runner=None):
        """Stream one closed log file out of the container into the repository: the data file, then its signed
        manifest (which is what makes it archived). A data file without a manifest is what an interrupted run left
        (never a complete archive): it is replaced. When the manifest cannot be written, the data file goes too."""
        if runner is None:
            from .docker import ContainerRunner

            runner = ContainerRunner(self.container, self.docker_host)
        leftover = [entry for entry in os.listdir(self.repo) if entry.startswith(name + "." + KIND)]
        if leftover and not os.path.exists(artifact.manifest_path(self.repo, name)):
            for entry in leftover:
                os.unlink(os.path.join(self.repo, entry))
        scanner = Scanner()
        started = artifact.utcnow()
        with artifact.ArtifactWriter(self.repo, name, "gzip", self.write_key, part=KIND) as writer:
            def sink(data):
                scanner.feed(data)
                writer.write(data)

            try:
                result = runner.run(["cat", "%s/%s" % (directory, name)], sink=sink, user="mysql")
                if result.rc != 0:
                    raise PITRError("reading binary log %s in %s failed: %s"
                                    % (name, self.container, result.last_error_line()))
                facts = scanner.result()
                if facts["problems"]:
                    raise PITRError("binary log %s on the server: %s; not archived" % (name, "; ".join(
                        facts["problems"])))
                stored = writer.close()
            except OSError as exc:  # the repository's disk (full, read-only, not ours)
                writer.abort()
                raise artifact.ArtifactError(artifact.storage_error(self.repo, exc, "archiving binary log %s" % name)
                                             + "; nothing was kept") from None
        manifest = {"kind": KIND, "engine": "mysql", "container": self.container, "data": stored,
                    "binlog": {"file": name, "size": stored["dump_size"], "events": facts["events"],
                               "first_at": facts["first_at"], "last_at": facts["last_at"],
                               "next_file": facts["next_file"], "checksum": facts["checksum"]},
                    "archived_at": artifact.isoformat(started)}
        try:
            artifact.write_manifest(self.repo, name, manifest, key=self.write_key)
        except BaseException:
            os.unlink(os.path.join(self.repo, stored["file"]))  # no manifest: not archived, nothing half-made
            raise
        return {"name": name, "size": stored["dump_size"], "stored": stored["size"],
                "last_at": iso(facts["last_at"])}

    def read_file(self, manifest):
        """The plain bytes of an archived file, checked as they stream (signature first, then checksum and
        authentication)."""
        from . import backup, keyring

        key = keyring.resolve(self.key, manifest)  # the key this file was archived with
        artifact.check_signature(manifest, key)
        artifact.check_stored_files(self.repo, manifest, key)
        return backup.plain_stream(self.repo, manifest, key)

    def verify(self):
        """Every archived file read back: signature, checksum, each event's CRC32 and length, the chain."""
        archived = read_archive(self.repo)
        problems, checked = [], 0
        for name, manifest in sorted(archived.items(), key=lambda item: sequence(item[0])[1]):
            scanner = Scanner()
            try:
                for chunk in self.read_file(manifest):
                    scanner.feed(chunk)
            except artifact.ArtifactError as exc:
                problems.append("binary log %s: %s" % (name, exc))
                continue
            facts = scanner.result()
            checked += 1
            for problem in facts["problems"]:
                problems.append("binary log %s: %s" % (name, problem))
            if facts["events"] != manifest["binlog"]["events"]:
                problems.append("binary log %s has %d events, its manifest says %d" % (
                    name, facts["events"], manifest["binlog"]["events"]))
        problems += gaps(archived)
        if not archived:
            problems.append("the repository %s holds no archived binary log yet" % self.repo)
        return {"passed": not problems, "problems": problems, "files": len(archived), "checked": checked,
                "message": ("verified: %d archived binary logs readable, every event's checksum right, no gap"
                            % checked) if not problems else "; ".join(problems)}

    def status(self, backup_dir, database, now=None):
        now = now or time.time()
        archived = read_archive(self.repo)
        manifests, failed = [], set()
        for name in artifact.list_backups(backup_dir):
            try:
                manifests.append(artifact.read_manifest(backup_dir, name))
            except artifact.ArtifactError:
                continue  # a damaged manifest is not a base; backup_verify reports it
            verification = artifact.read_verification(backup_dir, name) or {}
            if (verification.get("latest") or {}).get("status") == "failed":
                failed.add(name)
        bases = base_candidates(manifests, database, failed, self.project)
        return archived, bases, window(bases, archived, now)

    def prune(self, backup_dir, database, keep_days, check_mode=False, now=None):
        """Delete the archived files retention_plan says no recovery can use, as backup_prune deletes a backup
        (backup.delete_backup: manifest first; what is left of a file cut short is a data file without a manifest,
        which is not archived and the next archive run replaces)."""
        now = now or time.time()
        archived, bases, _win = self.status(backup_dir, database, now)
        plan = retention_plan(archived, bases, now, float(keep_days) * 86400)
        if check_mode:
            return dict(plan, deleted=[])
        if not plan["delete"]:
            return dict(plan, deleted=[])
        with repo_lock(self.repo, "applying the archive's retention"):
            archived, bases, _win = self.status(backup_dir, database, now)  # as it is now that no run changes it
            plan = retention_plan(archived, bases, now, float(keep_days) * 86400)
            return dict(plan, deleted=self._delete(plan["delete"]))

    def _delete(self, names):
        from . import backup

        deleted = []
        for name in names:
            before = "; deleted before it: %s" % (", ".join(deleted) or "nothing")
            try:
                backup.delete_backup(self.repo, name)
            except artifact.InUse:  # a restore to a time reads it now: the next run deletes it
                continue
            except OSError as exc:
                raise artifact.ArtifactError(artifact.storage_error(self.repo, exc, "deleting binary log %s" % name)
                                             + before) from None
            except artifact.ArtifactError as exc:
                raise artifact.ArtifactError("deleting binary log %s: %s%s" % (name, exc, before)) from None
            deleted.append(name)
        return deleted

    # -- the scratch instance -------------------------------------------------------------------------------------
    def restore(self, to_time, backup_dir, database, scratch, scratch_volume, query=None, keep_failed=False,
                check_mode=False, wait_s=180, now=None, archive_first=True):
        """``archive_first``: archive the live log up to now first (a target up to now is then reachable); off
        for the repository of a lost server, or when the caller just archived."""
        from . import backup
        from . import docker as dockerlib
        from .engines.mysql import MySQL

        now = now or time.time()
        if archive_first and not check_mode:
            self.archive(flush=True)
        archived, bases, win = self.status(backup_dir, database, time.time())
        target = validate_target(to_time, win, now, reach_now=check_mode and archive_first)
        base = choose_base(bases, archived, target)
        files = files_for(base, archived, target)
        live = dockerlib.inspect(self.container, self.docker_host)
        if scratch == self.container:
            raise PITRError("the scratch instance must be new: %s is the live database" % scratch)
        image = live["Config"]["Image"]
        result = {"plan": restore_plan(target, self.container, scratch, scratch_volume, image, base, files),
                  "target": iso(target) if target is not None else None, "window": win, "scratch": scratch,
                  "scratch_volume": scratch_volume, "image": image, "source": "live", "repo": self.repo,
                  "base": base["name"], "binlogs": files}
        if check_mode:
            return result
        manifest = artifact.read_manifest(backup_dir, base["name"])
        backup.check_before_reading(backup_dir, manifest, self.key)
        started = time.time()
        dockerlib.run_scratch(scratch, image, scratch_volume, DATA_DIR, [], self.docker_host,
                              labels={"rollcall.pitr.of": self.container}, command=["mariadbd", "--skip-log-bin"],
                              # no login password given: the live container's root password, which root in it
                              # uses too (engines/mysql.py)
                              environment={"MARIADB_ROOT_PASSWORD": self.password or dockerlib.env_value(
                                  live, *MySQL.ROOT_PASSWORD_ENV) or ""})
        state = {}
        try:
            engine = self.engine(container=scratch, database=database)
            self._wait_ready(engine, scratch, wait_s)
            engine.prepare_for(manifest)
            engine.create_database(database)
            engine.restore(backup.plain_stream(backup_dir, manifest, self.key), database)
            replayed_to = self._replay(engine, scratch, base, archived, files, target, database, state)
            state["counts"] = engine.row_counts(database)
            if query:
                rows = engine.sql(query, database=database, what="the check query")
                result["query_result"] = "\n".join("\t".join(row) for row in rows)
        except Exception:
            if not keep_failed:
                dockerlib.remove_scratch(scratch, scratch_volume, self.docker_host)
            raise
        verdict = judge_restore(state)
        result.update(verdict, recovered_to=iso(replayed_to), counts=state.get("counts"),
                      duration_s=round(time.time() - started, 1))
        if not verdict["passed"] and not keep_failed:
            dockerlib.remove_scratch(scratch, scratch_volume, self.docker_host)
            result["scratch_removed"] = True
        return result

    def _wait_ready(self, engine, scratch, wait_s):
        deadline = time.time() + wait_s
        while True:
            try:
                engine.sql("SELECT 1;", what="waiting for the scratch instance")
                return
            except Exception as exc:  # noqa: BLE001 - the server initialises its system tables first
                if time.time() > deadline:
                    raise PITRError("the scratch instance %s did not accept connections within %d s: %s"
                                    % (scratch, wait_s, exc)) from None
            time.sleep(0.5)

    def _replay(self, engine, scratch, base, archived, files, target, database, state):
        """Copy the files into the scratch instance, checked as they stream (Scanner) and cut to the dump's
        position and to ``database`` (DatabaseFilter), turn them into SQL there (mariadb-binlog, up to the target's
        second) and apply it. Returns the time of the last commit replayed (None when none)."""
        runner = engine.runner
        runner.run(["mkdir", "-p", REPLAY_DIR])
        replayed_to, copied_files, dropped = None, [], 0
        stop = None if target is None else int(target)
        for index, name in enumerate(files):
            start = base["position"] if index == 0 else None
            scanner, keep = Scanner(start=start, stop=stop), DatabaseFilter(database, start, stop)

            def filtered(chunks, scanner=scanner, keep=keep):
                for chunk in chunks:
                    scanner.feed(chunk)
                    yield keep.feed(chunk)
                yield keep.close()

            copied = runner.run(["tee", "%s/%s" % (REPLAY_DIR, name)], stdin=filtered(self.read_file(archived[name])),
                                sink=lambda data: None)
            if copied.rc != 0:
                raise PITRError("copying binary log %s into %s failed: %s"
                                % (name, scratch, copied.last_error_line()))
            facts = scanner.result()
            if facts["problems"]:
                raise PITRError("archived binary log %s: %s" % (name, "; ".join(facts["problems"])))
            copied_files.append(name)
            dropped += keep.dropped
            if scanner.replayed_to is not None:
                replayed_to = scanner.replayed_to
            if scanner.stopped:
                break
        state["events_of_other_databases"] = dropped
        with tempfile.TemporaryFile() as spool:
            made = runner.run(replay_argv(copied_files, target), sink=spool.write, env={"TZ": "UTC"})
            if made.rc != 0:
                state.update(replay_rc=made.rc, replay_error="mariadb-binlog: %s" % made.last_error_line())
                return replayed_to
            spool.seek(0)
            engine.apply_sql(iter(lambda: spool.read(1 << 20), b""), what="applying the binary log")
        state["replay_rc"] = 0
        return replayed_to


def summary(archived, bases, win):
    """What backup_info says about MariaDB's point-in-time recovery: the archive and the recoverable window."""
    newest = newest_archived(archived)
    return {
        "kind": KIND, "files": len(archived), "bases": len(bases), "newest_file": newest,
        "earliest_recoverable_at": win["earliest_at"] if win else None,
        "newest_recoverable_at": win["latest_at"] if win else None,
        "rpo_s": win["rpo_s"] if win else None,
    }


def read_summary(repo, backup_dir, database, now=None, project=None):
    """``summary`` from the files alone (the archive's manifests and the dumps'): no server, no key needed."""
    archived, bases, win = BinlogPITR(None, repo, project=project).status(backup_dir, database, now)
    return summary(archived, bases, win)
