"""SECRET_KEY rotation (issue 12, item 3): the app's signed download links, and playbooks/rotate_secret_key.yml on a
real stack - under load with 0 failed requests, the old link valid during the grace and refused once it ended,
check mode and a second run changing nothing, no key in any output."""

import calendar
import hashlib
import json
import os
import sys
import time

import pytest
from conftest import request, wait_exit
from test_deploy import changed_tasks, failures, playbook, said_by, teardown, write_inventory

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "bench"))
from loadgen import Load  # noqa: E402

APP = "rollcall/sms-app:1.0.0"
PROJECT = "rc-k-sec"
PORT = 18150
K1, K2, K3 = "k1-" + "a" * 45, "k2-" + "b" * 45, "k3-" + "c" * 45
BOUNDARY = "rollcallboundary"


def call(base, path, method="GET", **kwargs):
    """(status, bytes) of one request to the app."""
    status, _headers, body = request(base, path, method, **kwargs)
    return status, body


def upload(base, student_id, content):
    body = (b"--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"report.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\n%s\r\n--%s--\r\n") % (BOUNDARY.encode(), content, BOUNDARY.encode())
    status, payload = call(base, "/api/v1/students/%d/uploads" % student_id, "POST", raw=body,
                           headers={"Content-Type": "multipart/form-data; boundary=%s" % BOUNDARY})
    assert status == 201, payload
    return json.loads(payload)["id"]


def link(base, student_id, upload_id, **body):
    status, payload = call(base, "/api/v1/students/%d/uploads/%d/link" % (student_id, upload_id), "POST",
                           body=body or None)
    assert status == 201, payload
    return json.loads(payload)["path"]


def minted(container, upload_id, *keys):
    """Links for the upload signed with each of ``keys`` by the app's own code, in one docker exec (the keys travel
    in the exec's environment, never on a command line)."""
    code = ("import json, os, sys; from sms_app import config, models, signing\n"
            "upload = models.Upload(id=%d, stored_name=sys.argv[1])\n"
            "for key in json.loads(os.environ['MINT_KEYS']):\n"
            "    os.environ['SECRET_KEY'] = key\n"
            "    print('/api/v1/files/' + signing.make_token(config.load(), upload, 600)[0])" % upload_id)
    stored = container.exec_run(["sh", "-c", "ls /data/uploads | head -1"]).output.decode().strip()
    result = container.exec_run(["python3", "-c", code, stored], environment={"MINT_KEYS": json.dumps(keys)})
    assert result.exit_code == 0, result.output.decode()[-500:]
    return result.output.decode().split()


def fingerprint(key):
    return hashlib.sha256(key.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------ the app alone
def test_the_app_accepts_an_earlier_key_only_until_its_grace_ends(docker_client, require_image):
    require_image(APP)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    fallbacks = [{"key": K1, "expires": time.strftime(stamp, time.gmtime(time.time() + 3600))},
                 {"key": K3, "expires": time.strftime(stamp, time.gmtime(time.time() - 1))}]
    env = {"DATABASE_URL": "sqlite:////data/db/sms.sqlite3", "SECRET_KEY": K2, "RATE_LIMIT_PER_MINUTE": "0",
           "SECRET_KEY_FALLBACKS": json.dumps(fallbacks)}
    container = docker_client.containers.run(
        APP, ["sh", "-c", "sms-app migrate --json && sms-app seed --students 1 --json && exec sms-app serve"],
        name="%s-app1" % PROJECT, environment=env, detach=True, ports={"8000/tcp": ("127.0.0.1", PORT + 1)})
    try:
        base = "http://127.0.0.1:%d" % (PORT + 1)
        deadline = time.monotonic() + 30
        while not _up(base):
            assert time.monotonic() < deadline, container.logs(tail=20).decode()
            time.sleep(0.2)
        upload_id = upload(base, 1, b"report card")
        current = link(base, 1, upload_id)
        assert call(base, current) == (200, b"report card")
        short = link(base, 1, upload_id, expires_in=1)
        by_k1, by_k3, by_k4 = minted(container, upload_id, K1, K3, "k4-" + "d" * 45)
        assert call(base, by_k1) == (200, b"report card"), "a fallback in its grace verifies what it signed"
        status, payload = call(base, by_k3)
        assert status == 403 and b"key that signed it has been retired" in payload, "its grace has ended"
        assert call(base, by_k4)[0] == 403, "a key the app never had"
        assert call(base, current[:-2] + ("AA" if not current.endswith("AA") else "BB"))[0] == 403  # altered
        assert call(base, "/api/v1/students/1/uploads/999/link", "POST")[0] == 404
        time.sleep(1.1)
        status, payload = call(base, short)
        assert status == 410 and b"expired" in payload, "an expired link says so"
        logs = container.logs().decode()
        assert by_k1.rsplit("/", 1)[1] not in logs and '"path":"/api/v1/files/***"' in logs, "tokens stay out"
    finally:
        container.remove(force=True, v=True)

    # A fallback the app cannot use stops it with one line that shows no key.
    for bad, says in (("[{\"key\": \"%s\"}]" % ("x" * 20), "item 1 is shorter than 48 characters"),
                      ("%s" % K1, "SECRET_KEY_FALLBACKS is not valid JSON")):
        checker = docker_client.containers.run(APP, ["sms-app", "check-config"], detach=True,
                                               environment=dict(env, SECRET_KEY_FALLBACKS=bad))
        try:
            code, output = wait_exit(checker)
        finally:
            checker.remove(force=True, v=True)
        assert code == 2 and says in output and K1 not in output and "x" * 20 not in output, output


def _up(base):
    try:
        return call(base, "/health/live")[0] == 200
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------ the playbook
@pytest.fixture
def stack(tmp_path):
    """A SQLite stack (no db host: fewer tasks, the key is the app's business) whose key lives in a generated
    file, as in inventories/local: the inventory's secrets directory, and the stack's own under it (the rotation
    writes there; it wrote the inventory's, which every stack made from the same inventory shared)."""
    secrets = tmp_path / "secrets"
    inventory = write_inventory(
        tmp_path, no_db_host=True, rollcall_project=PROJECT, rollcall_db_engine="sqlite", rollcall_app_port=PORT,
        rollcall_seed_students=2, rollcall_rate_limit_per_minute=1000000, rollcall_drain_seconds=1,
        rollcall_state_dir=str(tmp_path / "state"), rollcall_secrets_dir=str(secrets),
        rollcall_stack_secrets_dir="{{ rollcall_secrets_dir ~ '/' ~ rollcall_project }}",
        rollcall_secret_key="{{ lookup('rollcall.ops.secret', rollcall_stack_secrets_dir ~ '/secret_key', "
                            "length=48) }}")
    try:
        yield inventory, secrets / PROJECT / "secret_key", tmp_path / "state" / PROJECT
    finally:
        teardown(inventory)


def live_env(docker_client):
    """The live app container's environment as a dict (for names and comparisons; never printed)."""
    env = docker_client.containers.get(PROJECT + "-app").attrs["Config"]["Env"]
    return dict(item.partition("=")[::2] for item in env)


def audit(state):
    with open(state / "audit.jsonl") as handle:
        return [json.loads(line) for line in handle]


def test_rotation_under_load_keeps_old_links_for_the_grace_then_refuses_them(stack, docker_client):
    inventory, key_file, state = stack
    proc, report = playbook(inventory)
    assert proc.returncode == 0, failures(report)
    key_a = key_file.read_text().strip()
    base = "http://127.0.0.1:%d" % PORT
    upload_id = upload(base, 1, b"signed with the first key")
    link_a = link(base, 1, upload_id)
    outputs = [proc.stdout + proc.stderr]

    # --check: says what would change, changes nothing (the container, the key file, the record).
    before = (docker_client.containers.get(PROJECT + "-app").id, key_a, (state / "secret_keys.json").read_text())
    proc, report = playbook(inventory, "rotate_secret_key.yml", "-e", "generate=true", "--check")
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, failures(report)
    assert "Decide which earlier secret keys" in proc.stdout
    assert "Say what happens to the secret keys (fingerprints only)" in changed_tasks(report), changed_tasks(report)
    said = said_by(report, "Say what was rotated")
    assert len(said) == 1 and said[0].startswith("Check mode, nothing changed. A real run: SECRET_KEY %s replaced by "
                                                 % fingerprint(key_a)), said
    assert (docker_client.containers.get(PROJECT + "-app").id, key_file.read_text().strip(),
            (state / "secret_keys.json").read_text()) == before

    # The rotation, under load on the link signed with the old key: not one request fails.
    load = Load(base + link_a, rate=20, total=100000, max_seconds=300).start()
    time.sleep(1)
    proc, report = playbook(inventory, "rotate_secret_key.yml", "-e", "generate=true")
    time.sleep(1)
    load.stop()
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, failures(report)
    assert load.failed == [] and load.ok > 50, (load.ok, load.failed[:10])
    key_b = key_file.read_text().strip()
    assert len(key_b) == 64 and key_b != key_a
    env = live_env(docker_client)
    assert env["SECRET_KEY"] == key_b
    [kept] = json.loads(env["SECRET_KEY_FALLBACKS"])
    assert kept["key"] == key_a
    assert call(base, link_a) == (200, b"signed with the first key"), "the old link works during the grace"
    link_b = link(base, 1, upload_id)
    assert call(base, link_b)[0] == 200
    record = json.loads((state / "secret_keys.json").read_text())
    assert record["current"]["fingerprint"] == fingerprint(key_b)
    assert [(f["fingerprint"], f["expires"]) for f in record["fallbacks"]] == [(fingerprint(key_a), kept["expires"])]
    grace = calendar.timegm(time.strptime(kept["expires"], "%Y-%m-%dT%H:%M:%SZ")) - time.time()
    assert 167 * 3600 < grace <= 168 * 3600, "the default grace is a week"
    assert oct(os.stat(state / "secret_keys.json").st_mode & 0o777) == "0o600"
    rotated = [line for line in audit(state) if line["event"] == "secret_key_rotated"]
    assert len(rotated) == 1 and rotated[0]["message"].startswith(
        "SECRET_KEY %s replaced by %s; what %s signed stays valid until %s" % (
            fingerprint(key_a), fingerprint(key_b), fingerprint(key_a), kept["expires"])), rotated
    assert said_by(report, "Say what was rotated") == [rotated[0]["message"].replace(
        "SECRET_KEY", "Rotated on localhost: SECRET_KEY", 1)], "the last word says what the audit log records"
    stats = json.loads(proc.stdout)["global_custom_stats"]["rollcall_result"]
    assert stats["previous"] == fingerprint(key_a) and stats["valid_until"] == kept["expires"], stats

    # Again: nothing to do, and it says so (the key given is the one the live release runs with).
    proc, report = playbook(inventory, "rotate_secret_key.yml")
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, failures(report)
    assert report["stats"]["localhost"]["changed"] == 0, changed_tasks(report)
    assert ("Nothing to rotate, nothing was changed: the live release already runs with SECRET_KEY %s"
            % fingerprint(key_b)) in proc.stdout
    assert said_by(report, "Say what was rotated") == []

    # The grace ends (here: the record says so); the next deploy drops the key, and its links are refused.
    record["fallbacks"][0]["expires"] = "2000-01-01T00:00:00Z"
    (state / "secret_keys.json").write_text(json.dumps(record))
    proc, report = playbook(inventory)
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, failures(report)
    assert "SECRET_KEY_FALLBACKS" not in live_env(docker_client)
    status, payload = call(base, link_a)
    assert status == 403 and b"retired" in payload, "the grace has ended: the old link is refused"
    assert call(base, link_b)[0] == 200
    assert [line["event"] for line in audit(state)][-1] == "secret_key_fallbacks_dropped"
    assert json.loads((state / "secret_keys.json").read_text())["fallbacks"] == []

    for text in outputs + [(state / "audit.jsonl").read_text()]:
        assert key_a not in text and key_b not in text, "a key was printed"
