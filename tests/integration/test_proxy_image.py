"""The proxy image's refresh (issue 13 item 5) on this machine's engine through real ansible-playbook, on the
PostgreSQL stack of test_release_sequence.py (test_image_refresh.py calls these functions; a stack of its
own would double the cost): the patching role's proxy tasks refresh the image the proxy runs with its base's updates
and recreate <project>-proxy once on it under load, serving the live upstream from its first request (the image's
start script, ROLLCALL_UPSTREAM); the gap (connections refused while the published port moves to the new container:
a single host without a load balancer cannot avoid it) is measured and printed; the record makes a plain deploy keep
the refreshed proxy (not recreated); a proxy image that fails the gate is put back to the image that ran before,
removed, and the run stops naming the host."""

import contextlib
import io
import json
import os
import subprocess
import sys
import time

import docker
from patching_steps import images_built, inspect, steps_playbook
from test_deploy import ROOT, failures, playbook

sys.path.insert(0, os.path.join(ROOT, "bench"))
from loadgen import Load  # noqa: E402

# The patching role's proxy part alone: the plan of the proxy image, then the refresh.
PROXY_PLAYBOOK = steps_playbook('Refresh the proxy image like patching does', 'app', [
    ('Which images have a base with updates', 'images_plan.yml'),
    ('Refresh the proxy image', 'proxy_image.yml'),
])

# The recreate step alone on an image given by the test (one whose proxy answers 503).
RECREATE_PLAYBOOK = steps_playbook('Recreate the proxy on a given image like patching does', 'app', [
    ('Recreate the proxy', 'proxy_recreate.yml'),
])

BROKEN = "rollcall/proxy:rc-it-broken"
UPSTREAM_CONF = "/etc/nginx/rollcall/upstream.conf"



def upstream_line(project):
    conf = subprocess.run(["docker", "exec", project + "-proxy", "cat", UPSTREAM_CONF], capture_output=True,
                          text=True, check=True).stdout
    return [line for line in conf.splitlines() if line.startswith("set ")], conf


def task_result(report, suffix):
    found = [t["hosts"]["localhost"] for play in report["plays"] for t in play["tasks"]
             if t["task"]["name"].endswith(suffix) and "localhost" in t["hosts"]]
    assert len(found) == 1, (suffix, len(found))
    return found[0]


def outputs(tmp_path):
    return "-e", json.dumps({"rollcall_outputs": {"host": "localhost", "report_dir": str(tmp_path / "reports")}})


def refresh_proxy(tmp_path, inventory, url, project, state_dir, leftovers):
    """The refresh, forced, under load. Returns (tag, proxy container ID, measured gap)."""
    old_image = inspect(project + "-proxy", "{{.Config.Image}}")
    old_id = inspect(project + "-proxy", "{{.Image}}")
    line_before, _ = upstream_line(project)
    assert len(line_before) == 1 and "127.0.0.1:9" not in line_before[0], line_before
    path = tmp_path / "proxy_image.yml"
    path.write_text(PROXY_PLAYBOOK)
    load = Load(url, rate=50, total=100000, max_seconds=300).start()
    time.sleep(1)
    try:
        with images_built(old_image.rpartition(":")[0] + ":*-p*", leftovers):
            proc, report = playbook(inventory, str(path), "-e", "rollcall_patching_images_force=true",
                                    "-e", '{"rollcall_patching_images_which": ["proxy"]}', *outputs(tmp_path))
    finally:
        time.sleep(1)
        load.stop()
    assert proc.returncode == 0, failures(report)
    refresh = task_result(report, "Build the refreshed proxy image")
    tag = (refresh.get("refreshed") or {}).get("image")
    assert tag in leftovers, (tag, leftovers)
    assert tag == old_image.rpartition(":")[0] + ":" + refresh["refreshed"]["version"], (tag, old_image)
    # Recreated once on the refreshed image, serving the live upstream: written by the image's start script from
    # ROLLCALL_UPSTREAM before nginx took its first request (rollcall-switch afterwards found it unchanged).
    assert inspect(project + "-proxy", "{{.Image}}") == inspect(tag, "{{.Id}}") != old_id
    line_after, conf = upstream_line(project)
    assert line_after == line_before and "Written by rollcall-proxy-start" in conf, conf
    switch = task_result(report, "Make sure the new proxy serves the live upstream")
    assert switch["changed"] is False and switch["stdout"].startswith("unchanged"), switch
    with open(os.path.join(state_dir, project, "proxy-image.json")) as handle:
        record = json.load(handle)
    assert record["image"] == tag and record["previous"] == old_image, record
    audit = (tmp_path / "state" / project / "audit.jsonl").read_text()
    assert '"patching_proxy_image"' in audit and "/health/ready 200" in audit
    # The gap: connections refused between the old proxy stopping and the new one listening on the port. Measured,
    # printed, bounded loosely (this shared machine's timing varies); docs/patching.md gives the figure.
    gap = {"failed": len(load.failed), "span_s": load.gap_s, "ok": load.ok, "rate": 50,
           "errors": sorted(set(load.failed))[:3]}
    print("proxy refresh under load: %s" % gap)
    (tmp_path / "proxy-gap.json").write_text(json.dumps(gap))
    # The gap's length is the figure; how many requests fail inside it is not: the load keeps a schedule from its
    # start, so on a machine that stalls it sends the requests it fell behind on in a burst (708 inside a 2.2 s gap
    # in one CI run). One gap, under 10 s, and traffic on both sides of it.
    assert load.ok > 50 and load.gap_s < 10, gap
    return tag, inspect(project + "-proxy", "{{.Id}}"), gap


def assert_proxy_kept(project, tag, container_id):
    """After a plain deploy: the proxy is the same container on the refreshed image (not recreated)."""
    assert inspect(project + "-proxy", "{{.Id}}") == container_id
    assert inspect(project + "-proxy", "{{.Image}}") == inspect(tag, "{{.Id}}")


def failed_refresh_restores(tmp_path, inventory, project, tag, ready_url):
    """A proxy image that answers 503: the proxy is recreated on the image it ran (tag) with the same upstream, the
    run stops naming the host, the broken image is removed, and the app answers through the proxy again."""
    line_before, _ = upstream_line(project)
    docker_client = docker.from_env(timeout=300)
    dockerfile = ("FROM %s\nRUN sed -i 's#proxy_pass http://$rollcall_upstream;#return 503;#' /etc/nginx/nginx.conf\n"
                  % tag)
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=BROKEN, rm=True)
    try:
        path = tmp_path / "proxy_recreate.yml"
        path.write_text(RECREATE_PLAYBOOK)
        proc, report = playbook(inventory, str(path), "-e", "patching_proxy_old_image=" + tag,
                                "-e", "patching_proxy_new_image=" + BROKEN, "-e", "rollcall_patching_health_timeout=5",
                                "-e", '{"patching_proxy_pool": {"drain": false}}', *outputs(tmp_path))
        assert proc.returncode != 0
        messages = [m for _, m in failures(report)]
        assert any(m.startswith("Patching failed on localhost at the proxy refresh (gate:")
                   and "recreated on %s again serving" % tag in m for m in messages), messages
        assert inspect(project + "-proxy", "{{.Image}}") == inspect(tag, "{{.Id}}")
        assert upstream_line(project)[0] == line_before
        ready = subprocess.run(["curl", "-fsS", ready_url], capture_output=True, text=True, check=False)
        assert ready.returncode == 0 and '"ready"' in ready.stdout, ready.stdout + ready.stderr
        assert inspect(BROKEN, "{{.Id}}") is None, "the failed image is removed"
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(BROKEN)
        docker_client.close()
