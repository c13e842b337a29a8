# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release state of one application on its host: release history, deploy lock, audit log.

Everything lives in ``<state_dir>/<app>/`` (mode 0700):

``releases.json``  the release history, a JSON list, oldest first. Rewritten whole under a short ``flock`` on
                   ``.history.lock`` via a temporary file in the same directory, fsync, ``rename`` and a directory
                   fsync, so a crash leaves either the old or the new history, never a torn one. A temporary
                   file left behind by a crash is never read (and is removed by the next write).
``deploy.lock``    the deploy lock, created with ``O_CREAT | O_EXCL`` so exactly one holder wins. It is never
                   broken automatically: only ``break_lock`` removes a lock held by someone else; ``info`` and
                   the lock-held error report its age so a human can judge whether that deploy is dead.
``audit.jsonl``    append-only JSON lines (``O_APPEND``, one ``write`` per line, fsync).

No Ansible here: the module ``app_release`` is a thin wrapper, the tests drive this directly with a fake clock.
"""

import contextlib
import datetime
import errno
import fcntl
import json
import os
import re
import secrets
import shlex
import socket
import tempfile
import time

APP_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
EVENT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
OUTCOMES = ("success", "failed", "rolled_back")
KINDS = ("deploy", "rollback", "adopt")  # adopt: a live release the history had lost (adoption())
RELEASE_FIELDS = ("id", "version", "image", "image_id", "config_hash", "schema_revision", "backup", "container",
                  "db_login", "deployed_at", "actor", "outcome", "kind", "duration_s", "reason")
AUDIT_FIELDS = ("at", "event", "app", "version", "from_version", "actor", "outcome", "duration_s", "message")
HISTORY = "releases.json"
LOCK = "deploy.lock"
AUDIT = "audit.jsonl"
HISTORY_GUARD = ".history.lock"
# What a lock records about the controller's run (controller.identity() without its process list).
RUN_FIELDS = ("host", "boot_id", "pid_ns", "pid", "pgid", "started", "program", "at")
TAIL = 20
STAMP = "%Y-%m-%dT%H:%M:%SZ"


class ReleaseError(Exception):
    """Something about the release state is wrong; the message says what and what to do."""


class LockHeld(ReleaseError):
    """The deploy lock is held by someone else (``lock`` is its content with ``age_s``)."""

    def __init__(self, message, lock, waited_s=0):
        ReleaseError.__init__(self, message)
        self.lock = lock
        self.waited_s = waited_s


# ---------------------------------------------------------------------------------------------- helpers
def check_app(app):
    """``app`` when it is safe as one directory name (no separators, no ``.``/``..``), else ReleaseError."""
    if not isinstance(app, str) or not APP_RE.fullmatch(app) or app in (".", ".."):
        raise ReleaseError("app %r cannot be used as a directory name under state_dir: use 1 to 64 letters, "
                           "digits, '_', '-' or '.' (not '.' or '..')" % (app,))
    return app


def default_actor(environ=None, hostname=None):
    """The rule playbooks/preflight.yml applies to ``rollcall_actor`` (which the playbooks pass), for direct use:
    ``ROLLCALL_ACTOR``, else ``SUDO_USER`` (else ``USER``, ``LOGNAME``, the account's name) ``@`` host."""
    own = environ is None
    environ = os.environ if own else environ
    if environ.get("ROLLCALL_ACTOR"):
        return environ["ROLLCALL_ACTOR"]
    user = environ.get("SUDO_USER") or environ.get("USER") or environ.get("LOGNAME")
    if not user and not own:
        user = "unknown"
    elif not user:  # this process's account (cron and AWX jobs often run without USER)
        try:
            import pwd
            user = pwd.getpwuid(os.getuid()).pw_name
        except (ImportError, KeyError):
            user = "uid-%s" % os.getuid()
    return "%s@%s" % (user, hostname or socket.gethostname())


def isoformat(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(STAMP)


def parse_stamp(text):
    """Seconds since the epoch for a ``YYYY-mm-ddTHH:MM:SSZ`` stamp, None when it is not one."""
    try:
        when = datetime.datetime.strptime(text, STAMP)
    except (TypeError, ValueError):
        return None
    return when.replace(tzinfo=datetime.timezone.utc).timestamp()


def fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe_lock(lock):
    """``WHO (version V, 'message') since T (N s ago)`` for messages."""
    if lock.get("damaged"):
        who = "an unknown holder (the lock file is empty or damaged)"
    else:
        who = lock.get("holder") or "an unknown holder"
    detail = "version %s" % (lock.get("version") or "unknown")
    if lock.get("message"):
        detail += ", %r" % lock["message"]
    run = lock.get("controller") if isinstance(lock.get("controller"), dict) else {}
    if run.get("pid") and run.get("host"):  # the ansible-playbook process, which a user can look for
        detail += "; ansible pid %s on %s" % (run["pid"], run["host"])
    elif lock.get("host") and lock.get("pid"):
        detail += "; pid %s on %s" % (lock["pid"], lock["host"])
    return "%s (%s) since %s (%s s ago)" % (who, detail, lock.get("since") or "an unknown time",
                                            lock.get("age_s") if lock.get("age_s") is not None else "?")


def holder_gone(lock, controller):
    """Why the run holding ``lock`` has provably ended, or None when it may still be running. Pure.

    ``controller`` is this run's ``controller.identity()`` (None when the controller has no ``/proc``). Only a lock
    taken from this same controller (same kernel boot, same pid namespace) before this run looked can be judged:
    its Ansible process ran when it took the lock, so if it still ran when this run looked it is listed in
    ``live`` (with its start time, against a reused pid); and no process may be left in its process group
    (``groups``): a task worker or a module it started could still be changing things. Only a playbook's lock:
    one taken with the ad hoc ``ansible`` command is meant to outlive that command (a freeze by hand, released by
    ``unlock``). A lock from another controller, an AWX job's container, an older Rollcall (no ``controller``
    recorded), a damaged lock file, or one taken after this run looked: None.
    """
    held = lock.get("controller") if isinstance(lock, dict) else None
    if not controller or not isinstance(held, dict) or held.get("program") != "ansible-playbook":
        return None
    for key in ("boot_id", "pid_ns"):
        if not held.get(key) or held.get(key) != controller.get(key):
            return None
    try:
        taken, looked = float(held["at"]), float(controller["at"])
        pid, started, group = int(held["pid"]), int(held["started"]), int(held["pgid"])
    except (KeyError, TypeError, ValueError):
        return None
    if taken >= looked:
        return None
    if (controller.get("live") or {}).get(str(pid)) == started:
        return None
    if group in (controller.get("groups") or ()):
        return None
    return ("that run (ansible pid %d) is no longer running on %s: it was interrupted or killed before it "
            "released the lock" % (pid, held.get("host") or "this controller"))


# ---------------------------------------------------------------------------------------------- history facts
def successful(history):
    return [entry for entry in history if entry.get("outcome") == "success"]


def current_release(history):
    """The newest entry whose outcome is success (a successful rollback counts), None when there is none."""
    done = successful(history)
    return done[-1] if done else None


ADOPTED = ("adopted: the release history had no record of the live release (a new or emptied state directory: "
           "releases.json removed or lost); taken from its container's labels, with the schema it runs on")
LIVE_FIELDS = ("version", "image", "image_id", "config_hash", "schema_revision", "container", "db_login")


def adoption(history, live):
    """The history entry to record for the release that runs now when the history knows no release, or None. Pure.

    ``live``: what the live container says of itself (LIVE_FIELDS: its rollcall.version label, image, image ID,
    config hash, the schema it runs on, container, database login). Without it a deploy after a lost history
    recorded only the new release, and rollback.yml had nothing to go back to although the old release's image
    was still on the host. Nothing to adopt when the history has a current release (it is the authority then), or
    when the container carries no version (not one of ours)."""
    if current_release(history) is not None or not live or not live.get("version"):
        return None
    release = dict((field, live.get(field)) for field in LIVE_FIELDS)
    release.update(kind="adopt", outcome="success", reason=ADOPTED)
    return release


def previous_release(history):
    """The newest successful entry older than the current one whose version differs from the current's."""
    done = successful(history)
    if not done:
        return None
    current = done[-1]
    for entry in reversed(done[:-1]):
        if entry.get("version") != current.get("version"):
            return entry
    return None


def kept_releases(history, keep):
    """The newest ``keep`` distinct successful versions, newest first, each its newest entry."""
    kept, seen = [], set()
    for entry in reversed(successful(history)):
        if len(kept) >= keep:
            break
        if entry.get("version") not in seen:
            seen.add(entry.get("version"))
            kept.append(entry)
    return kept


def rollback_target(history):
    """The version ``rollback.yml`` goes to when no target is named: the release that was live before the last
    deploy (or roll forward) that is still in effect, None when there is none.

    The successful entries are read as a stack: a deploy of another version, or a rollback to a version not on the
    stack (a roll forward with ``to=``), puts it on top; a rollback to a version on the stack takes off what came
    after it. So a rollback run twice goes one release further back each time (deploy 1.0.0, 1.1.0, 1.2.0, rollback:
    1.1.0, rollback: 1.0.0) and never forward again to the release it left (deploy 1.0.0, 1.1.0, rollback: 1.0.0,
    rollback: None, nothing to go back to); going forward takes ``-e to=VERSION``.
    """
    stack = []
    for entry in successful(history):
        version = entry.get("version")
        if entry.get("kind") == "rollback" and version in stack:
            del stack[len(stack) - stack[::-1].index(version):]
        elif not stack or stack[-1] != version:
            stack.append(version)
    return stack[-2] if len(stack) > 1 else None


def facts(history, keep):
    return {"releases": history, "current": current_release(history), "previous": previous_release(history),
            "kept": kept_releases(history, keep), "rollback_target": rollback_target(history)}


def new_entry(history, release, actor, now):
    """The history entry for ``release`` (a dict of the fields in RELEASE_FIELDS): defaults, id, deployed_at."""
    if not isinstance(release, dict):
        raise ReleaseError("release must be a dict of %s" % ", ".join(RELEASE_FIELDS))
    unknown = sorted(set(release) - set(RELEASE_FIELDS))
    if unknown:
        raise ReleaseError("release has unknown field(s) %s; the fields are %s"
                           % (", ".join(unknown), ", ".join(RELEASE_FIELDS)))
    # Templated playbooks pass "" for "nothing" (no backup taken, ...): store it as null.
    entry = dict((field, None if release.get(field) == "" else release.get(field)) for field in RELEASE_FIELDS)
    if entry["version"] in (None, ""):
        raise ReleaseError("release.version (or version) is required to record a release")
    entry["version"] = str(entry["version"])
    entry["outcome"] = entry["outcome"] or "success"
    entry["kind"] = entry["kind"] or "deploy"
    if entry["outcome"] not in OUTCOMES:
        raise ReleaseError("release.outcome must be one of %s, not %r" % (", ".join(OUTCOMES), entry["outcome"]))
    if entry["kind"] not in KINDS:
        raise ReleaseError("release.kind must be one of %s, not %r" % (", ".join(KINDS), entry["kind"]))
    if entry["duration_s"] is not None:
        try:
            entry["duration_s"] = round(float(entry["duration_s"]), 3)
        except (TypeError, ValueError):
            raise ReleaseError("release.duration_s must be a number of seconds, not %r" % (entry["duration_s"],)) \
                from None
    entry["actor"] = entry["actor"] or actor
    entry["id"] = max([e.get("id") for e in history if isinstance(e.get("id"), int)] + [0]) + 1
    entry["deployed_at"] = isoformat(now)
    return entry


def adhoc_command(host, inventories, python, cwd, collections=None):
    """The ``ansible`` command line that reaches ``host`` from the controller the way this run did: the ``ansible``
    beside the playbook's ``python``, and every inventory source, each relative to ``cwd`` when under it (what a
    person at that directory would type), shell-quoted. ``collections``: a directory to give as
    ANSIBLE_COLLECTIONS_PATH, when this collection is found there only (beside the playbooks, not by the config)."""
    def shown(path):
        path = os.path.normpath(path)
        inside = os.path.isabs(path) and cwd and (path + os.sep).startswith(os.path.normpath(cwd) + os.sep)
        return os.path.relpath(path, cwd) if inside else path

    binary = shown(os.path.join(os.path.dirname(python), "ansible")) if python else "ansible"
    if python and os.sep not in binary:
        binary = os.curdir + os.sep + binary  # beside the cwd: not a PATH lookup
    argv = [binary, host]
    for source in inventories or []:
        argv += ["-i", shown(source)]
    command = " ".join(shlex.quote(a) for a in argv)
    return "ANSIBLE_COLLECTIONS_PATH=%s %s" % (shlex.quote(shown(collections)), command) if collections else command


# ---------------------------------------------------------------------------------------------- the store
class ReleaseStore:
    """Release history, deploy lock and audit log of one application under ``<state_dir>/<app>/``.

    ``clock`` (seconds since the epoch) and ``sleep`` are injectable for tests; ``hostname`` and ``pid`` are
    what a lock records about its holder.
    """

    def __init__(self, state_dir, app, clock=time.time, sleep=time.sleep, hostname=None, pid=None, adhoc=None):
        if not state_dir or not os.path.isabs(state_dir):
            raise ReleaseError("state_dir must be an absolute path, not %r" % (state_dir,))
        self.app = check_app(app)
        self.state_dir = state_dir
        self.directory = os.path.join(state_dir, app)
        self.history_path = os.path.join(self.directory, HISTORY)
        self.lock_path = os.path.join(self.directory, LOCK)
        self.audit_path = os.path.join(self.directory, AUDIT)
        self.clock = clock
        self.sleep = sleep
        self.hostname = hostname or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.adhoc = adhoc or "ansible <this host> -i <inventory>"  # how the lock-held message says to reach us
        self.broken_stale = []  # (lock, why, audit line) of each lock acquire() broke because its run had ended

    def now(self):
        return self.clock()

    def ensure_directory(self):
        """Create ``<state_dir>/<app>`` (0700) when missing; only the changing actions call this."""
        try:
            if not os.path.isdir(self.state_dir):
                os.makedirs(self.state_dir, 0o755, exist_ok=True)
            try:
                os.mkdir(self.directory, 0o700)
                fsync_directory(self.state_dir)
            except FileExistsError:
                if not os.path.isdir(self.directory):
                    raise ReleaseError("%s exists but is not a directory; move it aside" % self.directory) \
                        from None
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise ReleaseError("cannot create the state directory %s: %s; run the task with become, or set "
                               "state_dir to a directory this user can write" % (self.directory, exc.strerror)) \
                from None

    # ------------------------------------------------------------------------------------------ lock
    def read_lock(self):
        """The lock's content with ``age_s``, None when there is no lock; a damaged lock file still counts."""
        try:
            with open(self.lock_path, "rb") as handle:
                raw = handle.read()
                mtime = os.fstat(handle.fileno()).st_mtime
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ReleaseError("cannot read the deploy lock %s: %s" % (self.lock_path, exc.strerror)) from None
        try:
            lock = json.loads(raw.decode("utf-8"))
            if not isinstance(lock, dict):
                raise ValueError("not an object")
        except ValueError:
            # A holder that died between creating the file and writing it, or a damaged file: still a lock.
            lock = {"holder": None, "version": None, "message": None, "since": isoformat(mtime), "token": None,
                    "pid": None, "host": None, "damaged": True}
        since = parse_stamp(lock.get("since"))
        lock["age_s"] = max(0, int(self.now() - (mtime if since is None else since)))
        return lock

    def held_message(self, lock):
        """Who holds it, and the one command that breaks it when that run is dead (a Ctrl-C or a lost controller
        leaves the lock: ansible-playbook stops without running the role's release of it)."""
        return ("deploy lock for %s is held by %s; wait, or break it with action=break_lock if that deploy is dead "
                "(interrupted, or its controller gone; audited): %s -m rollcall.ops.app_release "
                "-a 'action=break_lock app=%s state_dir=%s'"
                % (self.app, describe_lock(lock), self.adhoc, self.app, self.state_dir))

    def _create_lock(self, content):
        """Create the lock file with ``content``; False when it already exists."""
        try:
            fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        try:
            os.write(fd, (json.dumps(content, sort_keys=True) + "\n").encode("utf-8"))
            os.fsync(fd)
        except OSError:
            os.close(fd)
            os.unlink(self.lock_path)  # never leave a lock nobody holds (disk full, ...)
            raise
        os.close(fd)
        fsync_directory(self.directory)
        return True

    def probe_lock(self, token=None):
        """For check mode: (could acquire now, already held with ``token``, the current lock or None)."""
        lock = self.read_lock()
        if lock is None:
            return True, False, None
        mine = bool(token) and lock.get("token") == token
        return mine, mine, lock

    def acquire(self, holder, version=None, message=None, token=None, timeout=0, poll=1.0, controller=None):
        """Take the deploy lock, waiting up to ``timeout`` seconds (polling every ``poll``).

        ``controller`` (``controller.identity()`` of the run taking it) is recorded in the lock without its process
        list, and a lock whose run has provably ended (``holder_gone``) is broken, audited, and noted in
        ``broken_stale`` instead of waited for. Returns (changed, lock): changed is False when ``token`` already
        holds it. Raises LockHeld on timeout.
        """
        if timeout < 0:
            raise ReleaseError("lock_timeout must be 0 or more seconds, not %s" % timeout)
        self.ensure_directory()
        token = token or secrets.token_hex(16)
        started = self.now()
        while True:
            content = {"holder": holder, "version": version, "message": message, "since": isoformat(self.now()),
                       "token": token, "pid": self.pid, "host": self.hostname}
            if controller:
                content["controller"] = {key: controller.get(key) for key in RUN_FIELDS}
            try:
                if self._create_lock(content):
                    return True, dict(content, age_s=0)
            except OSError as exc:
                raise ReleaseError("cannot create the deploy lock %s: %s" % (self.lock_path, exc.strerror)) \
                    from None
            lock = self.read_lock()
            if lock is None:
                continue  # released between our attempt and the read: try again at once
            if lock.get("token") == token:
                return False, lock
            if controller and holder_gone(lock, controller) and self._break_ended(controller, holder):
                continue  # its run had ended: take it at once
            waited = self.now() - started
            if waited >= timeout:
                raise LockHeld(self.held_message(lock), lock, int(waited))
            self.sleep(min(poll, timeout - waited))

    def release(self, token):
        """Remove the lock if ``token`` holds it. Returns (changed, the lock removed or None).

        A lock held with another token is never removed here (ReleaseError): that is what break_lock is for.
        """
        lock = self.read_lock()
        if lock is None:
            return False, None
        if not token or lock.get("token") != token:
            raise ReleaseError("deploy lock for %s is held by %s, not with the token given; unlock only releases "
                               "your own lock (pass the token that action=lock returned), or break it with "
                               "action=break_lock if that deploy is dead" % (self.app, describe_lock(lock)))
        self._remove_lock()
        return True, lock

    def _break_ended(self, controller, actor):
        """Remove the lock if its run has provably ended, deciding on what the file says under the history guard's
        flock (two waiters never both break, and never the lock the other took). True when removed."""
        try:
            fd = self._guard()
        except OSError as exc:
            raise ReleaseError("cannot lock the release history in %s: %s" % (self.directory, exc.strerror)) \
                from None
        try:
            lock = self.read_lock()
            why = holder_gone(lock, controller) if lock is not None else None
            if why is None:
                return False
            self._remove_lock()
        finally:
            os.close(fd)  # releases the flock
        note = "broke the deploy lock held by %s: %s" % (describe_lock(lock), why)
        try:
            line = self.append_audit("lock_broken", actor, version=lock.get("version"), message=note)
        except ReleaseError as exc:
            raise ReleaseError("the lock of a run that had ended was broken, but auditing it failed: %s" % exc) \
                from None
        self.broken_stale.append((lock, why, line))
        return True

    def break_lock(self, actor, message=None):
        """Remove whatever lock is there and audit it (event lock_broken).

        Returns (changed, the broken lock or None, the audit line or None).
        """
        lock = self.read_lock()
        if lock is None:
            return False, None, None
        self._remove_lock()
        note = "broke the deploy lock held by %s" % describe_lock(lock)
        if message:
            note += ": %s" % message
        try:
            line = self.append_audit("lock_broken", actor, version=lock.get("version"), message=note)
        except ReleaseError as exc:
            raise ReleaseError("the lock was broken, but auditing it failed: %s" % exc) from None
        return True, lock, line

    def _remove_lock(self):
        try:
            os.unlink(self.lock_path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ReleaseError("cannot remove the deploy lock %s: %s" % (self.lock_path, exc.strerror)) from None
        fsync_directory(self.directory)

    # ------------------------------------------------------------------------------------------ history
    def read_history(self):
        """The release history, oldest first ([] when there is none); ReleaseError when it is damaged."""
        try:
            with open(self.history_path, encoding="utf-8") as handle:
                history = json.load(handle)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ReleaseError("cannot read the release history %s: %s" % (self.history_path, exc.strerror)) \
                from None
        except ValueError as exc:
            raise ReleaseError("the release history %s is not valid JSON (%s); restore it from a backup of the "
                               "host, or move it aside to start an empty history (rollback then has nothing to "
                               "choose from)" % (self.history_path, exc)) from None
        if not isinstance(history, list) or not all(isinstance(entry, dict) for entry in history):
            raise ReleaseError("the release history %s is not a list of releases; restore it from a backup of the "
                               "host, or move it aside to start an empty history" % self.history_path)
        return history

    def _write_history(self, history):
        """temp file in the same directory + fsync + rename + directory fsync; mode 0600."""
        fd, temp = tempfile.mkstemp(prefix="." + HISTORY + ".", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(history, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.history_path)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise
        fsync_directory(self.directory)

    def _remove_stale_temps(self):
        """Temporary history files left by a crashed writer (we hold the history guard: none is in use)."""
        prefix = "." + HISTORY + "."
        for name in os.listdir(self.directory):
            if name.startswith(prefix) and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.directory, name))

    def _guard(self):
        fd = os.open(os.path.join(self.directory, HISTORY_GUARD), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def plan_record(self, release, actor, history=None):
        """The entry ``record`` would store (for check mode) and the history it would be appended to."""
        history = self.read_history() if history is None else history
        return new_entry(history, release, actor, self.now()), history

    def record(self, release, actor, message=None, from_version=None):
        """Append ``release`` to the history and audit it. Returns (the stored entry, the new history).

        The audit line's from_version is ``from_version`` when given, else the current release's version.
        """
        self.ensure_directory()
        try:
            fd = self._guard()
        except OSError as exc:
            raise ReleaseError("cannot lock the release history in %s: %s" % (self.directory, exc.strerror)) \
                from None
        try:
            history = self.read_history()
            before = current_release(history)
            entry = new_entry(history, release, actor, self.now())
            history = history + [entry]
            try:
                self._remove_stale_temps()
                self._write_history(history)
            except OSError as exc:
                raise ReleaseError("cannot write the release history %s: %s; the history is unchanged"
                                   % (self.history_path, exc.strerror)) from None
        finally:
            os.close(fd)  # releases the flock
        try:
            self.append_audit(record_event(entry), entry["actor"], version=entry["version"],
                              from_version=from_version or (before.get("version") if before else None),
                              outcome=entry["outcome"],
                              duration_s=entry["duration_s"], message=entry.get("reason") or message)
        except ReleaseError as exc:
            raise ReleaseError("release %d (%s) was recorded, but auditing it failed: %s"
                               % (entry["id"], entry["version"], exc)) from None
        return entry, history

    # ------------------------------------------------------------------------------------------ audit
    def audit_line(self, event, actor, version=None, from_version=None, outcome=None, duration_s=None,
                   message=None):
        if not isinstance(event, str) or not EVENT_RE.fullmatch(event):
            raise ReleaseError("event %r is not an event name: use 1 to 64 letters, digits, '_', '-' or '.' "
                               "(for example deploy_failed)" % (event,))
        return {"at": isoformat(self.now()), "event": event, "app": self.app, "version": version,
                "from_version": from_version, "actor": actor, "outcome": outcome, "duration_s": duration_s,
                "message": message}

    def append_audit(self, event, actor, **fields):
        """Append one JSON line (O_APPEND, a single write, fsync). Returns the line's content."""
        line = self.audit_line(event, actor, **fields)
        data = (json.dumps(line, sort_keys=True) + "\n").encode("utf-8")
        self.ensure_directory()
        try:
            fd = os.open(self.audit_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(errno.ENOSPC, "short write (%d of %d bytes)" % (written, len(data)))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise ReleaseError("cannot append to the audit log %s: %s" % (self.audit_path, exc.strerror)) from None
        return line

    def audit_tail(self, count=TAIL):
        """The last ``count`` audit lines, oldest first; a torn line (crash mid-write) comes back as
        ``{"unparsed": text}``."""
        try:
            with open(self.audit_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                end = position = handle.tell()
                data = b""
                while position > 0 and data.count(b"\n") <= count:
                    step = min(65536, position)
                    position -= step
                    handle.seek(position)
                    data = handle.read(step) + data
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ReleaseError("cannot read the audit log %s: %s" % (self.audit_path, exc.strerror)) from None
        lines = [line for line in data.decode("utf-8", "replace").split("\n") if line.strip()]
        if position > 0 and end:
            lines = lines[1:]  # the first one may be cut
        tail = []
        for line in lines[-count:] if count > 0 else []:
            try:
                tail.append(json.loads(line))
            except ValueError:
                tail.append({"unparsed": line})
        return tail

    # ------------------------------------------------------------------------------------------ info
    def info(self, keep=5):
        """Everything ``info`` reports; reads only."""
        if keep < 1:
            raise ReleaseError("keep must be at least 1, not %s" % keep)
        result = facts(self.read_history(), keep)
        result["lock"] = self.read_lock()
        result["audit_tail"] = self.audit_tail()
        return result


def record_event(entry):
    """The audit event of a recorded release: deploy_success, rollback_failed, deploy_rolled_back, ..."""
    return "%s_%s" % (entry["kind"], entry["outcome"])
