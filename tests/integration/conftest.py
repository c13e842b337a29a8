"""Shared fixtures for integration tests: a Docker client and helpers to run throw-away containers."""

import contextlib
import json
import os
import re
import urllib.error
import urllib.request
import uuid

import docker
import docker.errors
import pytest

from ansible_collections.rollcall.ops.plugins.module_utils.docker import (
    remove_network,
    run_health_test,
    wait_health_test,
)

SECRET = "integration-secret-key-0123456789abcdef-xyz-0123456"

# Every name these tests give a container, volume or network starts so (bench and Molecule use others).
LEFTOVER = re.compile(r"^(rc-(it|e|a|b|c|k|l|r|s|w|t12[a-z])-|it-)")


def pytest_sessionstart(session):
    """Remove what a killed earlier run left: a stack of the same project would be deployed onto its old data
    volume (the tests would assert on rows they did not make) or hold the port a fixture needs. Only the xdist
    controller (or a run without xdist) sweeps, before any worker starts. ROLLCALL_IT_SWEEP=0 skips it (several
    people running test files side by side on one engine: each run would remove the others' stacks)."""
    if hasattr(session.config, "workerinput") or os.environ.get("ROLLCALL_IT_SWEEP", "1") == "0":
        return
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception:  # noqa: BLE001 - the docker_client fixture says what is wrong
        return
    try:
        swept = []
        for container in client.containers.list(all=True):
            if LEFTOVER.match(container.name):
                container.remove(force=True, v=True)
                swept.append(container.name)
        for volume in client.volumes.list():
            if LEFTOVER.match(volume.name):
                volume.remove(force=True)
                swept.append(volume.name)
        kept = []
        for network in client.networks.list():
            if LEFTOVER.match(network.name):
                # an engine that counts an endpoint on a network no container is attached to keeps it until it
                # restarts (stack_remove's network_kept); the tests' own names avoid it
                (kept if remove_network(network, wait=0) else swept).append(network.name)
        if swept:
            print("integration: removed %d leftovers of an earlier run: %s" % (len(swept), ", ".join(sorted(swept))))
        if kept:
            print("integration: the engine keeps the empty networks %s (it still counts an endpoint on them)"
                  % ", ".join(sorted(kept)))
    finally:
        client.close()


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail("the Docker engine does not answer (%s); run `make setup`" % exc)
    return client


@pytest.fixture(scope="session")
def require_image(docker_client):
    def check(tag):
        try:
            docker_client.images.get(tag)
        except docker.errors.ImageNotFound:
            pytest.fail("image %s is missing; run `make images`" % tag)
        return tag
    return check


@pytest.fixture
def run_container(docker_client):
    """Start containers named it-<uuid>; all are removed at the end of the test."""
    started = []

    def run(image, **kwargs):
        kwargs.setdefault("detach", True)
        container = docker_client.containers.run(image, name="it-%s" % uuid.uuid4().hex[:10], **kwargs)
        started.append(container)
        return container

    yield run
    for container in started:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)


def host_port(container, port):
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][port][0]["HostPort"])


def health_test(container):
    """Run the container's own health test (its image's HEALTHCHECK) now: (exit code, output). Our images probe
    every 30 s, so Docker's first verdict comes 30 s after a start; this is the test Docker would run."""
    container.reload()
    found = run_health_test(container.client.api, container.attrs)
    assert found, "container %s has no health test" % container.name
    return found


def wait_healthy(container, timeout=60):
    """Until the container's own health test passes (run by the test, not waiting for Docker's 30 s probe)."""
    found = wait_health_test(container.client.api, container.name, timeout, interval=0.5)
    if not found["passed"]:
        raise AssertionError("container not healthy: %s (its health test said %r): %s"
                             % (found["reason"], found["output"][-300:], container.logs(tail=20).decode()))


def wait_exit(container, timeout=60):
    result = container.wait(timeout=timeout)
    return result["StatusCode"], container.logs(stdout=True, stderr=True).decode()


def request(base, path, method="GET", body=None, headers=None, raw=None):
    """(status, headers, body bytes) of one HTTP request to a stack on loopback; an HTTP error is an answer too."""
    data = json.dumps(body).encode() if body is not None else raw
    req = urllib.request.Request(base + path, data=data, method=method, headers=dict(headers or {}))
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# The slowest files first (seconds of one file on one worker, from a fresh-clone run): with `--dist loadfile` the
# workers take files in collection order, and a long file started last runs alone at the end.
# Order of the fresh-clone run of 2026-12-05 (02:58-03:48 UTC): 681, 624, 516, 395, 384, 365, 361, 330 s (the 516 s of
# test_release.py are now in test_release_sequence.py, which carries its stack). The Makefile passes
# --no-loadscope-reorder, or xdist would order the files by how many tests they hold instead.
HEAVIEST = ("test_release_sequence.py", "test_db_roles.py", "test_playbook_inputs.py",
            "test_db_roles_mariadb.py", "test_awx_jobs.py", "test_release_edges.py", "test_backup_postgresql.py")


def pytest_collection_modifyitems(config, items):
    def weight(item):
        name = item.path.name
        return HEAVIEST.index(name) if name in HEAVIEST else len(HEAVIEST)

    items.sort(key=weight)  # stable: the order inside a file and among the rest stays


# Seconds per file (setup, call and teardown of its tests, on whichever worker ran it), printed at the end: what
# HEAVIEST above is ordered by.
_FILE_SECONDS = {}


def pytest_runtest_logreport(report):
    name = report.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    _FILE_SECONDS[name] = _FILE_SECONDS.get(name, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _FILE_SECONDS:
        return
    terminalreporter.section("seconds per file (heaviest first)")
    for name, seconds in sorted(_FILE_SECONDS.items(), key=lambda item: -item[1])[:20]:
        terminalreporter.write_line("%8.1f  %s" % (seconds, name))
