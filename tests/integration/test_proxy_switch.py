"""The proxy image's switch (`rollcall-switch`, images/proxy/switch.sh) on this machine's engine, which every deploy,
rollback and proxy refresh uses: traffic moves to the upstream named, back and forth; naming the one in use changes
nothing and says so; a name that does not resolve on the proxy's network is refused and the proxy keeps serving the
upstream it had. `nginx -s reload` returns before nginx has read the new file, so the first request after a switch
may still reach the old upstream (the deploy's check through the proxy asks for the new version until it
answers); the test waits for the new one, at most 2 s. Two small backends on a private network, one proxy."""

import contextlib
import time
import uuid

import docker
import pytest

from ansible_collections.rollcall.ops.plugins.module_utils.docker import remove_network

PROXY = "rollcall/proxy:1"  # what images/build.py builds and deploys run
BACKEND = "rollcall/sms-app:1.0.0"  # any image with python3: a one-line file server that names itself
SWITCHES = 6


@pytest.fixture
def switch_stack(docker_client, require_image):
    require_image(BACKEND)
    require_image(PROXY)
    suffix = uuid.uuid4().hex[:8]
    network = docker_client.networks.create("rc-it-switch-%s" % suffix, driver="bridge")
    made = []
    try:
        for name in ("b1", "b2"):
            made.append(docker_client.containers.run(
                BACKEND, name="rc-it-switch-%s-%s" % (suffix, name), detach=True, network=network.name,
                entrypoint=["sh", "-c", "mkdir -p /tmp/w && echo %s >/tmp/w/who && cd /tmp/w "
                            "&& exec python3 -m http.server 8000" % name],
                user="65534", labels={"rollcall.test": "proxy-switch"}))
            network.disconnect(made[-1])
            network.connect(made[-1], aliases=[name])
        proxy = docker_client.containers.run(PROXY, name="rc-it-switch-%s-proxy" % suffix, detach=True,
                                             network=network.name, labels={"rollcall.test": "proxy-switch"})
        made.append(proxy)
        code, out = run(proxy, "for i in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:8080/__rollcall/proxy "
                               "&& break; sleep 0.05; done")
        assert code == 0, "the proxy never answered: %s" % out
        yield proxy
    finally:
        for container in made:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        # an endpoint released late is retried; a network the engine keeps (its name is this run's) is swept later
        with contextlib.suppress(docker.errors.NotFound):
            remove_network(network)


def run(container, script):
    """(exit code, stdout, with stderr after it when the script failed); nginx's notices on stderr left out."""
    code, (out, err) = container.exec_run(["sh", "-c", script], demux=True)
    out = (out or b"").decode(errors="replace")
    return code, out + ((err or b"").decode(errors="replace") if code else "")


def wait_serving(container, name, seconds=10):
    for _ in range(int(seconds / 0.05)):
        code, out = run(container, "curl -fsS http://127.0.0.1:8080/who")
        if code == 0 and out.strip() == name:
            return
        time.sleep(0.05)
    raise AssertionError("the proxy never served %s: %s" % (name, out))


def test_traffic_follows_each_switch_and_a_repeated_switch_changes_nothing(switch_stack):
    proxy = switch_stack
    for name in ("b2", "b1"):  # both backends answer before the timed switches
        code, out = run(proxy, "rollcall-switch %s:8000" % name)
        assert code == 0 and out.startswith("switched %s:8000" % name), out
        wait_serving(proxy, name)
    for k in range(SWITCHES):
        name = ("b2", "b1")[k % 2]
        code, out = run(proxy, "rollcall-switch %s:8000" % name)
        assert code == 0 and out.strip() == "switched %s:8000" % name, out
        wait_serving(proxy, name, seconds=2)
    # the switch to what is in use already changes nothing, and says so
    code, out = run(proxy, "rollcall-switch %s:8000" % name)
    assert code == 0 and out.strip() == "unchanged %s:8000" % name, out


def test_a_switch_to_a_name_that_does_not_resolve_changes_nothing(switch_stack):
    proxy = switch_stack
    code, out = run(proxy, "rollcall-switch b1:8000")
    assert code == 0 and out.startswith("switched b1:8000"), out
    code, out = run(proxy, "rollcall-switch nowhere:8000")
    assert code == 1 and "nowhere does not resolve" in out, out
    code, out = run(proxy, "grep -c rollcall_upstream /etc/nginx/rollcall/upstream.conf; "
                           "grep -F 'set $rollcall_upstream \"b1:8000\";' /etc/nginx/rollcall/upstream.conf")
    assert code == 0 and out.splitlines()[0] == "1", out
    wait_serving(proxy, "b1")
