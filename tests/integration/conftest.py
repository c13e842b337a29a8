"""Shared fixtures for integration tests: a Docker client and helpers to run throw-away containers."""

import contextlib
import time
import uuid

import docker
import docker.errors
import pytest

SECRET = "integration-secret-key-0123456789abcdef-xyz-0123456"


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


def wait_healthy(container, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return
        if state["Status"] in ("exited", "dead"):
            raise AssertionError("container exited: %s" % container.logs(tail=20).decode())
        time.sleep(0.5)
    raise AssertionError("container not healthy after %s s: %s" % (timeout, container.logs(tail=20).decode()))


def wait_exit(container, timeout=60):
    result = container.wait(timeout=timeout)
    return result["StatusCode"], container.logs(stdout=True, stderr=True).decode()
