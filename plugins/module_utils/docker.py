# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that talks to the Docker engine from our modules: exec in a container, streaming both ways.

Uses the Docker SDK for Python (``docker``). Commands run with ``docker exec`` semantics: argv lists, the
environment passed through the API (so passwords never appear on a command line), stdin streamed from an
iterable, stdout and stderr demultiplexed as they arrive.
"""

import socket

from .runner import Feeder, Result, Runner, RunnerError, _Capture, _Tail

try:
    import docker
    import docker.errors
    from docker.utils.socket import frames_iter

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported when a container is asked for
    HAS_DOCKER = False

STDOUT, STDERR = 1, 2


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


class ContainerRunner(Runner):
    """Runs client tools inside a running container (the database's own container)."""

    def __init__(self, container, docker_host=None):
        self.container_name = container
        self.where = "container %s" % container
        self.api = client(docker_host).api
        try:
            state = self.api.inspect_container(container)["State"]
        except docker.errors.NotFound:
            raise RunnerError("container %s does not exist" % container) from None
        if not state.get("Running"):
            raise RunnerError("container %s is not running (%s)" % (container, state.get("Status")))

    def run(self, argv, stdin=None, sink=None, env=None, user=None):
        try:
            exec_id = self.api.exec_create(self.container_name, argv, stdin=stdin is not None, stdout=True,
                                           stderr=True, environment=env or None, user=user or "")["Id"]
            sock = self.api.exec_start(exec_id, socket=True)
        except docker.errors.APIError as exc:
            raise RunnerError("cannot run %s in %s: %s" % (argv[0], self.where, exc.explanation or exc)) from None
        raw = getattr(sock, "_sock", sock)
        raw.settimeout(None)
        tail, capture = _Tail(), (None if sink else _Capture())
        write_out = sink or capture.write
        feeder = Feeder(stdin, raw.sendall, lambda: raw.shutdown(socket.SHUT_WR)) if stdin is not None else None
        try:
            for stream, data in frames_iter(sock, tty=False):
                if stream == STDOUT:
                    write_out(data)
                elif stream == STDERR:
                    tail.write(data)
            if feeder is not None:
                feeder.finish()
        finally:
            sock.close()
        rc = self.api.exec_inspect(exec_id).get("ExitCode")
        if rc is None:
            raise RunnerError("%s in %s ended without an exit code (container stopped?)" % (argv[0], self.where))
        if rc == 126 or (rc == 127 and "executable file not found" in tail.text()):
            raise RunnerError("%s is not installed in %s" % (argv[0], self.where))
        return Result(rc, bytes(capture.data) if capture else b"", tail.text())
