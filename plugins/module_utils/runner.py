# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How engine adapters run client tools: the interface, and the local (subprocess) implementation.

A runner runs one argv (never a shell string), feeds it an iterable of byte chunks on stdin, hands its stdout
to a sink chunk by chunk (constant memory) or captures a bounded amount, and always keeps the tail of stderr
for the error message. ``docker.ContainerRunner`` implements the same interface with ``docker exec``.
"""

import contextlib
import os
import queue
import signal
import subprocess
import threading

STDERR_KEEP = 64 * 1024
CAPTURE_LIMIT = 16 * 1024 * 1024
CHUNK = 1024 * 1024


class RunnerError(Exception):
    """A command could not be started at all (missing tool, container gone, engine down)."""


class ContainerMissing(RunnerError):
    """The container to run in does not exist (never deployed, removed, or a mistyped name): callers that can say
    what to do about it (deploy first, check the name) tell it from a stopped container or an engine that is down."""

    def __init__(self, container, alike=(), kept=()):
        if kept:  # the stack is this one, its containers are gone: not a mistyped name
            hint = (", but this stack's volumes do (%s): its containers were removed (teardown.yml keeps the "
                    "volumes); playbooks/deploy.yml starts them again on that data" % ", ".join(kept))
        elif alike:
            hint = ("; this engine has %s (is rollcall_project right? it names the stack a playbook acts on)"
                    % ", ".join(alike))
        else:
            hint = ""
        super().__init__("container %s does not exist%s" % (container, hint))
        self.container = container


# How long a stopped command gets between SIGTERM and SIGKILL.
STOP_GRACE_S = 5


def signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return "signal %d" % number


def explain_exit(tool, rc, stderr, stopped=None):
    """Why ``tool`` failed when its stderr does not say (or a container stopped under it), else None.

    ``rc``: a negative number is a signal (subprocess), 129..192 is 128 + signal (a shell, docker exec).
    ``stopped``: what happened to the container the tool ran in, when it is no longer running.
    """
    if rc == 0:
        return None
    if stopped:
        return "%s did not finish: %s" % (tool, stopped)
    if rc is not None and (rc < 0 or 128 < rc <= 128 + 64):
        number = -rc if rc < 0 else rc - 128
        return "%s was killed by %s (exit code %d)" % (tool, signal_name(number), rc)
    if not stderr.strip():
        return "%s exited with code %s and wrote no error message" % (tool, rc)
    return None


def with_note(stderr, note):
    """stderr with an explanation as its last line (engines report the last line when nothing else matches)."""
    if not note:
        return stderr
    return (stderr.rstrip("\n") + "\n" if stderr.strip() else "") + note


class Result:
    """``note``: what the runner knows about a failure beyond stderr (also the last line of ``stderr``)."""

    def __init__(self, rc, stdout=b"", stderr="", note=None):
        self.rc = rc
        self.stdout = stdout
        self.stderr = with_note(stderr, note)
        self.note = note

    @property
    def text(self):
        return self.stdout.decode("utf-8", "replace")

    def explained(self, reason):
        """``reason`` (the tool's own error line) with what the runner knows added, when it says more."""
        return "%s; %s" % (reason, self.note) if self.note and self.note not in reason else reason

    def last_error_lines(self, count):
        """The last ``count`` non-blank lines of stderr, joined with "; " (else the exit code)."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return "; ".join(lines[-count:]) if lines else "exit code %s" % self.rc

    def last_error_line(self):
        return self.last_error_lines(1)


class _Tail:
    """Keeps the last ``limit`` bytes written to it."""

    def __init__(self, limit=STDERR_KEEP):
        self.limit = limit
        self.data = bytearray()

    def write(self, data):
        self.data += data
        if len(self.data) > self.limit:
            del self.data[:len(self.data) - self.limit]

    def text(self):
        return self.data.decode("utf-8", "replace")


class _Capture:
    def __init__(self, limit=CAPTURE_LIMIT):
        self.limit = limit
        self.data = bytearray()

    def write(self, data):
        if len(self.data) + len(data) > self.limit:
            raise RunnerError("command output exceeds %d bytes; stream it to a sink instead" % self.limit)
        self.data += data


class Feeder:
    """Writes an iterable of byte chunks to a command's stdin from a thread, then closes it.

    A command that stops reading early is not an error here (its exit code and stderr say why); any other failure
    (a checksum mismatch raised by the iterable, say) is re-raised by ``finish()`` in the calling thread.
    An iterable that waits for something outside the command (the psql session that holds a snapshot until told
    to commit) offers ``command_ended()``: ``finish()`` calls it so the iterable can stop waiting.
    """

    def __init__(self, chunks, write, close):
        self.chunks, self.write, self.close = chunks, write, close
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for chunk in self.chunks:
                for start in range(0, len(chunk), CHUNK):
                    self.write(chunk[start:start + CHUNK])
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # noqa: BLE001 - re-raised by finish()
            self.error = exc
        finally:
            with contextlib.suppress(OSError):
                self.close()

    def finish(self):
        """Called once the command has ended: waits for the whole input (its checks run to the end)."""
        ended = getattr(self.chunks, "command_ended", None)
        if ended is not None:
            ended()
        self.thread.join()
        if self.error is not None:
            raise self.error


class ReadAhead:
    """An iterator of byte chunks produced ``depth`` chunks ahead, in a thread of its own.

    A restore's input is read, hashed, decrypted and decompressed as it streams (artifact.read_plain); done in the
    thread that writes to the tool, the tool waits while the next chunk is made. Here the two overlap (hashing,
    decryption, decompression and socket writes release the GIL). What the source raises (a checksum or
    authentication error) is raised by ``next()`` in its place in the stream. At most ``depth`` chunks of at most
    CHUNK bytes wait, so memory stays bounded. ``close()`` stops the thread (an abandoned stream) without reading
    on. An iterator object, not a generator: an abandoned ``for`` loop does not stop it, ``close()`` does.
    """

    _END = object()

    def __init__(self, chunks, depth=3):
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._produce, args=(iter(chunks),), daemon=True)
        self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, chunks):
        try:
            for chunk in chunks:
                for start in range(0, len(chunk), CHUNK):  # a long chunk (decompressed) waits in CHUNK pieces
                    if not self._put((chunk[start:start + CHUNK], None)):
                        return
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, raised there
            self._put((None, exc))
            return
        self._put((self._END, None))

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        chunk, error = self._queue.get()
        if error is not None:
            self._done = True
            raise error
        if chunk is self._END:
            self._done = True
            raise StopIteration
        return chunk

    def close(self):
        """Stop producing; what was made and not read is dropped."""
        self._done = True
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=5)


def _flushed(pipe):
    """A write that reaches the command now: an input that then waits (the snapshot session) must not sit in a
    buffer."""
    def write(data):
        pipe.write(data)
        pipe.flush()
    return write


class Runner:
    """Interface. ``where`` says where commands run, for messages.

    A command that is interrupted (SIGTERM turned into an exception, a sink that fails, a lost connection) is
    stopped before the exception leaves ``run``: nothing we started keeps running (a pg_dump holding its snapshot).
    When a command fails without saying why on stderr, the runner adds a last line that does (killed by a signal,
    the container stopped).
    """

    where = "?"

    def run(self, argv, stdin=None, sink=None, env=None, user=None):
        """Run ``argv``; ``stdin`` an iterable of bytes, ``sink(bytes)`` receives stdout (else it is captured)."""
        raise NotImplementedError

    def stop_running(self):
        """Stop every command this runner is running now (from other threads: a session that holds a snapshot);
        their ``run`` calls then return with the signal's exit code."""


class LocalRunner(Runner):
    """Runs client tools on the managed host itself."""

    where = "this host"

    def __init__(self):
        self._running = set()

    def stop_running(self):
        for proc in list(self._running):
            stop_process(proc)

    def run(self, argv, stdin=None, sink=None, env=None, user=None):
        if user is not None:
            raise RunnerError("running as another user is only supported inside containers")
        full_env = dict(os.environ, **(env or {}))
        try:
            # Its own process group: stop() reaches the tool's children too (pg_dump -j workers).
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                                    start_new_session=True)
        except FileNotFoundError:
            raise RunnerError("%s is not installed on %s" % (argv[0], self.where)) from None
        tail, capture = _Tail(), (None if sink else _Capture())
        write_out = sink or capture.write

        def drain_stderr():
            for chunk in iter(lambda: proc.stderr.read(8192), b""):
                tail.write(chunk)

        self._running.add(proc)
        try:
            thread = threading.Thread(target=drain_stderr, daemon=True)
            thread.start()
            feeder = Feeder(stdin, _flushed(proc.stdin), proc.stdin.close) if stdin is not None else None
            for chunk in iter(lambda: proc.stdout.read(CHUNK), b""):
                write_out(chunk)
            rc = proc.wait()
        except BaseException:
            stop_process(proc)
            raise
        finally:
            self._running.discard(proc)
        thread.join()
        if feeder is not None:
            feeder.finish()
        stderr = tail.text()
        return Result(rc, bytes(capture.data) if capture else b"", stderr, explain_exit(argv[0], rc, stderr))


def stop_process(proc, grace=STOP_GRACE_S):
    """SIGTERM to the process group of ``proc`` (started with start_new_session), SIGKILL after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
