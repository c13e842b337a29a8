# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup flows: take, verify, restore, prune, list. Engine specifics stay in engines/, files in artifact.py."""

import collections
import concurrent.futures
import contextlib
import datetime
import errno
import functools
import json
import os
import signal
import tempfile
import time
from contextlib import contextmanager

from . import artifact, keyring
from .artifact import ArtifactError
from .db_logins import PG_REFUSALS
from .engines.base import EngineError, Target
from .runner import LocalRunner, ReadAhead, RunnerError

ENGINES = ("postgresql", "mysql", "sqlite", "mssql")


def engine_class(name):
    """The adapter of engine ``name``, imported when first asked for: a module run imports only its own engine's
    adapter and driver (compiled from the module's zip on every run: the other three cost a PostgreSQL restore about
    0.05 s). Static imports, so that Ansible puts every adapter in the module's payload."""
    if name == "postgresql":
        from .engines.postgresql import PostgreSQL
        return PostgreSQL
    if name == "mysql":
        from .engines.mysql import MySQL
        return MySQL
    if name == "sqlite":
        from .engines.sqlite import SQLite
        return SQLite
    from .engines import mssql
    return mssql.MSSQL


LEVELS = ("checksum", "native", "restore")
ERRORS = (ArtifactError, EngineError, RunnerError)

# What the server or the engine said when it could not be reached or logged into: about the server, not the backup.
# (db_logins.PG_REFUSALS: what PostgreSQL says to a password that does not open a login; MariaDB's client says
# "Access denied for user".)
UNREACHABLE = PG_REFUSALS + ("Access denied for user", "could not connect to server", "Connection refused",
                             "Can't connect to", "is not running", "cannot reach the Docker engine",
                             "the database system is starting up", "the database system is shutting down")


def server_unreachable(exc):
    """Whether ``exc`` (an EngineError or RunnerError) says the server could not be reached or logged into, so that a
    verification or a restore that failed with it says nothing about the backup (a password changed while it ran:
    playbooks/rotate_db_passwords.yml beside backup.yml; the database restarting)."""
    return isinstance(exc, (EngineError, RunnerError)) and any(marker in str(exc) for marker in UNREACHABLE)


# Why a verification or restore that stopped on an error found nothing wrong with the backup (blameless()).
BLAMELESS = {
    "server": "about reaching the server, not the backup",
    "key": "about the key given, not the backup (it was made with another key)",
}


def blameless(exc):
    """"key" when ``exc`` says the key given does not fit the backup (artifact.WrongKey: a deleted or regenerated key
    file, a wrong vault), "server" when the server could not be reached or logged into (server_unreachable), else
    None. Either way the backup is not at fault: its verification is "error", not "failed", and nothing is
    recorded against it that would send a restore to an older backup."""
    if isinstance(exc, artifact.WrongKey):
        return "key"
    return "server" if server_unreachable(exc) else None


class Interrupted(Exception):
    pass


@contextmanager
def terminate_cleanly():
    """Turn SIGTERM into an exception so half-written files are removed on the way out."""
    def handler(signum, frame):
        raise Interrupted("interrupted by SIGTERM; nothing half-done was kept")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def open_engine(target):
    if target.engine not in ENGINES:
        raise EngineError("engine %s is not supported here (supported: %s)" % (target.engine, ", ".join(ENGINES)))
    if target.engine == "mssql":
        return _open_mssql(target)
    if target.container:
        from .docker import ContainerRunner

        runner = ContainerRunner(target.container, target.docker_host)
    else:
        runner = LocalRunner()
    engine = engine_class(target.engine)(runner, target)
    engine.jobs = max(1, int(target.jobs or 1))
    return engine


def _open_mssql(target):
    """SQL Server is reached with pymssql from here; it writes and reads backup files in server_directory."""
    from .engines import mssql

    if not mssql.HAS_PYMSSQL:
        raise EngineError("engine mssql needs the Python package pymssql where the module runs "
                          "(pip install pymssql)")
    if target.container:
        raise EngineError("engine mssql connects over the network with pymssql; container is not used for it")
    server_directory = getattr(target, "server_directory", None)
    if not server_directory:
        raise EngineError("engine mssql needs server_directory: a directory on the SQL Server machine where the "
                          "server writes and reads backup files (and local_directory, the same directory as seen "
                          "from where the module runs, when that is not the same path)")
    return mssql.MSSQL(LocalRunner(), target, server_directory=server_directory,
                       local_directory=getattr(target, "local_directory", None) or server_directory)


def target_from_params(params):
    database = params.get("database")
    if params["engine"] == "sqlite":
        if not params.get("path"):
            raise EngineError("engine sqlite needs path (the database file)")
        database = database or engine_class("sqlite").default_database(params["path"])
    if params["engine"] == "mssql" and not database:
        raise EngineError("engine mssql needs database (the database to back up or restore)")
    target = Target(params["engine"], database, host=params.get("host"), port=params.get("port"),
                    user=params.get("user"), password=params.get("password"), container=params.get("container"),
                    docker_host=params.get("docker_host"), path=params.get("path"), jobs=params.get("jobs"))
    # Where SQL Server writes its backup files, and the same directory as seen from here.
    target.server_directory = params.get("server_directory")
    target.local_directory = params.get("local_directory") or params.get("server_directory")
    return target


def database_of(engine):
    """What the engine calls the target database: its name, or for SQLite the file's path."""
    return engine.target.path if engine.name == "sqlite" else engine.target.database


def require_database(engine):
    if not engine.database_exists(database_of(engine)):
        raise EngineError("database %s does not exist at %s; check the database name"
                          % (engine.target.database, engine.target.where()))


# ------------------------------------------------------------------------------------------- backup
def take_backup(engine, directory, kind="full", compression="none", key=None, app_version=None, labels=None,
                files=None, copy_only=False, encrypt=True, project=None):
    """Dump ``engine.target`` into a new artifact + manifest in ``directory``; returns the manifest.

    ``key``: the backup key. The manifest is signed with it; the data is encrypted with it unless ``encrypt`` is
    false (a plain dump whose manifest is still signed, so tampering with it is detected).

    ``files``: {"path": dir, "container": name or None, "table": name or None} adds that directory (the SMS uploads
    volume) to the same backup set as a tar part with its own checksum; ``table`` (the SMS: uploads) has a row per
    file, and verification warns when the archive holds fewer files (uploads_shortfall).

    ``kind`` differential (engines with ``backup_chains``, i.e. SQL Server) needs a full backup of the same
    database in ``directory``: the newest one that is not copy-only becomes the parent, and the new backup must
    apply on top of it (``engine.check_chain``) or nothing is kept. ``copy_only``: a full backup that leaves the
    engine's chain alone (the safety backup before a restore); engines without chains ignore it, their dumps
    never affect another backup.
    """
    chains = getattr(engine, "backup_chains", False)
    if kind not in ("full", "differential"):
        raise ArtifactError("backup type must be full or differential, not %r" % kind)
    if kind == "differential" and not chains:
        raise EngineError("type differential is for SQL Server (engine mssql) only; %s backups are always full, "
                          "self-contained dumps" % engine.name)
    require_database(engine)
    reservation = artifact.NameReservation(directory, engine.name, engine.target.database, kind)
    try:
        with live_lock(engine, "backup %s" % reservation.name):
            return _take_backup(engine, directory, reservation.started, reservation.name, kind, compression, key,
                                app_version, labels, files, copy_only, encrypt, project, chains)
    finally:
        reservation.release()


def _take_backup(engine, directory, started, name, kind, compression, key, app_version, labels, files, copy_only,
                 encrypt, project, chains):
    clock = time.monotonic()
    parent = chain_parent(directory, engine.name, engine.target.database) if kind == "differential" else None
    if chains:
        engine.backup_kind, engine.copy_only = kind, bool(copy_only) and kind == "full"
    server_version = engine.server_version()
    revision = engine.schema_revision(database_of(engine))
    privileges = engine.privileges(database_of(engine))
    data_key = key if encrypt else None
    with terminate_cleanly(), artifact.ArtifactWriter(directory, name, compression, data_key) as writer:
        try:
            facts = engine.dump(writer.write)
            if parent is not None:
                problem = engine.check_chain(parent, {"name": name, engine.name: facts.get("engine_facts")})
                if problem:  # leaving the with block removes the half-written file
                    raise EngineError("the differential backup does not apply on top of %s: %s; nothing was kept "
                                      "(take a full backup, then differentials again)" % (parent["name"], problem))
            stored = writer.close()
        except OSError as exc:
            writer.abort()
            raise ArtifactError(artifact.storage_error(directory, exc, "writing backup %s" % name)
                                + "; nothing was kept") from None
        parts = {}
        try:
            if files:
                parts["uploads"] = _archive_files(files, directory, name, compression, data_key)
        except BaseException:
            os.unlink(os.path.join(directory, stored["file"]))  # no manifest yet: drop the half set
            raise
    finished = artifact.utcnow()
    manifest = {
        "engine": engine.name,
        "database": engine.target.database,
        "type": kind,
        "parent": parent["name"] if parent else None,
        "server_version": facts.get("server_version") or server_version,
        "tool_versions": engine.tool_versions(),
        "format": facts["format"],
        "archive_format": facts.get("archive_format"),
        "schema_revision": facts.get("schema_revision", revision),
        "app_version": app_version,
        "row_counts": facts["row_counts"],
        "privileges_sha256": privileges,
        "started_at": artifact.isoformat(started),
        "finished_at": artifact.isoformat(finished),
        "duration_s": round(time.monotonic() - clock, 3),
        "labels": labels or {},
        "data": stored,
        "files": parts,
    }
    if project:
        manifest["project"] = project  # a backup directory several stacks share: whose database this is
    if facts.get("engine_facts"):
        manifest[engine.name] = facts["engine_facts"]  # SQL Server: the backup's header (LSNs, copy-only)
    try:
        return artifact.write_manifest(directory, name, manifest, key=key)
    except BaseException:
        for part in artifact.stored_parts(manifest):  # no manifest: drop the half set
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, part["file"]))
        raise


def chain_parent(directory, engine_name, database):
    """The manifest of the full backup a new differential builds on: the newest full, non-copy-only one."""
    for candidate in reversed(artifact.list_backups(directory)):
        parsed = artifact.parse_name(candidate)
        if parsed["engine"] != engine_name or parsed["database"] != database or parsed["type"] != "full":
            continue
        try:
            manifest = artifact.read_manifest(directory, candidate)
        except ArtifactError:
            continue
        if manifest.get("database") == database and not (manifest.get(engine_name) or {}).get("copy_only"):
            return manifest
    raise ArtifactError("no full backup of %s in %s to base a differential on: take a full backup first"
                        % (database, directory))


def backup_chain(directory, manifest):
    """Manifests a restore of ``manifest`` needs, oldest first: its parent full backup, then the backup itself."""
    chain = [manifest]
    while chain[0].get("parent"):
        parent = chain[0]["parent"]
        if len(chain) > 8 or any(m["name"] == parent for m in chain):
            raise ArtifactError("the parents of backup %s form a loop or a chain too long" % manifest["name"])
        try:
            chain.insert(0, artifact.read_manifest(directory, parent))
        except ArtifactError as exc:
            raise ArtifactError("backup %s builds on %s, which is missing or damaged in %s (%s); it cannot be "
                                "restored without it" % (chain[0]["name"], parent, directory, exc)) from None
    return chain


def chain_names(directory, name):
    """``name`` and the parents a restore of it needs, as far as their manifests say (what artifact.reading holds
    against deletion); a missing or damaged link ends the list (backup_chain reports it)."""
    names = [name]
    try:
        while len(names) <= 8:
            parent = artifact.read_manifest(directory, names[-1]).get("parent")
            if not parent or parent in names:
                break
            names.append(parent)
    except ArtifactError:
        pass
    return names


def chain_streams(directory, chain, key):
    """The plain, checked streams of every backup in ``chain`` (keys checked now, checksums as they stream)."""
    return [plain_stream(directory, m, key) for m in chain]


def files_runner(files):
    if files.get("container"):
        from .docker import ContainerRunner

        return ContainerRunner(files["container"], files.get("docker_host"))
    return LocalRunner()


def _archive_files(files, directory, name, compression, key):
    """tar the directory (inside its container or on this host) into the ``uploads.tar`` part."""
    runner = files_runner(files)
    with artifact.ArtifactWriter(directory, name, compression, key, part="uploads.tar") as writer:
        try:
            # never a restore's staging directory (a safety backup is taken while one is there)
            result = runner.run(["tar", "-C", files["path"], "--numeric-owner"] + NOT_STAGING + ["-cf", "-", "."],
                                sink=writer.write)
            if result.rc != 0:
                reason = result.last_error_line()
                raise ArtifactError("archiving %s in %s failed: %s" % (files["path"], runner.where, reason))
            stored = writer.close()
        except OSError as exc:
            writer.abort()
            raise ArtifactError(artifact.storage_error(directory, exc, "writing the files of backup %s" % name)
                                + "; nothing was kept") from None
    part = dict(stored, path=files["path"], container=files.get("container"))
    if files.get("table"):
        part["table"] = files["table"]  # the database's own record of these files (uploads_shortfall)
    return part


class TarListing:
    """Counts a ``tar -tf`` listing as it streams, whatever its size: its entries, and its files (the entries that
    are not directories, whose names end in "/")."""

    def __init__(self):
        self.entries = self.files = 0
        self._rest = b""

    def write(self, data):
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            self._count(line)

    def close(self):
        if self._rest:
            self._count(self._rest)
        self._rest = b""

    def _count(self, line):
        if line.strip():
            self.entries += 1
            self.files += not line.endswith(b"/")


def uploads_shortfall(files, part, row_counts):
    """What an uploads part misses against the database's record of its files, or None.

    ``files``: how many files the archive holds (TarListing.files); ``part``: its manifest entry, whose
    ``table`` names the table with one row per file (the SMS: uploads); ``row_counts``: the backup's. The app writes
    a file before its row, and the set's uploads are archived after the dump, so every row of the dump has its file
    in the archive unless the file was gone from the live directory: fewer files than rows means downloads that
    answer 404 after a restore of this backup, and on the live stack now. More files than rows is normal (an upload
    in progress, a file whose row a restore took away). None when the part names no table or the backup's counts
    have no such table (or more than one table of that name)."""
    table = part.get("table")
    rows = [count for name, count in row_counts.items() if table and name.rsplit(".", 1)[-1] == table]
    if len(rows) != 1 or files >= rows[0]:
        return None
    missing, where = rows[0] - files, part.get("path") or "the uploads directory"
    return ("the uploads archive holds %d file%s where the %s table has %d row%s: %d upload%s had no file in %s when "
            "the backup was made, so %s 404 now and after a restore of this backup (the backup is whole otherwise; "
            "look for the files in another backup, and what removed them from %s)"
            % (files, "" if files == 1 else "s", table, rows[0], "" if rows[0] == 1 else "s", missing,
               "" if missing == 1 else "s", where,
               "its download answers" if missing == 1 else "their downloads answer", where))


# The label (reason) of the backup a restore takes of what it replaces (restore_backup, is_safety_backup).
SAFETY_REASON = "safety backup before restoring"
# A restore extracts the uploads into this directory next to the live files, then swaps them in (SWAP_FILES).
STAGING = ".rc_restore"
# tar options that leave the staging directory at the top of the uploads out, when archiving and when extracting
# (backups made before this was added may hold one: the safety backup of a restore is taken while it is there).
NOT_STAGING = ["--anchored", "--exclude=./" + STAGING]
# Replaces the directory's content with the staged copy; the path comes in as "$1", never inside the script. A
# failed move fails the script (mv -t with find's "+" passes mv's exit status on).
SWAP_FILES = (
    'set -e; cd "$1"; '
    'find . -mindepth 1 -maxdepth 1 ! -name %(s)s -exec rm -rf {} +; '
    'find %(s)s -mindepth 1 -maxdepth 1 -exec mv -t . {} +; rmdir %(s)s' % {"s": STAGING}
)


class FilesNotInPlace(ArtifactError):
    """The database was restored and swapped in; the uploads could not be put in place after it."""


def stage_files(directory, manifest, key, files=None):
    """Extract the uploads part into <path>/.rc_restore next to the live files (checked as it streams).

    Returns what ``commit_files`` / ``discard_files`` need, or None when the set has no uploads. Nothing live is
    touched yet: a damaged part fails here, before the database is swapped in.
    """
    part = manifest.get("files", {}).get("uploads")
    if not part:
        return None
    files = dict({"path": part["path"], "container": part.get("container")}, **(files or {}))
    runner = files_runner(files)
    staged = {"runner": runner, "path": files["path"], "staging": files["path"].rstrip("/") + "/" + STAGING}
    for argv in (["rm", "-rf", staged["staging"]], ["mkdir", "-p", staged["staging"]]):
        result = runner.run(argv)
        if result.rc != 0:
            raise EngineError("preparing %s in %s failed: %s" % (staged["staging"], runner.where,
                                                                 result.last_error_line()))
    stream = CheckedStream(plain_stream(directory, manifest, key, data=part))
    counted = TarListing()  # tar -v names what it extracts: the files, against the uploads table (uploads_shortfall)
    try:
        result = runner.run(["tar", "-C", staged["staging"], "--no-same-owner"] + NOT_STAGING + ["-xvf", "-"],
                            stdin=stream, sink=counted.write)
        counted.close()
        stream.finish()  # tar may stop at the end-of-archive blocks: the checksum covers the whole file
        if result.rc != 0:
            raise EngineError("extracting the uploads in %s failed: %s" % (runner.where, result.last_error_line()))
    except BaseException:
        discard_files(staged)
        raise
    staged["shortfall"] = uploads_shortfall(counted.files, part, manifest.get("row_counts") or {})
    return staged


def discard_files(staged):
    if staged:
        with contextlib.suppress(*ERRORS):
            staged["runner"].run(["rm", "-rf", staged["staging"]])


def commit_files(staged):
    """Replace the live directory's content with the staged copy; returns the path (or None)."""
    if not staged:
        return None
    result = staged["runner"].run(["sh", "-c", SWAP_FILES, "sh", staged["path"]])
    if result.rc != 0:
        raise FilesNotInPlace(
            "putting the restored uploads in place failed in %s: %s; what was not moved yet is in %s: move it into %s "
            "by hand, or run the restore again" % (staged["runner"].where, result.last_error_line(),
                                                   staged["staging"], staged["path"]))
    return staged["path"]


def restore_files(directory, manifest, key, files=None):
    """Put the uploads part back: extract into <path>/.rc_restore, then replace the directory's content."""
    return commit_files(stage_files(directory, manifest, key, files))


# ------------------------------------------------------------------------------------------- verify
class CheckedStream:
    """The plain chunks of one stored part, remembering whether every check passed.

    A tool may stop reading before the end (it found what it needed, or it failed); ``finish()`` then reads the
    rest, so the checksum of the whole file is known before anything is trusted. An iterator object, not a
    generator: an abandoned ``for`` loop must not close the underlying stream.
    """

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.complete = False
        self.error = None

    def __iter__(self):
        return self

    def __next__(self):
        if self.error is not None:
            raise self.error
        try:
            return next(self.chunks)
        except StopIteration:
            self.complete = True
            raise
        except ArtifactError as exc:
            self.error = exc
            raise

    def finish(self):
        """Read what was left; ArtifactError when the part is damaged (checksum, authentication, truncation)."""
        if self.error is not None:
            raise self.error
        collections.deque(self, maxlen=0)


def plain_stream(directory, manifest, key=None, data=None):
    """The plain bytes of a stored part (default: the dump), every check applied as they stream.

    ``key``: the key, or a keyring.KeyRing (the backup's key is picked by its key id)."""
    key = keyring.resolve(key, manifest)
    data = data or manifest["data"]
    if data.get("encrypted") and key is None:
        raise artifact.WrongKey("backup %s is encrypted (key id %s); give the key" % (manifest["name"], data["key_id"]))
    if data.get("encrypted") and artifact.key_id(key) != data["key_id"]:
        raise artifact.WrongKey("wrong key for backup %s: it needs key id %s, the key given has id %s"
                                % (manifest["name"], data["key_id"], artifact.key_id(key)))
    return artifact.read_plain(os.path.join(directory, data["file"]), compression=data["compression"], key=key,
                               expected_sha256=data["sha256"])


def check_before_reading(directory, manifest, key=None, allow_unsigned=False):
    """The cheap checks, before a byte of data is read: the chain's manifests, their signatures, every stored
    file's presence and size, the key. Returns (chain, detail); ArtifactError at the first problem.

    ``key``: the key, or a keyring.KeyRing: each backup of the chain is checked with the key it was made with."""
    chain = backup_chain(directory, manifest)
    details = []
    for member in chain:
        member_key = keyring.resolve(key, member)
        details.append(artifact.check_signature(member, member_key, allow_unsigned))
        artifact.check_stored_files(directory, member, member_key)
    return chain, details[-1] + ("; its parent's too" if len(chain) > 1 else "")


def verify_backup(directory, name, level, key=None, engine=None, record=True, allow_unsigned=False):
    """Verify at ``level`` (each level includes the ones before it). Never reports success for a skipped step."""
    if level not in LEVELS:
        raise ArtifactError("level must be one of %s" % ", ".join(LEVELS))
    started, clock = artifact.utcnow(), time.monotonic()
    steps = []
    warnings = []  # the backup is whole, but says something the operator should know (uploads_shortfall)
    status = "passed"
    held = contextlib.ExitStack()
    try:
        held.enter_context(artifact.reading(directory, chain_names(directory, name)))  # no prune meanwhile
        manifest = artifact.read_manifest(directory, name)
        chain, signed = check_before_reading(directory, manifest, key, allow_unsigned)
        for stream in chain_streams(directory, chain, key):
            collections.deque(stream, maxlen=0)  # read it all, keep nothing
        for part in manifest.get("files", {}).values():
            collections.deque(plain_stream(directory, manifest, key, data=part), maxlen=0)
        parents = "; its parent %s too" % ", ".join(m["name"] for m in chain[:-1]) if len(chain) > 1 else ""
        steps.append({"level": "checksum", "status": "passed", "detail": "%s; sha256 %s matches; stream complete%s%s"
                      % (signed, manifest["data"]["sha256"][:16], " (with the uploads)" if manifest.get("files")
                         else "", parents)})
        if LEVELS.index(level) >= 1:
            if engine is None:
                raise EngineError("level %s needs a database engine to run %s's own tools" % (level, name))
            engine.prepare_for(manifest)
            native_status, detail = engine.native_check(plain_stream(directory, manifest, key))
            if native_status == "passed" and len(chain) > 1:
                problem = _chain_problem(engine, chain)
                if problem:
                    native_status, detail = "failed", problem
                else:
                    detail += "; applies on top of %s" % chain[-2]["name"]
            for part in manifest.get("files", {}).values():
                counted = TarListing()
                listing = LocalRunner().run(["tar", "-tf", "-"], stdin=plain_stream(directory, manifest, key,
                                                                                    data=part), sink=counted.write)
                counted.close()
                if listing.rc != 0:
                    # tar's last line only says that it failed; the lines before it say how
                    native_status, detail = "failed", "the uploads archive is damaged: %s (after %d entries)" % (
                        listing.last_error_lines(3), counted.entries)
                else:
                    detail += "; uploads archive lists %d entries" % counted.entries
                    short = uploads_shortfall(counted.files, part, manifest["row_counts"])
                    if short:
                        warnings.append(short)
            steps.append({"level": "native", "status": native_status, "detail": detail})
        if LEVELS.index(level) >= 2 and steps[-1]["status"] == "passed":
            steps.append(_verify_by_restore(
                engine, manifest, lambda scratch: _restore_checked(engine, directory, chain, key, scratch)))
        status = "passed" if all(s["status"] == "passed" for s in steps) and len(steps) == LEVELS.index(level) + 1 \
            else "failed"
    except ERRORS as exc:
        cause = blameless(exc)
        status = "error" if cause else "failed"  # error: not verified, not found at fault
        step = {"level": level, "status": status, "detail": str(exc)}
        steps.append(dict(step, cause=cause) if cause else step)
    finally:
        held.close()
    result = {"name": name, "level": level, "status": status, "steps": steps, "verified_at":
              artifact.isoformat(started), "duration_s": round(time.monotonic() - clock, 3)}
    if warnings:
        result["data_warnings"] = warnings
    if record and os.path.exists(artifact.manifest_path(directory, name)):
        _record(directory, name, result)
    return result


def _record(directory, name, result):
    """Keep the result next to the backup; a directory that cannot be written is said, not fatal."""
    try:
        artifact.record_verification(directory, name, result)
    except ArtifactError as exc:
        result["not_recorded"] = str(exc)


def compare_counts(expected, actual):
    """Differences between the manifest's row counts and a restored database's, as text lines."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        if expected.get(table) != actual.get(table):
            problems.append("%s: backup had %s rows, restore has %s" % (table, expected.get(table),
                                                                        actual.get(table)))
    return problems


def _chain_problem(engine, chain):
    """Why the backups in ``chain`` (manifests, oldest first) do not apply one on top of the other, or None."""
    check = getattr(engine, "check_chain", None)
    if check is None:
        return "backup %s has a parent, but %s backups have no chains" % (chain[-1]["name"], engine.name)
    for index in range(1, len(chain)):
        parent, child = chain[index - 1], chain[index]
        problem = check(parent, child)
        if problem:
            return "%s does not apply on top of %s: %s" % (child["name"], parent["name"], problem)
    return None


SCRATCH_LOCK_WAIT_S = 3600  # a restore or a verification of a large database takes minutes; an hour is a stuck one


@contextmanager
def scratch_lock(engine, scratch, what, wait_s=SCRATCH_LOCK_WAIT_S, sleep=time.sleep, clock=time.time,
                 directory=None):
    """Hold this host's lock on the scratch database ``scratch`` of ``engine``'s server while ``what`` uses it.

    A restore and a restore-level verification load into the same ``<db>__rc_scratch``: two at once (a nightly
    backup.yml beside a manual one, or beside restore.yml) dropped each other's scratch database mid-load, and both
    good backups were reported as failing verification ("pg_restore into sms__rc_scratch failed: ... server closed
    the connection unexpectedly"); a restore could have swapped in the other run's half-loaded copy. The second run
    waits (at most ``wait_s``). ``flock`` on a file under /run/lock (else the temp directory): it goes with the
    process, so a killed run frees it; the file names who holds it."""
    def busy(waited_s, holder):
        return EngineError("%s: the scratch database %s on %s has been in use for %d s by %s; nothing was changed: "
                           "run again when it has finished" % (what, scratch, engine.target.where(), waited_s, holder))

    with _database_lock(engine, "scratch", scratch, what, busy, wait_s, False, sleep, clock, directory):
        yield


# A backup waits this long for a restore's swap of the live database (seconds: sessions drained, two renames); a
# restore's swap waits this long for the backups reading it (a large dump takes minutes), its copy loaded meanwhile.
LIVE_READ_WAIT_S = 600
LIVE_SWAP_WAIT_S = 3600
# Where the host's lock files go: /run/lock (else the temp directory). The unit tests point it elsewhere.
LOCK_DIRECTORY = None


@contextmanager
def live_lock(engine, what, swap=False, sleep=time.sleep, clock=time.time, directory=None):
    """Hold this host's lock on ``engine``'s live database: shared while a backup reads it, exclusive (``swap``)
    while a restore swaps its copy in and puts the uploads back.

    A backup started while a restore swapped (`backup.yml` beside `restore.yml`, a nightly job beside a manual
    restore) failed with ``pg_dump failed: database "sms" is not currently accepting connections`` (the swap stops new
    connections for a moment), and a swap ended a backup's sessions after its drain time. Now the backup waits for
    the swap and reads the restored database; the swap waits for the backups running (they read the data it
    replaces); backups do not wait for each other."""
    database = engine.target.database or engine.target.where()

    def busy(waited_s, holder):
        doing = "swapped in by" if not swap else "read by"
        return EngineError("%s: the live database %s on %s has been %s %s for %d s; nothing was changed: run again "
                           "when it has finished" % (what, database, engine.target.where(), doing, holder, waited_s))

    wait_s = LIVE_SWAP_WAIT_S if swap else LIVE_READ_WAIT_S
    with _database_lock(engine, "live", database, what, busy, wait_s, not swap, sleep, clock, directory):
        yield


@contextmanager
def _database_lock(engine, kind, database, what, busy, wait_s, shared, sleep, clock, directory):
    """``flock`` on a file under /run/lock (else the temp directory) named for this server's ``database``: it goes
    with the process, so a killed run frees it; the file names who holds it."""
    import hashlib

    from . import locks

    target = engine.target
    identity = "%s|%s|%s" % (target.docker_host or "", target.where(), database)
    if directory is None:
        directory = LOCK_DIRECTORY or ("/run/lock" if os.access("/run/lock", os.W_OK) else tempfile.gettempdir())
    path = os.path.join(directory, "rollcall-%s-%s.lock" % (kind, hashlib.sha256(identity.encode()).hexdigest()[:16]))
    try:
        fd = locks.open_lock(path)
    except OSError as exc:
        raise EngineError("%s: cannot open the lock %s of the %s database %s: %s"
                          % (what, path, kind, database, exc.strerror)) from None
    note = "%s (pid %d, since %s)" % (what, os.getpid(), artifact.isoformat(artifact.utcnow()))
    with locks.held(fd, wait_s, busy, note, sleep=sleep, clock=clock, poll_s=0.5, shared=shared):
        yield


def _verify_by_restore(engine, manifest, restore):
    """The restore level: ``restore(scratch)`` (_restore_checked: the same checked, read-ahead stream as a restore),
    then the row counts and the engine's integrity check; the scratch database is dropped whatever happened."""
    live = database_of(engine)
    scratch = engine.scratch_name(live)
    with scratch_lock(engine, scratch, "verifying backup %s by a restore" % manifest.get("name", "")):
        return _verify_in_scratch(engine, manifest, restore, live, scratch)


def _verify_in_scratch(engine, manifest, restore, live, scratch):
    try:
        engine.recreate_database(scratch, like=live if engine.database_exists(live) else None)
        restore(scratch)
        counts, found = engine.loaded_row_counts(scratch, manifest["row_counts"])
        problems = compare_counts(manifest["row_counts"], counts)
        integrity, detail = engine.integrity_check(scratch)
        if problems:
            return {"level": "restore", "status": "failed", "detail": "; ".join(problems[:10])}
        if integrity != "passed":
            return {"level": "restore", "status": "failed", "detail": detail}
        return {"level": "restore", "status": "passed", "detail": "restored into %s: %d tables, row counts equal "
                "the manifest (%s); %s" % (scratch, len(manifest["row_counts"]), found, detail)}
    finally:
        drop_scratch(engine, scratch)


def drop_scratch(engine, scratch):
    """Drop the scratch database whatever happened before; raises only when it is still there afterwards."""
    try:
        engine.drop_database(scratch)
    except BaseException as first:
        try:  # once more: a restore that was just killed may still hold a session for a moment
            time.sleep(1)
            engine.drop_database(scratch)
        except ERRORS:
            raise EngineError("the scratch database %s could not be dropped (%s); drop it by hand" % (scratch, first)) \
                from None


def no_such_backup(directory, name, engine=None, database=None, project=None):
    """None when ``directory`` holds any file of backup ``name``; else what to say about a mistyped or removed name.

    A name with files but no manifest is an incomplete backup: that one fails its verification instead."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return None  # the verification says what is wrong with the directory
    if any(entry.startswith(name + ".") for entry in entries):
        return None
    try:
        items = [i for i in select(describe(directory), engine, database, project) if "error" not in i]
    except (ArtifactError, OSError, KeyError, ValueError):
        items = []
    newest = ", ".join(i["name"] for i in items[:3]) or "none"
    return ("there is no backup %s in %s, nothing was verified; the newest of %s there: %s (name one with "
            "-e backup_name=NAME in playbooks/verify_backup.yml, or name: NAME with rollcall.ops.backup_verify; "
            "rollcall.ops.backup_info lists them)" % (name, directory, database or "any database", newest))


# ------------------------------------------------------------------------------------------- restore
def older_backup_hint(directory, name, engine=None, database=None):
    """How to pick another backup than ``name``, naming the newest verified one older than it where there is one."""
    text = ("to restore an older backup, name it: -e restore_backup_name=NAME with playbooks/restore.yml, or "
            "name: NAME with rollcall.ops.db_restore (rollcall.ops.backup_info lists them)")
    try:
        items = [i for i in select(describe(directory), engine, database) if "error" not in i]
    except (ArtifactError, OSError, KeyError, ValueError):
        return text
    parsed = artifact.parse_name(name)
    if parsed is None:  # a mistyped name: "older than it" means nothing; name what there is
        newest = ", ".join(i["name"] for i in items[:3]) or "none"
        where = "%s in %s" % (database or "it", directory)
        return text + "; %s is not a backup name; the newest of %s: %s" % (name, where, newest)
    stamp = parsed["stamp"]
    older = [i for i in items if i["name"] != name and (artifact.parse_name(i["name"]) or {}).get("stamp", "") <= stamp]
    verified = [i for i in older if i["verified"]]
    if verified:
        return text + "; the newest verified backup before it is %s" % verified[0]["name"]
    if older:
        return text + "; the next older one is %s (not verified yet: verify it first)" % older[0]["name"]
    return text + "; there is no older backup of %s in %s" % (database or "it", directory)


def refusal(directory, manifest, exc):
    """The ArtifactError saying a backup is refused because it is damaged or cannot be trusted, and what to do."""
    return ArtifactError("refusing to restore %s: %s; %s" % (manifest["name"], exc, older_backup_hint(
        directory, manifest["name"], manifest.get("engine"), manifest.get("database"))))


def restore_backup(engine, directory, name, *args, **kwargs):
    """``_restore_backup`` with the backup and its parents held against deletion (artifact.reading) from the
    first check to the swap: a retention run beside it keeps them this time."""
    with artifact.reading(directory, chain_names(directory, name)):
        return _restore_backup(engine, directory, name, *args, **kwargs)


def _restore_backup(engine, directory, name, key=None, safety_backup=True, keep_old=False, compression="none",
                    safety_key=None, files=None, app_version=None, allow_unsigned=False, before_swap=None,
                    project=None):
    """Restore ``name`` into a side database, checking the artifact as it streams; swap in only when all passed.

    1. Cheap checks before reading data: manifest, engine, signature, every file's size, the key, the chain.
    2. One read of each stored part: decrypted, decompressed and hashed on its way into the scratch database
       (uploads: into a staging directory). A checksum or authentication failure, found at the latest at the
       end of a stream, aborts the restore.
    3. Row counts, the engine's integrity check, owners and grants of the scratch database.
    4. ``before_swap(scratch)`` when given (the restore playbook migrates the restored data forward to the schema
       the live release runs on, while the app keeps serving the live database); its answer is reported.
    5. The safety backup of the live database (``app_version`` recorded in its manifest), then the swap.
    Whatever fails, the scratch database is dropped and the target stays as it was.
    """
    started, clock = artifact.utcnow(), time.monotonic()
    manifest = artifact.read_manifest(directory, name)
    if manifest["engine"] != engine.name:
        raise EngineError("backup %s is a %s backup; the target is %s" % (name, manifest["engine"], engine.name))
    if not same_project(manifest, project):
        raise EngineError("backup %s was made of project %s's database, and this restore is for project %s (the "
                          "backup directory is shared); name a backup of %s (rollcall.ops.backup_info lists them "
                          "with their project)" % (name, manifest["project"], project, project))
    try:
        chain, signed = check_before_reading(directory, manifest, key, allow_unsigned)
    except artifact.WrongKey as exc:  # the key, not the backup: not recorded against it, no older backup offered
        raise artifact.WrongKey("cannot restore %s: %s. Nothing was restored, and the backup was not found at fault"
                                % (name, exc)) from None
    except ArtifactError as exc:
        _record(directory, name, _result(name, started, clock, [("checksum", "failed", str(exc))]))
        raise refusal(directory, manifest, exc) from None
    engine.prepare_for(manifest)
    if len(chain) > 1:
        problem = _chain_problem(engine, chain)
        if problem:
            raise refusal(directory, manifest, problem)
    target = database_of(engine)
    exists = engine.database_exists(target)
    safety = exists and safety_backup
    if safety and not os.access(directory, os.W_OK):
        raise ArtifactError(artifact.storage_error(directory, OSError(*_access_error(directory)),
                                                   "the safety backup before restoring %s" % name)
                            + "; nothing was restored (or run with safety_backup=false)")
    report = {"restored": name, "verification": None, "safety_backup": None, "old_kept_as": None,
              "safety_backup_why": "" if safety else (
                  "the database %s did not exist: nothing to keep" % target if not exists else "safety_backup=false")}
    scratch = engine.scratch_name(target)
    staged = None
    swapping = contextlib.ExitStack()
    with terminate_cleanly(), scratch_lock(engine, scratch, "restoring backup %s" % name):
        try:
            engine.recreate_database(scratch, like=target if exists else None)
            try:
                _restore_checked(engine, directory, chain, key, scratch)
                staged = stage_files(directory, manifest, key, files)
                detail, found = _check_restored(engine, manifest, scratch, engine.load_check)
            except ArtifactError as exc:
                _record(directory, name, _result(name, started, clock, [("checksum", "failed", str(exc))]))
                raise refusal(directory, manifest, exc) from None
            except EngineError as exc:  # the data does not load or does not match its manifest
                if server_unreachable(exc):  # about the server, not the backup: not recorded against it
                    raise EngineError("restoring %s could not reach or log into the server: %s; nothing was restored, "
                                      "and the backup was not found at fault (if the database passwords changed "
                                      "meanwhile, playbooks/rotate_db_passwords.yml, run again)" % (name, exc)) \
                        from None
                _record(directory, name, _result(name, started, clock, [("restore", "failed", str(exc))]))
                raise EngineError(str(refusal(directory, manifest, exc))) from None
            report["verification"] = _result(name, started, clock, [
                ("checksum", "passed", "%s; sha256 %s matched while restoring"
                 % (signed, manifest["data"]["sha256"][:16])),
                ("native", "passed", "the engine's restore read the whole archive%s"
                 % (" (and the uploads archive)" if staged else "")),
                ("restore", "passed", "restored into %s: %d tables, row counts equal the manifest (%s); %s"
                 % (scratch, len(manifest["row_counts"]), found, detail))])
            if staged and staged["shortfall"]:  # whole, but some uploads will answer 404 (as verification says)
                report["data_warnings"] = report["verification"]["data_warnings"] = [staged["shortfall"]]
            if before_swap is not None:
                report["before_swap"] = before_swap(scratch)
            if safety:
                report["safety_backup"] = take_backup(
                    engine, directory, compression=compression, key=safety_key, app_version=app_version,
                    labels={"reason": "%s %s" % (SAFETY_REASON, name)},
                    files=_current_files(manifest, files), copy_only=True, project=project)["name"]
            # no backup reads the live database while it is swapped and its uploads put back (live_lock)
            swapping.enter_context(live_lock(engine, "restoring backup %s" % name, swap=True))
            report["old_kept_as"] = engine.swap_in(scratch, target, keep_old)
            report["app_must_reopen"] = bool(engine.reopen_needed)
        except BaseException as exc:
            swapping.close()
            discard_files(staged)
            try:
                drop_scratch(engine, scratch)
            except ERRORS as leftover:
                if isinstance(exc, ERRORS):
                    raise type(exc)("%s; and %s" % (exc, leftover)) from None
            raise
        try:
            report["files_restored"] = commit_files(staged)
        except ERRORS as exc:
            raise FilesNotInPlace("the database was restored and swapped in; %s" % exc) from None
        finally:
            swapping.close()
    _record(directory, name, report["verification"])
    report["row_counts"] = manifest["row_counts"]
    return report


def command_before_swap(container, argv, docker_host=None):
    """A ``before_swap`` for restore_backup: run ``argv`` in ``container`` with ``{database}`` replaced by the
    restored side database's name (the restore playbook: ``sms-app migrate --to REV --database {database}`` in a
    container of the live release). Returns the command's last output line, parsed when it is JSON."""
    def run(scratch):
        from .docker import ContainerRunner

        command = [arg.replace("{database}", scratch) for arg in argv]
        runner = ContainerRunner(container, docker_host)
        result = runner.run(command)
        if result.rc != 0:
            raise EngineError("%s in %s before the swap failed: %s; the live database was not touched"
                              % (" ".join(command[:2]), runner.where, result.last_error_line()))
        lines = result.text.strip().splitlines()
        last = lines[-1] if lines else ""
        try:
            return json.loads(last)
        except ValueError:
            return last

    return run


def _access_error(directory):
    """(errno, strerror) for a directory os.access says is not writable: read-only mount or permissions."""
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return errno.EROFS, os.strerror(errno.EROFS)
    except OSError:
        pass
    return errno.EACCES, os.strerror(errno.EACCES)


def _check_restored(engine, manifest, scratch, check):
    """Row counts, ``check`` (integrity), owners and grants of the restored scratch database: (the check's detail,
    how the row counts were found)."""
    (counts, found), (integrity, detail), privileges = _run_checks(
        engine, (functools.partial(engine.loaded_row_counts, expected=manifest["row_counts"]), check,
                 engine.privileges), scratch)
    problems = compare_counts(manifest["row_counts"], counts)
    if problems:
        raise EngineError("restored data differs from the backup: %s" % "; ".join(problems[:10]))
    if integrity != "passed":
        raise EngineError("the restored database fails its integrity check: %s" % detail)
    recorded = manifest.get("privileges_sha256")
    if recorded and privileges != recorded and recorded not in engine.earlier_privileges(scratch):
        raise EngineError("owners or grants of the restored database differ from the backup's")
    return detail, found


def _run_checks(engine, checks, database):
    """Each of ``checks`` called on ``database``; at the same time when the engine allows it. The first error, in
    the order given, is raised after all of them ended."""
    if not engine.checks_in_parallel:
        return [check(database) for check in checks]
    with concurrent.futures.ThreadPoolExecutor(len(checks)) as pool:
        futures = [pool.submit(check, database) for check in checks]
    return [future.result() for future in futures]


def _restore_checked(engine, directory, chain, key, scratch):
    """Stream the chain into ``scratch`` (one read, checked on the way); ArtifactError when a part is damaged,
    also when the tool failed first on the damaged bytes."""
    # read, hashed, decrypted and decompressed a few chunks ahead of the tool, in a thread of its own (runner.ReadAhead)
    ahead = [ReadAhead(stream) for stream in chain_streams(directory, chain, key)]
    streams = [CheckedStream(chunks) for chunks in ahead]
    try:
        try:
            engine.restore_chain(streams, scratch)
        except (EngineError, RunnerError):
            for stream in streams:
                stream.finish()  # damaged input explains the tool's failure better than its own message
            raise
        for stream in streams:
            stream.finish()
    finally:
        for chunks in ahead:
            chunks.close()


def _current_files(manifest, files):
    """What the safety backup takes of the uploads the restore replaces (None without an uploads part)."""
    part = manifest.get("files", {}).get("uploads")
    if not part:
        return None
    return dict({"path": part["path"], "container": part.get("container")}, **(files or {}))


def _result(name, started, clock, steps):
    level = steps[-1][0]
    states = [s[1] for s in steps]
    status = "passed" if all(st == "passed" for st in states) else "failed" if "failed" in states else "error"
    return {"name": name, "level": level, "status": status,
            "steps": [{"level": lv, "status": st, "detail": d} for lv, st, d in steps],
            "verified_at": artifact.isoformat(started), "duration_s": round(time.monotonic() - clock, 3)}


# ------------------------------------------------------------------------------------------- list and prune
def describe(directory, now=None):
    """Every complete backup with manifest, age, size and last verification; newest first."""
    now = now or artifact.utcnow()
    items = []
    for name in reversed(artifact.list_backups(directory)):
        try:
            manifest = artifact.read_manifest(directory, name)
        except ArtifactError as exc:
            items.append({"name": name, "error": str(exc)})
            continue
        finished = _parse_time(manifest["finished_at"])
        verification = (artifact.read_verification(directory, name) or {}).get("latest")
        items.append({
            "name": name, "engine": manifest["engine"], "database": manifest["database"], "type": manifest["type"],
            "finished_at": manifest["finished_at"], "age_s": int((now - finished).total_seconds()),
            "size": manifest["data"]["size"], "file": manifest["data"]["file"],
            "encrypted": manifest["data"]["encrypted"], "schema_revision": manifest.get("schema_revision"),
            "key_id": (keyring.needed_ids(manifest) or [None])[0],
            "app_version": manifest.get("app_version"), "parent": manifest.get("parent"),
            "labels": manifest.get("labels") or {}, "verification": verification, "project": manifest.get("project"),
            "verified": bool(verification and verification.get("status") == "passed"),
        })
    return items


ENGINE_NAMES = {"mariadb": "mysql"}  # the inventory's rollcall_db_engine -> the engine manifests record


def engine_name(engine):
    """The engine name manifests record for an inventory's ``rollcall_db_engine`` (mariadb -> mysql)."""
    return ENGINE_NAMES.get(engine, engine)


def same_project(item, project):
    """A backup of ``project``: it records that project, or none (made before projects were recorded)."""
    return not project or item.get("project") in (None, project)


def select(items, engine=None, database=None, project=None):
    """Items of one engine / database / project (None matches all; a backup that records no project matches every
    project); damaged entries are kept so they get noticed."""
    engine = engine_name(engine)
    return [i for i in items if "error" in i or ((engine in (None, i["engine"])) and (database in (None,
            i["database"])) and same_project(i, project))]


def is_safety_backup(item):
    """True for the safety backup a restore took of what it replaced (its ``labels`` say so)."""
    return str(((item or {}).get("labels") or {}).get("reason") or "").startswith(SAFETY_REASON)


def default_restore(items):
    """The backup a restore takes when none is named: the newest (``items`` newest first) that is not a restore's
    safety backup. A restore's safety backup is the newest backup right after it, so "the newest" would make a
    second run of the same restore undo the first; it is restored by name (the restore's report names it).
    None when there is no such backup."""
    return next((item for item in items if not is_safety_backup(item)), None)


def newest_name(directory, engine=None, database=None, for_restore=False, project=None):
    """The newest complete backup's name; ``for_restore``: the newest that is not a safety backup (default_restore)."""
    items = [i for i in select(describe(directory), engine, database, project) if "error" not in i]
    if for_restore:
        chosen = default_restore(items)
        if chosen is None and items:
            raise ArtifactError("the only backups of %s in %s are safety backups taken by restores (newest: %s); "
                                "name the one to restore" % (database or "any database", directory,
                                                             items[0]["name"]))
        items = [chosen] if chosen else []
    if not items:
        raise ArtifactError("no complete backup of %s in %s" % (database or "any database", directory))
    return items[0]["name"]


def _parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def parse_duration(value, what="keep_within"):
    """Seconds of a duration: '7d', '36h', '90m' (also s, min, w and fractions such as '1.5d', the grammar of
    log_audit's ``since``: logaudit.duration_seconds), or '0' / 0 for none. ValueError says what is wrong and
    what to write."""
    if isinstance(value, bool):
        raise ValueError("%s %r is not a duration: write a number with a unit, such as 7d, 36h or 90m (0 for off)"
                         % (what, value))
    text = str(value if value is not None else "").strip()
    from .logaudit import duration_seconds

    seconds = duration_seconds(text)
    if seconds is not None:
        return int(round(seconds))
    try:
        number = float(text)
    except ValueError:
        number = None
    if number == 0:
        return 0
    if number is not None:
        raise ValueError("%s %r has no unit: write it with d (days), h (hours) or m (minutes), such as 7d, 36h or "
                         "90m, or 0 for off" % (what, value))
    raise ValueError("%s %r is not a duration: write a whole or decimal number followed by d (days), h (hours) or "
                     "m (minutes), such as 7d, 36h or 90m, or 0 for off" % (what, value))


def describe_duration(seconds):
    """'7 days', '36 hours', '90 minutes', '1 day': whole days as days, else hours, else minutes, else seconds."""
    seconds = int(seconds)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return unit if count == 1 else "%d %ss" % (count, unit)
    return "%d seconds" % seconds


def prune_plan(items, keep_last=7, keep_daily=7, keep_weekly=4, keep_monthly=6, keep_within=0, now=None):
    """(keep, delete, reasons) for ``describe()`` items of one database. Pure: unit-tested without files.

    Keeps the newest ``keep_last``, the newest backup of each of the last ``keep_daily`` days, ``keep_weekly``
    ISO weeks and ``keep_monthly`` months (GFS), and every backup that finished within ``keep_within`` seconds
    before ``now`` (an aware datetime, needed when ``keep_within`` is set; 0: off); always keeps the newest
    verified backup; never deletes all. Deletes nothing when the newest backup failed verification (a failing run
    must not eat the good ones).
    """
    keep_within = int(keep_within or 0)
    if keep_within < 0:
        raise ValueError("keep_within is %d seconds: use 0 (off) or more" % keep_within)
    if keep_within and now is None:
        raise ValueError("prune_plan needs now (the current time) when keep_within is set")
    items = sorted((i for i in items if "error" not in i), key=lambda i: i["finished_at"], reverse=True)
    reasons = {}
    if not items:
        return [], [], reasons
    newest = items[0]
    if newest.get("verification") and newest["verification"].get("status") != "passed":
        for item in items:
            reasons[item["name"]] = "kept: the newest backup failed verification, so nothing is deleted this run"
        return [i["name"] for i in items], [], reasons
    for item in items[:keep_last]:
        reasons.setdefault(item["name"], "one of the last %d" % keep_last)
    if keep_within:
        within = "taken within the last %s" % describe_duration(keep_within)
        for item in items:
            if (now - _parse_time(item["finished_at"])).total_seconds() > keep_within:
                break  # newest first: every later item is older still
            reasons.setdefault(item["name"], within)
    for label, count, key in (("daily", keep_daily, lambda t: t.date()),
                              ("weekly", keep_weekly, lambda t: tuple(t.isocalendar())[:2]),
                              ("monthly", keep_monthly, lambda t: (t.year, t.month))):
        seen = []
        for item in items:
            bucket = key(_parse_time(item["finished_at"]))
            if bucket not in seen:
                seen.append(bucket)
                if len(seen) > count:
                    break
                reasons.setdefault(item["name"], "newest of its %s window %s" % (label, bucket))
    verified = [i for i in items if i.get("verified")]
    if verified:
        reasons.setdefault(verified[0]["name"], "the newest verified backup")
    reasons.setdefault(newest["name"], "the newest backup")
    # A differential is restored on top of its full backup: a kept differential keeps its parent.
    names = {i["name"] for i in items}
    for item in items:
        parent = item.get("parent")
        if item["name"] in reasons and parent in names:
            reasons.setdefault(parent, "the full backup that kept differential %s builds on" % item["name"])
    keep = [i["name"] for i in items if i["name"] in reasons]
    delete = [i["name"] for i in items if i["name"] not in reasons]
    return keep, delete, reasons


def delete_backup(directory, name):
    """Remove a backup's files, the manifest first; artifact.InUse (nothing removed) while a restore or a
    verification reads it (artifact.reading)."""
    with artifact.deleting(directory, name):
        manifest = artifact.read_manifest(directory, name)
        removed = []
        # The manifest goes first: from then on nothing looks like a complete backup.
        parts = [os.path.join(directory, p["file"]) for p in manifest.get("files", {}).values()]
        for path in [artifact.manifest_path(directory, name), os.path.join(directory, manifest["data"]["file"]),
                     artifact.verify_path(directory, name)] + parts:
            if os.path.exists(path):
                os.unlink(path)
                removed.append(os.path.basename(path))
    return removed
