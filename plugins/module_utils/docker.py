# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that talks to the Docker engine from our modules: exec in a container, streaming both ways.

Uses the Docker SDK for Python (``docker``). Commands run with ``docker exec`` semantics: argv lists, the
environment passed through the API (so passwords never appear on a command line), stdin streamed from an
iterable, stdout and stderr demultiplexed as they arrive.

``docker exec`` has no way to stop what it started: closing the connection leaves the process running in the
container (a pg_dump holding its snapshot for as long as it takes). So every command starts through a tiny ``sh``
wrapper that prints its pid on stderr before it becomes the command (``exec``); an interrupted run stops that pid
with another exec (SIGTERM, then SIGKILL).
"""

import contextlib
import difflib
import socket
import time

from .runner import STOP_GRACE_S, ContainerMissing, Feeder, Result, Runner, RunnerError, _Capture, _Tail, explain_exit
from .timefmt import age_text, docker_epoch, iso_minute

try:
    import docker
    import docker.errors
    from docker.utils.socket import frames_iter

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported when a container is asked for
    HAS_DOCKER = False

STDOUT, STDERR = 1, 2
PID_MARK = b"rollcall-pid "
# $$ is the shell's pid, and stays the command's: exec replaces the shell. "$@" is the argv, never parsed.
WRAPPER = ["sh", "-c", 'echo "rollcall-pid $$" >&2; exec "$@"', "rollcall-exec"]
# Stops pid "$1": SIGTERM, up to STOP_GRACE_S seconds to exit, then SIGKILL.
STOP_SCRIPT = ('kill -TERM "$1" 2>/dev/null || exit 0; i=0; '
               'while kill -0 "$1" 2>/dev/null && [ "$i" -lt %d ]; do sleep 0.1; i=$((i+1)); done; '
               'kill -KILL "$1" 2>/dev/null; exit 0' % (STOP_GRACE_S * 10))


class _PidTail(_Tail):
    """stderr's tail without the wrapper's first line, whose pid it keeps."""

    def __init__(self):
        super().__init__()
        self.pid = None
        self.head = bytearray()
        self.searching = True

    def write(self, data):
        if not self.searching:
            return super().write(data)
        self.head += data
        if b"\n" not in self.head and len(self.head) < 64:
            return None
        self.searching = False
        first, _sep, rest = bytes(self.head).partition(b"\n")
        if first.startswith(PID_MARK) and first[len(PID_MARK):].isdigit():
            self.pid = first[len(PID_MARK):].decode()
        else:
            rest = bytes(self.head)
        return super().write(rest) if rest else None

    def text(self):
        return (super().text() + bytes(self.head).decode("utf-8", "replace")) if self.searching else super().text()


def stopped_state(state):
    """What happened to a container that is no longer running, from its inspect ``State`` (None: it runs)."""
    if state.get("Running") and not state.get("Restarting"):
        return None
    text = "the container stopped (%s, exit code %s" % (state.get("Status") or "not running", state.get("ExitCode"))
    if state.get("OOMKilled"):
        text += ", killed for lack of memory"
    return text + ")"


def health_test_argv(inspect):
    """The argv of a container's own health test (its image's HEALTHCHECK) from ``docker inspect``; None: none."""
    test = ((inspect.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]] if len(test) > 1 else None
    return list(test[1:]) if test[0] == "CMD" else list(test)


def run_health_test(api, inspect):
    """Run a container's own health test once, now: (exit code, output), or None when it has none.

    Our images probe every 30 s (each probe is an exec, and an exec costs the engine a tenth of a core-second), so
    Docker's first verdict comes 30 s after a start; whoever needs the answer sooner asks the same test directly."""
    argv = health_test_argv(inspect)
    if argv is None:
        return None
    exec_id = api.exec_create(inspect.get("Id") or inspect.get("Name", "").lstrip("/"), argv, stdout=True,
                              stderr=True)["Id"]
    output = api.exec_start(exec_id) or b""
    code = api.exec_inspect(exec_id).get("ExitCode")
    return code, output.decode("utf-8", "replace").strip()


def wait_health_test(api, name, timeout, interval=1.0, clock=None, sleep=None):
    """Run container ``name``'s own health test until it passes, the container stops, or ``timeout`` s pass.

    Returns {"passed", "attempts", "waited_s", "output" (the test's last words), "state" (the container's status),
    "reason" (why not, when not passed)}. A missing container or one without a health test is a RunnerError."""
    clock, sleep = clock or time.monotonic, sleep or time.sleep
    start, attempts, output = clock(), 0, ""

    def result(reason):
        return {"passed": reason is None, "attempts": attempts, "waited_s": round(clock() - start, 1),
                "output": output, "state": status, "reason": reason}

    while True:
        try:
            inspect = api.inspect_container(name)
        except docker.errors.NotFound:
            raise RunnerError("container %s does not exist; deploy the stack first" % name) from None
        state = inspect.get("State") or {}
        status = state.get("Status") or "unknown"
        if health_test_argv(inspect) is None:
            raise RunnerError("container %s has no health test (its image has no HEALTHCHECK)" % name)
        stopped = stopped_state(state)  # None: running (a restarting container is waited for)
        if stopped and not state.get("Restarting"):
            return result(stopped)
        if state.get("Paused"):  # frozen: no test can pass until someone unpauses it; waiting is for nothing
            return result("it is paused (docker pause): docker unpause %s, or restart it "
                          "(playbooks/incident.yml -e restart=true), then run again" % name)
        if not stopped:
            attempts += 1
            try:
                code, output = run_health_test(api, inspect)
            except docker.errors.APIError as exc:  # stopped between the inspect and the exec: asked again
                code, output = None, str(exc.explanation or exc)
            if code == 0:
                return result(None)
        if clock() - start >= timeout:
            return result("its health test did not pass within %s s" % timeout)
        sleep(interval)


def run_once(client, image, command, timeout=60, **kwargs):
    """Run a one-off container of ``image`` to its end: (exit code, its stdout). Removed with its anonymous volumes
    (the image's VOLUME), which the SDK's ``remove=True`` would leave behind, empty, on the engine."""
    container = client.containers.run(image, command, detach=True, **kwargs)
    try:
        code = container.wait(timeout=timeout)["StatusCode"]
        return code, container.logs(stdout=True, stderr=False)
    finally:
        container.remove(force=True, v=True)


def client(docker_host=None, timeout=60):
    """A Docker client for ``docker_host`` (default: the environment / local socket), or RunnerError."""
    if not HAS_DOCKER:
        raise RunnerError("the Python package 'docker' (Docker SDK) is needed on the managed host")
    try:
        api = docker.DockerClient(base_url=docker_host, timeout=timeout) if docker_host else \
            docker.from_env(timeout=timeout)
        api.ping()
    except Exception:  # noqa: BLE001 - every failure here means the same to the user
        raise RunnerError("the Docker engine does not answer at %s; start it and run again"
                          % (docker_host or "the default socket")) from None
    return api


def look_alikes(api, container, limit=3):
    """The containers on this engine with the part of ``container``'s name after its project (-db, -app), closest
    first: what a mistyped rollcall_project, or another stack's inventory, meant. Empty when none or unknown."""
    part = "-" + container.rsplit("-", 1)[-1]
    try:
        names = [n.lstrip("/") for c in api.containers(all=True) for n in (c.get("Names") or [])[:1]]
    except Exception:  # noqa: BLE001 - only a hint on an error path: the error itself is what counts
        return []
    same = [n for n in names if n != container and n.endswith(part)]
    return difflib.get_close_matches(container, same, n=limit, cutoff=0.0)


# The data volumes of a stack, <project>-<name> (roles/database database_volume; roles/sms_app
# sms_app_sqlite_volume and sms_app_uploads_volume): they outlive its containers (teardown.yml keeps them).
STACK_VOLUMES = ("dbdata", "sqlite", "uploads")


def kept_volumes(api, container):
    """The data volumes of ``container``'s stack (its name before -db, -app) that exist on this engine: a stack
    whose containers were removed has them, a mistyped project has none. Empty when none or unknown."""
    project = container.rsplit("-", 1)[0]
    wanted = ["%s-%s" % (project, name) for name in STACK_VOLUMES]
    try:
        found = {v.get("Name") for v in (api.volumes() or {}).get("Volumes") or []}
    except Exception:  # noqa: BLE001 - only a hint on an error path
        return []
    return [name for name in wanted if name in found]


def missing(api, container):
    kept = kept_volumes(api, container)
    return ContainerMissing(container, () if kept else look_alikes(api, container), kept)


class ContainerRunner(Runner):
    """Runs client tools inside a running container (the database's own container)."""

    def __init__(self, container, docker_host=None):
        self.container_name = container
        self.where = "container %s" % container
        self.api = client(docker_host).api
        try:
            self._inspected = self.api.inspect_container(container)
        except docker.errors.NotFound:
            raise missing(self.api, container) from None
        state = self._inspected["State"]
        if not state.get("Running"):
            raise RunnerError("container %s is not running (%s); start it (playbooks/incident.yml -e restart=true "
                              "restarts what is failing, or docker start %s) and run again"
                              % (container, state.get("Status"), container))
        self._running = {}  # exec id -> (_PidTail, user) of commands running now

    def stop_running(self):
        for tail, user in list(self._running.values()):
            self._stop(tail.pid, user)

    def env_value(self, *names):
        """``env_value`` of this container (its environment does not change while it exists: read at start)."""
        return env_value(self._inspected, *names)

    def run(self, argv, stdin=None, sink=None, env=None, user=None):
        tool = argv[0]
        try:
            exec_id = self.api.exec_create(self.container_name, WRAPPER + list(argv), stdin=stdin is not None,
                                           stdout=True, stderr=True, environment=env or None, user=user or "")["Id"]
            sock = self.api.exec_start(exec_id, socket=True)
        except docker.errors.APIError as exc:
            raise RunnerError("cannot run %s in %s: %s" % (tool, self.where, exc.explanation or exc)) from None
        except OSError as exc:
            raise RunnerError("cannot reach the Docker engine to run %s in %s: %s" % (tool, self.where, exc)) \
                from None
        raw = getattr(sock, "_sock", sock)
        raw.settimeout(None)
        tail, capture = _PidTail(), (None if sink else _Capture())
        write_out = sink or capture.write
        sink_failed = []

        def deliver(data):
            try:
                write_out(data)
            except BaseException:
                sink_failed.append(True)
                raise

        lost, stopped_it = None, False
        self._running[exec_id] = (tail, user)
        try:
            feeder = Feeder(stdin, raw.sendall, lambda: raw.shutdown(socket.SHUT_WR)) if stdin is not None else None
            try:
                for stream, data in frames_iter(sock, tty=False):
                    if stream == STDOUT:
                        deliver(data)
                    elif stream == STDERR:
                        tail.write(data)
                info = self.api.exec_inspect(exec_id)
            except OSError as exc:
                if sink_failed:
                    raise  # the sink's own error (a full disk) says what happened
                lost = str(exc) or type(exc).__name__
            if lost is None and info.get("Running"):
                lost = "the output stream ended while the command still ran"  # the connection was cut under us
            if lost is None and feeder is not None:
                if feeder.thread.is_alive():
                    # The command ended without reading all of its input (pg_restore refusing an archive's header,
                    # a client that could not log in): the engine reads this connection no more, so a write
                    # waiting for room would wait forever. Closing our end ends that write (BrokenPipeError).
                    with contextlib.suppress(OSError):
                        raw.shutdown(socket.SHUT_RDWR)
                feeder.finish()
        except BaseException:
            self._stop(tail.pid, user)
            raise
        finally:
            if lost is not None:
                stopped_it = self._stop(tail.pid, user)
            self._running.pop(exec_id, None)
            sock.close()
        if lost is not None:
            raise RunnerError("lost the connection to the Docker engine while %s ran in %s (%s); %s" % (
                tool, self.where, lost, "it was stopped" if stopped_it else
                "check that the engine runs and that no %s is left running in the container" % tool))
        rc = info.get("ExitCode")
        stderr = tail.text()
        if rc == 126 or (rc == 127 and ("executable file not found" in stderr or "%s: not found" % tool in stderr)):
            raise RunnerError("%s is not installed in %s" % (tool, self.where))
        stopped = self._stopped(settle=True) if rc != 0 else None
        if rc is None:
            raise RunnerError("%s in %s ended without an exit code: %s" % (tool, self.where,
                                                                           stopped or "no reason given"))
        return Result(rc, bytes(capture.data) if capture else b"", stderr, explain_exit(tool, rc, stderr, stopped))

    def _stopped(self, settle=False):
        """Why the container is not running any more, or None when it runs (or cannot be asked).

        ``settle``: the command failed, maybe because the container is being killed; its state changes a moment
        after its processes die, so ask a few times over a second.
        """
        for attempt in range(5 if settle else 1):
            if attempt:
                time.sleep(0.2)
            try:
                state = stopped_state(self.api.inspect_container(self.container_name)["State"])
            except docker.errors.NotFound:
                return "the container was removed"
            except OSError:
                return None
            if state:
                return state
        return None

    def _stop(self, pid, user):
        """Stop the command with in-container ``pid`` (interrupted run); best effort, never raises."""
        if pid is None:
            return False
        try:
            exec_id = self.api.exec_create(self.container_name, ["sh", "-c", STOP_SCRIPT, "rollcall-stop", pid],
                                           stdout=True, stderr=True, user=user or "")["Id"]
            self.api.exec_start(exec_id)
            return True
        except OSError:
            return False


# Point-in-time recovery's scratch instance (pitr.py): a new container on a new volume, never the live one.
SCRATCH_LABEL = "rollcall.scratch"


def container_env(api, container):
    """The environment (["NAME=value"]) container ``container`` was created with, None when it does not exist."""
    try:
        return api.containers.get(container).attrs.get("Config", {}).get("Env") or []
    except docker.errors.NotFound:
        return None


def env_value(inspect, *names):
    """The value of the first of ``names`` set in a container's own environment (what it was made with; ``inspect``:
    the engine's inspect of it), or None. Never printed: the callers use it as a password."""
    env = (inspect.get("Config") or {}).get("Env") or []
    found = dict(item.split("=", 1) for item in env if "=" in item)
    return next((found[name] for name in names if found.get(name)), None)


def inspect(container, docker_host=None):
    """The inspect document of ``container``, or RunnerError when it does not exist."""
    api = client(docker_host).api
    try:
        return api.inspect_container(container)
    except docker.errors.NotFound:
        raise missing(api, container) from None


def scratch_in_the_way(name, volume, what, created, of=None, now=None):
    """What to say when a scratch instance's container or volume is already there: another restore to a time may be
    using it right now (two operators, a restore beside a DR drill), or a run that was stopped left it. Never removed
    here: that would pull it from under the other run."""
    made = docker_epoch(created)
    when = ""
    if made is not None:
        made = int(made)  # to the second, as said
        age = max(0, int((now if now is not None else time.time()) - made))
        when = ", made %s UTC, %s ago" % (iso_minute(made), age_text(age))
    return ("the scratch instance's %s %s is already there%s: another restore to a time%s may be using it now "
            "(playbooks/restore.yml -e to_time, a DR drill): wait for it to end. If none is running, a run that was "
            "stopped left it: remove it on the database host with docker rm -f %s; docker volume rm %s (or the "
            "module's action=drop_scratch), then run again. Nothing was changed"
            % (what, name if what == "container" else volume, when, " of %s" % of if of else "", name, volume))


def run_scratch(name, image, volume, data_dir, mounts, docker_host=None, labels=None, command=None,
                environment=None):
    """Start container ``name`` from ``image`` idling (``sleep infinity``; or ``command``, with ``environment``),
    a new volume ``volume`` at ``data_dir``, without network.

    ``mounts``: [(source, target, read_only)] bind mounts or named volumes. Refuses an existing container or volume
    of that name: a scratch instance is always new. Returns the container's name.
    """
    api = client(docker_host)
    for getter, what in ((api.containers.get, "container"), (api.volumes.get, "volume")):
        try:
            found = getter(name if what == "container" else volume)
        except docker.errors.NotFound:
            continue
        attrs = found.attrs or {}
        made = attrs.get("Created") or attrs.get("CreatedAt")
        of = ((attrs.get("Config") or {}).get("Labels") or attrs.get("Labels") or {}).get("rollcall.pitr.of")
        raise RunnerError(scratch_in_the_way(name, volume, what, made, of or (labels or {}).get("rollcall.pitr.of")))
    tags = dict(labels or {}, **{SCRATCH_LABEL: "pitr"})
    api.volumes.create(volume, labels=tags)
    binds = {volume: {"bind": data_dir, "mode": "rw"}}
    for source, target, read_only in mounts:
        binds[source] = {"bind": target, "mode": "ro" if read_only else "rw"}
    try:
        api.containers.run(image, command or ["sleep", "infinity"], name=name, detach=True, volumes=binds,
                           labels=tags, network_mode="none", environment=environment or None)
    except docker.errors.APIError as exc:
        remove_scratch(name, volume, docker_host)
        raise RunnerError("cannot start the scratch instance %s: %s" % (name, exc.explanation or exc)) from None
    return name


def drop_scratch(live, scratch, docker_host=None, check_mode=False):
    """rollcall.ops.pitr / binlog ``action=drop_scratch``: remove ``scratch`` and its volume ``<scratch>-data`` -
    never the live container. The module's result."""
    volume = "%s-data" % scratch
    if scratch == live:
        raise RunnerError("scratch must not be the live container")
    if check_mode:
        return {"changed": False, "message": "would remove %s and %s" % (scratch, volume)}
    removed = remove_scratch(scratch, volume, docker_host)
    return {"changed": removed, "message": "removed %s" % scratch if removed else "%s is not there" % scratch}


def remove_scratch(name, volume=None, docker_host=None):
    """Remove a scratch container (and its volume); what is already gone is fine. True when something went."""
    api = client(docker_host)
    removed = False
    try:
        api.containers.get(name).remove(force=True, v=True)  # v: its anonymous volumes, if the image has any
        removed = True
    except docker.errors.NotFound:
        pass
    if volume:
        try:
            api.volumes.get(volume).remove(force=True)
            removed = True
        except docker.errors.NotFound:
            pass
    return removed


def restart(container, docker_host=None, timeout=60):
    """Restart ``container`` (its stop signal, then up to ``timeout`` seconds before SIGKILL)."""
    api = client(docker_host, timeout=timeout + 30)
    try:
        api.containers.get(container).restart(timeout=timeout)
    except docker.errors.NotFound:
        raise missing(api.api, container) from None
    except docker.errors.APIError as exc:
        raise RunnerError("cannot restart %s: %s" % (container, exc.explanation or exc)) from None


# How long a network's removal is retried while the engine still counts an endpoint of a container just removed
# (Docker releases a removed container's endpoint after the remove call returned; under load that takes a moment).
NETWORK_RELEASE_S = 10.0
ENGINE_HOLDS_NETWORK = ("the Docker engine still counts an endpoint on network %s although no container is attached "
                        "(an engine bug; restarting the engine clears it): the network stays, empty; a deploy of "
                        "the same project uses it again")


def remove_network(net, wait=None):
    """Disconnect the endpoints ``net`` still has, then remove it; while the engine answers that it has active
    endpoints, read them again and retry for up to ``wait`` seconds (NETWORK_RELEASE_S). Returns None when the
    network is gone; the reason it stays (ENGINE_HOLDS_NETWORK) when, after the wait, the engine still refuses
    although no container is attached to it. Any other refusal is raised."""
    deadline = time.monotonic() + (NETWORK_RELEASE_S if wait is None else wait)
    while True:
        for endpoint in (net.attrs.get("Containers") or {}):
            with contextlib.suppress(docker.errors.APIError):
                net.disconnect(endpoint, force=True)
        try:
            net.remove()
            return None
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            if "active endpoints" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                if net.attrs.get("Containers"):
                    raise
                return ENGINE_HOLDS_NETWORK % net.name
        time.sleep(0.25)
        try:
            net.reload()
        except docker.errors.NotFound:
            return None


def remove_stack(containers, volumes=(), network=None, docker_host=None, check_mode=False, stop_timeout=None):
    """Remove a stack's containers (in the order given: stopped gracefully first, then removed with their anonymous
    volumes), its network (its remaining endpoints disconnected first) and its named volumes, in one connection;
    what is not there is fine. ``stop_timeout``: seconds before SIGKILL (default: each container's own stop
    timeout, else Docker's 10 s). Returns {"containers", "network", "volumes"}: what was (or, in check mode,
    would be) removed, and "network_kept": why the network stays (remove_network), else None."""
    api = client(docker_host)

    def get(collection, name):
        try:
            return collection.get(name)
        except docker.errors.NotFound:
            return None

    removed = {"containers": [], "network": None, "volumes": [], "network_kept": None}
    for name in containers:
        container = get(api.containers, name)
        if container is None:
            continue
        removed["containers"].append(name)
        if check_mode:
            continue
        if container.status in ("running", "restarting", "paused"):
            timeout = stop_timeout
            if timeout is None:
                timeout = (container.attrs.get("Config") or {}).get("StopTimeout") or 10
            with contextlib.suppress(docker.errors.APIError):  # removed with force below
                container.stop(timeout=timeout)
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(v=True, force=True)
    if network:
        net = get(api.networks, network)
        if net is not None:
            removed["network"] = network
            if not check_mode:
                removed["network_kept"] = remove_network(net)
                if removed["network_kept"]:
                    removed["network"] = None
    for name in volumes:
        volume = get(api.volumes, name)
        if volume is None:
            continue
        removed["volumes"].append(name)
        if not check_mode:
            volume.remove(force=True)
    return removed
