# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: the online backup API (never a plain copy of a live file), PRAGMA integrity_check, and a restore that
writes into the live file through the same API (the file replaced only when that cannot be done).

SQLite lives in a file on the managed host or inside a container (the app's). Either way the work is done by
one small Python helper (below) run through the runner with the stdlib sqlite3 module, so the same code path
serves both places. ``database`` is the path of the database file.

A restore gives back the file as it was, not only its data: the journal mode the backup recorded
(``manifest["sqlite"]``; the backup file itself is in rollback-journal mode so no -wal travels with it), and the
live file's permissions and owner (the backup's when there is no live file; the owner only when root runs it).
"""

import contextlib
import json
import os
import sys

from .base import OLD_SUFFIX, SCRATCH_SUFFIX, Engine, EngineError
from .upkeep import SQLiteUpkeep

HELPER = r'''
import json, os, sqlite3, stat, sys

SIDECARS = ("-wal", "-shm", "-journal")

class Refused(Exception):
    pass

def counts(con):
    tables = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {t: con.execute('SELECT count(*) FROM "%s"' % t.replace('"', '""')).fetchone()[0] for t in tables}

def revision(con):
    try:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None

def integrity(con):
    rows = [r[0] for r in con.execute("PRAGMA integrity_check")]
    fk = con.execute("PRAGMA foreign_key_check").fetchall()
    problems = [r for r in rows if r != "ok"] + ["foreign key: %r" % (r,) for r in fk]
    return ("failed", "; ".join(problems[:5])) if problems else ("passed", "integrity_check ok, foreign keys ok")

def opened(path):
    if not os.path.exists(path):
        print(json.dumps({"error": "database file %s does not exist" % path}))
        sys.exit(4)
    return sqlite3.connect("file:%s?mode=ro" % path, uri=True)

def receive(dest):
    """stdin into ``dest`` (through a temporary file); the number of bytes received."""
    tmp = dest + ".rc_part"
    size = 0
    with open(tmp, "wb") as out:
        for chunk in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dest)
    return size

def file_facts(path, con):
    """What a restore gives back besides the data: the journal mode and the file's permissions and owner."""
    st = os.stat(path)
    return {"journal_mode": con.execute("PRAGMA journal_mode").fetchone()[0], "mode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}

def header_journal(path):
    with open(path, "rb") as f:
        return "wal" if f.read(20)[18:19] == b"\x02" else "delete"

def settle(scratch, path, wanted):
    """Give the restored copy the live file's permissions and owner (the backup's when there is no live file;
    the owner only as root, the group where allowed) and the backup's journal mode (else the live file's).
    Runs before anything live is touched."""
    live = os.path.exists(path)
    if live:
        st = os.stat(path)
        mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
    else:
        mode, uid, gid = wanted.get("mode"), wanted.get("uid"), wanted.get("gid")
    journal = wanted.get("journal_mode") or (header_journal(path) if live else None)
    if journal == "wal":
        con = sqlite3.connect(scratch)
        got = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        con.close()
        if got != "wal":
            raise Refused("%s: the restored copy could not be put in WAL journal mode (got %s)" % (path, got))
    if mode is not None:
        os.chmod(scratch, mode)
    if gid is None:
        return
    try:
        os.chown(scratch, uid if os.geteuid() == 0 and uid is not None else -1, gid)
    except PermissionError:
        if live:
            raise Refused("%s belongs to uid %s, gid %s; the restored copy could not be given that group (run the "
                          "restore as root or as a member of group %s); nothing was replaced" % (path, uid, gid, gid))

def remove(path):
    for suffix in ("",) + SIDECARS:
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)

def swap_in_place(path, scratch, old, keep, wanted):
    """The restored copy written into the live file through the online backup API, in one write transaction (all
    or nothing): the file keeps its inode, owner, mode and journal mode, and the connections the app holds read the
    restored data at their next transaction - no restart, nothing written to a file that is no longer live. None
    when it cannot be done and the file must be replaced: no live file, a live file that is no database (what a
    restore often repairs), another journal mode asked for, or page sizes that differ in WAL mode."""
    if not os.path.exists(path):
        return None
    try:
        live = sqlite3.connect(path, timeout=30)
        live.execute("SELECT count(*) FROM sqlite_master").fetchone()
        journal = live.execute("PRAGMA journal_mode").fetchone()[0]
    except sqlite3.DatabaseError:
        return None
    try:
        if (wanted.get("journal_mode") or journal) != journal:
            return None
        if keep:  # the replaced data, as a file of its own with the live file's permissions
            remove(old)
            st = os.stat(path)
            os.close(os.open(old, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IMODE(st.st_mode)))
            if os.geteuid() == 0:
                os.chown(old, st.st_uid, st.st_gid)
            kept = sqlite3.connect(old)
            live.backup(kept)
            kept.execute("PRAGMA journal_mode=DELETE")
            kept.close()
        source = sqlite3.connect("file:%s?mode=ro" % scratch, uri=True)
        try:
            source.backup(live)
        except sqlite3.Error as exc:  # the live data are as they were (the write transaction rolled back)
            if keep:
                remove(old)
            if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
                return None  # page sizes differ in WAL mode: the file is replaced instead
            raise
        finally:
            source.close()
    finally:
        live.close()
    remove(scratch)
    return {"old": old if keep else None, "in_place": True}

def swap(path, scratch, old, keep, wanted):
    for suffix in SIDECARS:  # left by read-only checks of the scratch copy
        if os.path.exists(scratch + suffix):
            os.unlink(scratch + suffix)
    done = swap_in_place(path, scratch, old, keep, wanted)
    if done is not None:
        return done
    settle(scratch, path, wanted)
    remove(old)
    if os.path.exists(path):
        os.link(path, old)
    moved = []
    try:
        for suffix in SIDECARS:
            if os.path.exists(path + suffix):
                os.replace(path + suffix, old + suffix)
                moved.append(suffix)
        os.replace(scratch, path)
    except OSError:
        for suffix in moved:
            os.replace(old + suffix, path + suffix)
        if os.path.exists(old):
            os.unlink(old)
        raise
    d = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    os.fsync(d)
    os.close(d)
    if not keep:
        remove(old)
    return {"old": old if keep else None, "in_place": False}

op, path = sys.argv[1], sys.argv[2]
try:
    if op == "info":
        con = opened(path)
        print(json.dumps({"version": sqlite3.sqlite_version, "counts": counts(con), "revision": revision(con)}))
    elif op == "open":
        con = opened(path)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        print(json.dumps({"version": sqlite3.sqlite_version}))
    elif op == "snapshot":
        out = sys.argv[3]
        src = opened(path)
        dst = sqlite3.connect(out)
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # a standalone file: no -wal/-shm travel with the backup
        dst.close()
        con = sqlite3.connect("file:%s?mode=ro" % out, uri=True)
        print(json.dumps({"version": sqlite3.sqlite_version, "counts": counts(con), "revision": revision(con),
                          "file": file_facts(path, src)}))
    elif op == "check":
        size = receive(path)
        try:
            status, detail = integrity(sqlite3.connect("file:%s?mode=ro" % path, uri=True))
        except sqlite3.DatabaseError as exc:
            status, detail = "failed", "not a valid SQLite database: %s" % exc
        finally:
            os.unlink(path)
        print(json.dumps({"status": status, "detail": detail, "bytes": size}))
    elif op == "receive":
        print(json.dumps({"ok": True, "bytes": receive(path)}))
    elif op == "integrity":
        status, detail = integrity(opened(path))
        print(json.dumps({"status": status, "detail": detail}))
    elif op == "swap":
        print(json.dumps(swap(path, sys.argv[3], sys.argv[4], sys.argv[5] == "1", json.loads(sys.argv[6]))))
    elif op == "remove":
        for suffix in ("", "-wal", "-shm", "-journal", ".rc_part"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
        print(json.dumps({"ok": True}))
except sqlite3.Error as exc:
    print(json.dumps({"error": "%s: %s" % (path, exc)}))
    sys.exit(5)
except Refused as exc:
    print(json.dumps({"error": str(exc)}))
    sys.exit(6)
except OSError as exc:
    print(json.dumps({"error": "%s: %s" % (exc.filename or path, exc.strerror)}))
    sys.exit(7)
'''


class _Counted:
    """The chunks given to the helper, counted as they go (an iterator object: the stream under it is not closed
    when the helper stops reading early, so its checks still run to the end)."""

    def __init__(self, chunks):
        self.chunks, self.size = iter(chunks), 0

    def __iter__(self):
        return self

    def __next__(self):
        chunk = next(self.chunks)
        self.size += len(chunk)
        return chunk


class SQLite(SQLiteUpkeep, Engine):
    name = "sqlite"
    dump_format = "sqlite database file (online backup API)"
    tools = ()

    @property
    def python(self):
        return "python3" if self.target.container else sys.executable

    def _helper(self, *args, stdin=None, sink=None):
        result = self.runner.run([self.python, "-c", HELPER] + list(args), stdin=stdin, sink=sink)
        text = result.text.strip().splitlines()
        try:
            data = json.loads(text[-1]) if text else {}
        except ValueError:
            data = {}
        if result.rc != 0 or "error" in data:
            raise EngineError("SQLite at %s: %s" % (self.runner.where, data.get("error") or result.last_error_line()))
        return data

    def server_version(self):
        return "SQLite %s" % self._helper("info", self.target.path)["version"]

    def tool_versions(self):
        return {"sqlite3": self.server_version()}

    def database_exists(self, database):
        try:
            self._helper("info", database)
        except EngineError:
            return False
        return True

    def activity(self, long_query_seconds=60):
        """SQLite has no server: the file opens and its schema reads (integrity_check is not run here)."""
        self._helper("open", self.target.path)
        return {"active_connections": None, "max_connections": None, "long_queries": []}

    def row_counts(self, database):
        return self._helper("info", database)["counts"]

    def schema_revision(self, database):
        return self._helper("info", database)["revision"]

    def dump(self, sink):
        path = self.target.path
        snapshot = path + ".rc_snapshot"
        try:
            facts = self._helper("snapshot", path, snapshot)
            result = self.runner.run(["cat", snapshot], sink=sink)
            if result.rc != 0:
                raise EngineError("SQLite at %s: reading the snapshot failed: %s"
                                  % (self.runner.where, result.last_error_line()))
        finally:
            self._helper("remove", snapshot)
        return {"row_counts": facts["counts"], "format": self.dump_format, "server_version": facts["version"],
                "schema_revision": facts["revision"], "engine_facts": facts["file"]}

    def prepare_for(self, manifest):
        """A restore gives the file the journal mode the backup recorded (and its permissions and owner, when
        there is no live file whose own are kept)."""
        self.backup_file = manifest.get(self.name) or {}

    def _received(self, op, path, chunks):
        """The helper's ``op`` fed ``chunks``; EngineError when it received fewer bytes than were sent (its input
        ended early: a check or a copy of part of a backup must not pass for the whole)."""
        sent = _Counted(chunks)
        facts = self._helper(op, path, stdin=sent)
        if facts.get("bytes") is not None and facts["bytes"] != sent.size:
            raise EngineError("SQLite at %s: the copy into %s received %d of the %d bytes sent (its input ended "
                              "early; the Docker engine or the connection to it closed it); nothing was replaced"
                              % (self.runner.where, path, facts["bytes"], sent.size))
        return facts

    def native_check(self, chunks):
        facts = self._received("check", self.target.path + ".rc_check", chunks)
        return facts["status"], facts["detail"]

    def scratch_name(self, database):
        return database + SCRATCH_SUFFIX

    def create_database(self, database, like=None):
        self._helper("remove", database)

    def drop_database(self, database):
        self._helper("remove", database)

    def restore(self, chunks, database):
        self._received("receive", database, chunks)

    def swap_in(self, scratch, database, keep_old):
        """The restored data into the live file (swap_in_place() in HELPER), or the file replaced with ``scratch``
        when that cannot be done (settle()); only then must the app open the file again (``reopen_needed``). On
        failure the scratch copy goes too."""
        wanted = json.dumps(getattr(self, "backup_file", None) or {})
        try:
            done = self._helper("swap", database, scratch, database + OLD_SUFFIX, "1" if keep_old else "0", wanted)
            self.reopen_needed = not done.get("in_place")
            return done["old"]
        except EngineError:
            with contextlib.suppress(EngineError):
                self._helper("remove", scratch)
            raise

    def integrity_check(self, database):
        facts = self._helper("integrity", database)
        return facts["status"], facts["detail"]

    def privileges(self, database):
        return None  # SQLite has no owners or grants

    @staticmethod
    def default_database(path):
        return os.path.splitext(os.path.basename(path))[0]
