"""Runners: what they say when a tool fails without a message, and that they stop what they started when a run is
interrupted (issue 9, items 18 and 19). The container runner is driven through a fake Docker API."""

import os
import threading
import time

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import docker as docker_runner
from ansible_collections.rollcall.ops.plugins.module_utils.runner import (
    LocalRunner,
    Result,
    RunnerError,
    explain_exit,
    with_note,
)


@pytest.mark.parametrize("rc,stderr,stopped,expected", [
    (0, "", None, None),
    (1, "pg_dump: error: x\n", None, None),
    (1, "", None, "pg_dump exited with code 1 and wrote no error message"),
    (137, "", None, "pg_dump was killed by SIGKILL (exit code 137)"),
    (-15, "", None, "pg_dump was killed by SIGTERM (exit code -15)"),
    (137, "", "the container stopped (exited, exit code 137)",
     "pg_dump did not finish: the container stopped (exited, exit code 137)"),
    (1, "lost\n", "the container was removed", "pg_dump did not finish: the container was removed"),
])
def test_explain_exit(rc, stderr, stopped, expected):
    assert explain_exit("pg_dump", rc, stderr, stopped) == expected


def test_the_note_becomes_the_last_line_of_stderr():
    assert with_note("", None) == ""
    assert with_note("a\n", None) == "a\n"
    assert with_note("", "why") == "why"
    assert with_note("a\n\n", "why") == "a\nwhy"
    result = Result(137, b"", "", "pg_dump was killed by SIGKILL (exit code 137)")
    assert result.last_error_line() == "pg_dump was killed by SIGKILL (exit code 137)"
    assert result.note and Result(0).note is None


@pytest.mark.parametrize("state,expected", [
    ({"Running": True}, None),
    ({"Running": False, "Status": "exited", "ExitCode": 137}, "the container stopped (exited, exit code 137)"),
    ({"Running": False, "Status": "exited", "ExitCode": 137, "OOMKilled": True},
     "the container stopped (exited, exit code 137, killed for lack of memory)"),
    ({"Running": True, "Restarting": True, "Status": "restarting", "ExitCode": 1},
     "the container stopped (restarting, exit code 1)"),
])
def test_stopped_state(state, expected):
    assert docker_runner.stopped_state(state) == expected


@pytest.mark.parametrize("frames", [
    [b"rollcall-pid 42\npg_dump: error: boom\n"],
    [b"rollcall-", b"pid 42", b"\npg_dump: error: boom\n"],
    [b"rollcall-pid 42\n", b"pg_dump: error: boom\n"],
])
def test_the_wrapper_pid_line_is_kept_out_of_stderr(frames):
    tail = docker_runner._PidTail()
    for frame in frames:
        tail.write(frame)
    assert tail.pid == "42" and tail.text() == "pg_dump: error: boom\n"


def test_stderr_without_the_pid_line_is_kept_whole():
    tail = docker_runner._PidTail()
    tail.write(b"OCI runtime exec failed\n")
    assert tail.pid is None and tail.text() == "OCI runtime exec failed\n"
    short = docker_runner._PidTail()
    short.write(b"no newline yet")
    assert short.text() == "no newline yet"


def test_local_runner_explains_a_signal():
    result = LocalRunner().run(["sh", "-c", "kill -KILL $$"])
    assert result.rc == -9 and result.last_error_line() == "sh was killed by SIGKILL (exit code -9)"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_local_runner_stops_the_child_and_its_children_when_the_sink_fails(tmp_path):
    pids = tmp_path / "pids"

    def sink(data):
        raise OSError(28, "No space left on device")

    started = time.monotonic()
    script = 'sleep 60 & echo $! > "$1"; echo $$ >> "$1"; head -c 3000000 /dev/zero; wait'
    with pytest.raises(OSError, match="No space left"):
        LocalRunner().run(["sh", "-c", script, "sh", str(pids)], sink=sink)
    assert time.monotonic() - started < 10
    time.sleep(0.2)
    for pid in map(int, pids.read_text().split()):
        assert not alive(pid), "process %d still runs" % pid


class FakeAPI:
    """Just enough of docker.APIClient: the command's frames, then what exec_inspect says, and the stops."""

    def __init__(self, frames, inspect=None, fail=None):
        self.frames, self.inspect, self.fail = frames, inspect or {"Running": False, "ExitCode": 0}, fail
        self.created = []

    def exec_create(self, container, argv, **kwargs):
        self.created.append(argv)
        return {"Id": "exec%d" % len(self.created)}

    def exec_start(self, exec_id, socket=False):
        return FakeSocket() if socket else b""

    def exec_inspect(self, exec_id):
        return self.inspect

    def inspect_container(self, name):
        return {"State": {"Running": True}}


class FakeSocket:
    def settimeout(self, value):
        pass

    def close(self):
        pass


def fake_runner(monkeypatch, api, frames):
    def frames_iter(sock, tty):
        for frame in frames:
            if isinstance(frame, BaseException):
                raise frame
            yield frame

    monkeypatch.setattr(docker_runner, "frames_iter", frames_iter)
    runner = object.__new__(docker_runner.ContainerRunner)
    runner.container_name, runner.where, runner.api, runner._running = "db", "container db", api, {}
    return runner


def stops(api):
    return [argv for argv in api.created if argv[:2] == ["sh", "-c"] and argv[3] == "rollcall-stop"]


def test_container_runner_runs_through_the_wrapper(monkeypatch):
    api = FakeAPI([])
    runner = fake_runner(monkeypatch, api, [(2, b"rollcall-pid 7\n"), (1, b"out")])
    result = runner.run(["pg_dump", "-Fc"])
    assert result.rc == 0 and result.stdout == b"out" and result.stderr == ""
    assert api.created[0] == docker_runner.WRAPPER + ["pg_dump", "-Fc"] and not stops(api)


def test_an_interrupted_container_run_stops_its_command(monkeypatch):
    class Interrupted(Exception):
        pass

    api = FakeAPI([])
    runner = fake_runner(monkeypatch, api, [(2, b"rollcall-pid 7\n"), (1, b"x"), Interrupted("SIGTERM")])
    with pytest.raises(Interrupted):
        runner.run(["pg_dump"], sink=lambda data: None)
    assert [argv[4] for argv in stops(api)] == ["7"] and runner._running == {}


def test_a_sink_error_stops_the_command_and_stays_itself(monkeypatch):
    api = FakeAPI([])
    runner = fake_runner(monkeypatch, api, [(2, b"rollcall-pid 8\n"), (1, b"x")])

    def sink(data):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        runner.run(["pg_dump"], sink=sink)
    assert [argv[4] for argv in stops(api)] == ["8"]


@pytest.mark.parametrize("frames,inspect", [
    ([(2, b"rollcall-pid 9\n"), ConnectionResetError(104, "Connection reset by peer")], None),
    ([(2, b"rollcall-pid 9\n")], {"Running": True, "ExitCode": None}),
])
def test_a_lost_connection_says_so_and_stops_the_command(monkeypatch, frames, inspect):
    api = FakeAPI([], inspect=inspect)
    runner = fake_runner(monkeypatch, api, frames)
    with pytest.raises(RunnerError, match="lost the connection to the Docker engine while pg_dump ran in "
                                          "container db .*; it was stopped"):
        runner.run(["pg_dump"], sink=lambda data: None)
    assert [argv[4] for argv in stops(api)] == ["9"]


def test_a_failure_without_stderr_is_explained(monkeypatch):
    api = FakeAPI([], inspect={"Running": False, "ExitCode": 137})
    runner = fake_runner(monkeypatch, api, [(2, b"rollcall-pid 9\n")])
    monkeypatch.setattr(docker_runner.time, "sleep", lambda s: None)
    result = runner.run(["mysqldump"])
    assert result.rc == 137 and result.stderr == "mysqldump was killed by SIGKILL (exit code 137)"


class EngineStoppedReading(FakeSocket):
    """The exec's connection once the command ended without reading all of its input: the engine reads no more,
    so a write waits for room until our end is shut down (then the kernel says EPIPE)."""

    def __init__(self):
        self.shut = threading.Event()
        self.sent = 0

    def sendall(self, data):
        if self.sent >= 64 * 1024:  # the socket buffers are full
            self.shut.wait()
            raise BrokenPipeError(32, "Broken pipe")
        self.sent += len(data)

    def shutdown(self, how):
        self.shut.set()


def test_a_command_that_stops_reading_its_input_does_not_hang_the_run(monkeypatch):
    sock = EngineStoppedReading()
    api = FakeAPI([], inspect={"Running": False, "ExitCode": 1})
    api.exec_start = lambda exec_id, socket=False: sock
    runner = fake_runner(monkeypatch, api, [(2, b"rollcall-pid 7\n"),
                                            (2, b"pg_restore: error: input file does not appear to be a valid "
                                                b"archive\n")])
    monkeypatch.setattr(docker_runner.time, "sleep", lambda s: None)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=runner.run(
        ["pg_restore"], stdin=(b"x" * 1024 * 1024 for _ in range(8)))), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the run still waits to write input the command will never read"
    assert outcome["result"].rc == 1 and "valid archive" in outcome["result"].stderr
    assert sock.shut.is_set() and not stops(api)


def test_a_tool_error_line_gets_what_the_runner_knows_once():
    from ansible_collections.rollcall.ops.plugins.module_utils.runner import Result

    stopped = Result(2, stderr="mysqldump: Got error: 2013: Lost connection", note="the container stopped (exited)")
    assert stopped.explained("Got error: 2013: Lost connection") == \
        "Got error: 2013: Lost connection; the container stopped (exited)"
    assert stopped.explained("the container stopped (exited)") == "the container stopped (exited)"
    assert Result(1, stderr="boom").explained("boom") == "boom"


class _WaitsForOutside:
    """An input like the dump's snapshot session: after its first chunk it waits for something outside the
    command, which never comes when the command ended first (the server went away)."""

    def __init__(self):
        import threading
        self.ended = threading.Event()

    def command_ended(self):
        self.ended.set()

    def __iter__(self):
        yield b"SELECT 1;\n"
        self.ended.wait(30)  # the outside event never comes; only command_ended() releases it
        if not self.ended.is_set():
            yield b"too late\n"


def test_an_input_that_waits_outside_the_command_is_told_the_command_ended():
    started = time.monotonic()
    result = LocalRunner().run(["head", "-c", "3"], stdin=_WaitsForOutside())
    assert result.rc == 0 and result.stdout == b"SEL"
    assert time.monotonic() - started < 5


def test_an_input_error_raised_after_the_command_ended_is_not_lost():
    def checked():
        yield b"data\n"
        time.sleep(1.5)  # the checksum is known only at the end, after the tool has exited 0
        raise ValueError("checksum mismatch")

    with pytest.raises(ValueError, match="checksum mismatch"):
        LocalRunner().run(["head", "-n", "1"], stdin=checked())


def test_a_stopped_container_is_named_with_what_to_do(monkeypatch):
    """backup.yml with the database container stopped said only "container rollcall-db is not running (exited)"."""
    class Api:
        def inspect_container(self, name):
            return {"State": {"Running": False, "Status": "exited"}}

    monkeypatch.setattr(docker_runner, "client", lambda docker_host=None: type("C", (), {"api": Api()})())
    with pytest.raises(docker_runner.RunnerError) as caught:
        docker_runner.ContainerRunner("rollcall-db")
    assert str(caught.value) == ("container rollcall-db is not running (exited); start it (playbooks/incident.yml -e "
                                 "restart=true restarts what is failing, or docker start rollcall-db) and run again")


def test_env_value_reads_the_containers_own_environment():
    runner = object.__new__(docker_runner.ContainerRunner)
    runner.container_name = "x-db"
    runner._inspected = {"Config": {"Env": ["PATH=/bin", "MARIADB_ROOT_PASSWORD=a=b", "EMPTY="]}}
    assert runner.env_value("MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD") == "a=b"
    assert runner.env_value("MYSQL_ROOT_PASSWORD", "MARIADB_ROOT_PASSWORD") == "a=b"
    assert runner.env_value("EMPTY") is None and runner.env_value("NOPE") is None


class _Listing:
    def __init__(self, names, fails=False, volumes=()):
        self.names, self.fails, self.volume_names = names, fails, volumes

    def containers(self, all=False):  # noqa: A002 - the Docker API's own argument name
        if self.fails:
            raise OSError("engine gone")
        return [{"Names": ["/" + name]} for name in self.names]

    def volumes(self):
        if self.fails:
            raise OSError("engine gone")
        return {"Volumes": [{"Name": name} for name in self.volume_names] or None}


def test_a_missing_container_names_the_stacks_containers_it_may_have_meant():
    """Found on the demo: backup.yml -e rollcall_project=rolcall said only "container rolcall-db does not exist"."""
    api = _Listing(["rollcall-db", "rollcall-app", "rollcall-drill-db", "rc-it-x-db", "postgres"])
    assert docker_runner.look_alikes(api, "rolcall-db") == ["rollcall-db", "rollcall-drill-db", "rc-it-x-db"]
    assert docker_runner.look_alikes(api, "rolcall-db", limit=1) == ["rollcall-db"]
    assert str(docker_runner.missing(api, "rolcall-db")).startswith(
        "container rolcall-db does not exist; this engine has rollcall-db, rollcall-drill-db, rc-it-x-db (is "
        "rollcall_project right? it names the stack a playbook acts on)")
    assert str(docker_runner.missing(_Listing(["postgres"]), "sms-db")) == "container sms-db does not exist"
    assert docker_runner.look_alikes(_Listing([], fails=True), "sms-db") == [], "only a hint: never an error"


def test_a_missing_container_of_a_stack_whose_volumes_are_kept_says_to_deploy_not_to_check_the_name():
    """Found on the demo: after teardown.yml (volumes kept), backup.yml and restore.yml asked whether
    rollcall_project was right, naming another stack's containers."""
    api = _Listing(["other-db"], volumes=["rollcall-dbdata", "rollcall-uploads", "rollcall-drill-dbdata", "x"])
    assert docker_runner.kept_volumes(api, "rollcall-db") == ["rollcall-dbdata", "rollcall-uploads"]
    assert str(docker_runner.missing(api, "rollcall-db")) == (
        "container rollcall-db does not exist, but this stack's volumes do (rollcall-dbdata, rollcall-uploads): its "
        "containers were removed (teardown.yml keeps the volumes); playbooks/deploy.yml starts them again on that data")
    assert docker_runner.kept_volumes(api, "rolcall-db") == [], "a mistyped project has none"
    assert "this engine has other-db (is rollcall_project right?" in str(docker_runner.missing(api, "rolcall-db"))
    assert docker_runner.kept_volumes(_Listing([]), "sms-db") == [], "no volumes at all (the API says null)"
    assert docker_runner.kept_volumes(_Listing([], fails=True), "sms-db") == [], "only a hint: never an error"
