"""The reference SMS app in its real image: API, health, limits, logs, metrics, CLI errors, migrations."""

import contextlib
import json
import time
import uuid

import docker.errors
import pytest
from conftest import SECRET, host_port, request, wait_exit, wait_healthy

APP = "rollcall/sms-app:1.0.0"
APP_110 = "rollcall/sms-app:1.1.0"
BROKEN = "rollcall/sms-app:1.2.0-broken"
SQLITE = "sqlite:////data/db/sms.sqlite3"
PREFIX = "sms-apptest-"  # every container and volume this module makes; all removed at the end


def unique(kind):
    return "%s%s-%s" % (PREFIX, kind, uuid.uuid4().hex[:8])


def get_json(base, path, **kwargs):
    status, headers, payload = request(base, path, **kwargs)
    return status, headers, json.loads(payload)


def app_env(**extra):
    env = {"DATABASE_URL": SQLITE, "SECRET_KEY": SECRET, "RATE_LIMIT_PER_MINUTE": "0"}
    env.update(extra)
    return env


def oneoff(run_container, image, command, env, volumes=None):
    container = run_container(image, command=command, environment=env, volumes=volumes or {})
    return wait_exit(container)


def base_url(container):
    return "http://127.0.0.1:%d" % host_port(container, "8000/tcp")


def wait_live(container, timeout=30):
    """Poll /health/live (faster than waiting for Docker's first HEALTHCHECK run); returns the base URL."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            raise AssertionError("container exited: %s" % container.logs(tail=20).decode())
        with contextlib.suppress(OSError, KeyError, TypeError, IndexError):
            base = base_url(container)
            if request(base, "/health/live")[0] == 200:
                return base
        time.sleep(0.2)
    raise AssertionError("no answer on /health/live after %s s: %s" % (timeout, container.logs(tail=20).decode()))


@pytest.fixture
def run_container(docker_client):
    """Start containers named sms-apptest-…; all are removed at the end of the test."""
    started = []

    def run(image, **kwargs):
        kwargs.setdefault("detach", True)
        container = docker_client.containers.run(image, name=unique("run"), **kwargs)
        started.append(container)
        return container

    yield run
    for container in started:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)


@pytest.fixture
def volume(docker_client):
    """A fresh named volume for /data/db (the SQLite file), removed after the test and its containers."""
    name = docker_client.volumes.create(unique("db")).name
    yield {name: {"bind": "/data/db", "mode": "rw"}}
    for container in docker_client.containers.list(all=True, filters={"volume": name}):
        container.remove(force=True, v=True)
    docker_client.volumes.get(name).remove(force=True)


@pytest.fixture(scope="module")
def app(docker_client, require_image):
    """One migrated, seeded app on SQLite for the module, published on a random loopback port."""
    require_image(APP)
    volume = docker_client.volumes.create(unique("db")).name
    volumes = {volume: {"bind": "/data/db", "mode": "rw"}}
    container = None
    try:
        for command in (["sms-app", "migrate"], ["sms-app", "seed", "--students", "12"]):
            setup = docker_client.containers.run(APP, command=command, name=unique("setup"), environment=app_env(),
                                                 volumes=volumes, detach=True)
            code, output = wait_exit(setup)
            setup.remove(force=True, v=True)  # v: its anonymous /data/uploads volume too
            assert code == 0, "%s failed: %s" % (" ".join(command), output)
        container = docker_client.containers.run(APP, detach=True, name=unique("app"), environment=app_env(),
                                                 volumes=volumes, ports={"8000/tcp": ("127.0.0.1", None)})
        wait_healthy(container)  # Docker's own HEALTHCHECK (python3 urllib on /health/live) must pass
        yield base_url(container), container
    finally:
        if container is not None:
            container.remove(force=True, v=True)
        docker_client.volumes.get(volume).remove(force=True)


def test_health_is_healthy_with_every_check(app):
    base, _ = app
    status, _, doc = get_json(base, "/health")
    assert status == 200
    assert doc["status"] == "healthy" and doc["version"] == "1.0.0"
    assert doc["checks"]["database"]["status"] == "ok"
    assert doc["checks"]["migrations"] == {"status": "ok", "revision": "0001", "expected": "0001"}
    assert get_json(base, "/health/live")[0] == 200
    assert get_json(base, "/health/ready")[0] == 200


def test_students_paging_get_and_404(app):
    base, _ = app
    status, _, page = get_json(base, "/api/v1/students?per_page=5&page=3")
    assert status == 200
    assert page["total"] == 12 and page["page"] == 3 and len(page["items"]) == 2
    first = page["items"][0]
    status, _, one = get_json(base, "/api/v1/students/%d" % first["id"])
    assert status == 200 and one["student_number"] == first["student_number"]
    status, _, missing = get_json(base, "/api/v1/students/99999")
    assert status == 404 and "not found" in missing["error"]
    assert get_json(base, "/api/v1/students?per_page=500")[2]["per_page"] == 100


def test_create_student_validates_input(app):
    base, _ = app
    good = {"student_number": "N-1", "first_name": "Ünal", "last_name": "Østergaard", "email": "u.o@example.edu",
            "grade_level": 10}
    status, _, created = get_json(base, "/api/v1/students", method="POST", body=good)
    assert status == 201 and created["first_name"] == "Ünal" and "full_name" not in created
    assert get_json(base, "/api/v1/students", method="POST", body=good)[0] == 409
    status, _, error = get_json(base, "/api/v1/students", method="POST", body=dict(good, email="nope"))
    assert status == 400 and "email" in error["error"]
    status, _, error = get_json(base, "/api/v1/students", method="POST", body=dict(good, grade_level="ten"))
    assert status == 400 and "grade_level" in error["error"]
    status, _, error = get_json(base, "/api/v1/students", method="POST", raw=b"not json",
                                headers={"Content-Type": "application/json"})
    assert status == 400


def test_courses_grades_attendance(app):
    base, _ = app
    courses = get_json(base, "/api/v1/courses")[2]
    assert courses["total"] == 6
    student = get_json(base, "/api/v1/students?per_page=1")[2]["items"][0]
    grades = get_json(base, "/api/v1/grades?student_id=%d" % student["id"])[2]
    assert grades["total"] == 3 and all(g["student_id"] == student["id"] for g in grades["items"])
    status, _, grade = get_json(base, "/api/v1/grades", method="POST", body={
        "student_id": student["id"], "course_id": courses["items"][0]["id"], "term": "2027-SPRING", "score": 91.5})
    assert status == 201 and grade["letter"] == "A"
    status, _, bad = get_json(base, "/api/v1/attendance", method="POST", body={
        "student_id": student["id"], "course_id": courses["items"][0]["id"], "day": "2026-10-01", "status": "asleep"})
    assert status == 400 and "status must be one of" in bad["error"]
    attendance = get_json(base, "/api/v1/attendance?student_id=%d" % student["id"])[2]
    assert attendance["total"] == 15


def test_upload_is_stored_with_a_safe_name(app):
    base, container = app
    student = get_json(base, "/api/v1/students?per_page=1")[2]["items"][0]
    boundary = "rollcallboundary"
    content = b"report card \x00\xff bytes"
    body = (b"--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../etc/passwd\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n%s\r\n--%s--\r\n") % (boundary.encode(), content,
                                                                                  boundary.encode())
    status, _, payload = request(base, "/api/v1/students/%d/uploads" % student["id"], method="POST", raw=body,
                                 headers={"Content-Type": "multipart/form-data; boundary=%s" % boundary})
    upload = json.loads(payload)
    assert status == 201, upload
    assert upload["filename"] == "etc_passwd" and upload["size"] == len(content)
    listing = get_json(base, "/api/v1/students/%d/uploads" % student["id"])[2]
    assert listing["total"] == 1
    files = container.exec_run(["ls", "/data/uploads"]).output.decode().split()
    assert len(files) == 1 and not files[0].endswith(".part")
    assert container.exec_run(["test", "-e", "/etc/passwd.part"]).exit_code != 0


def test_access_log_and_metrics(app):
    base, container = app
    request(base, "/api/v1/courses", headers={"X-Request-ID": "trace-me-123"})
    time.sleep(0.2)
    lines = [json.loads(line) for line in container.logs(stdout=True, stderr=False).decode().splitlines()
             if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "trace-me-123"]
    assert len(mine) == 1
    assert mine[0]["method"] == "GET" and mine[0]["path"] == "/api/v1/courses" and mine[0]["status"] == 200
    assert isinstance(mine[0]["duration_ms"], float)
    status, headers, text = request(base, "/metrics")
    text = text.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'sms_app_info{version="1.0.0"} 1' in text
    assert 'sms_app_http_requests_total{method="GET",path="/api/v1/courses",status="200"}' in text
    assert "sms_app_http_request_duration_seconds_bucket" in text
    assert "\nsms_app_database_up 1\n" in text
    assert SECRET not in container.logs().decode()


def test_rate_limit_answers_429_with_retry_after(run_container, require_image):
    require_image(APP)
    container = run_container(APP, environment=app_env(RATE_LIMIT_PER_MINUTE="3"),
                              command=["sh", "-c", "sms-app migrate && exec sms-app serve"],
                              ports={"8000/tcp": ("127.0.0.1", None)})
    base = wait_live(container)
    statuses = [request(base, "/api/v1/courses")[0] for _ in range(3)]
    status, headers, payload = request(base, "/api/v1/courses")
    assert status == 429
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert json.loads(payload)["limit_per_minute"] == 3
    assert request(base, "/health/live")[0] == 200, "health endpoints are exempt"
    assert request(base, "/metrics")[0] == 200, "metrics is exempt"
    assert statuses == [200, 200, 200]


@pytest.mark.parametrize("secret", [None, "short-key", "k" * 40])
def test_missing_or_short_secret_key_refuses_to_start(run_container, require_image, secret):
    require_image(APP)
    env = app_env()
    env.pop("SECRET_KEY")
    if secret:
        env["SECRET_KEY"] = secret
    container = run_container(APP, environment=env)  # default CMD: sms-app serve
    code, output = wait_exit(container)
    assert code == 2
    assert output.strip() == ("sms-app: SECRET_KEY is missing or shorter than 48 characters; set SECRET_KEY to a "
                              "random string of at least 48 characters")


def test_missing_database_url_is_one_clear_line(run_container, require_image):
    require_image(APP)
    env = app_env()
    env.pop("DATABASE_URL")
    code, output = oneoff(run_container, APP, ["sms-app", "migrate"], env)
    assert code == 2
    assert len(output.strip().splitlines()) == 1
    assert output.startswith("sms-app: DATABASE_URL is not set")


@pytest.mark.parametrize(("command", "url"), [
    (["migrate"], "postgresql+psycopg2://sms:%s@127.0.0.1:1/sms"),
    (["seed", "--students", "3"], "mysql+pymysql://sms:%s@127.0.0.1:1/sms?charset=utf8mb4"),
    (["check-config"], "postgresql+psycopg2://sms:%s@127.0.0.1:1/sms"),
], ids=["migrate-postgresql", "seed-mariadb", "check-config-postgresql"])
def test_unreachable_database_is_one_line_without_password(run_container, require_image, command, url):
    require_image(APP)
    password = "p4ss-that-must-not-leak"
    code, output = oneoff(run_container, APP, ["sms-app", *command], app_env(DATABASE_URL=url % password))
    assert code == 3, output
    assert len(output.strip().splitlines()) == 1, output
    assert output.startswith("sms-app: cannot connect to the database at 127.0.0.1:1 ("), output
    assert output.strip().endswith("); check DATABASE_URL and that the database is running")
    assert password not in output and "Traceback" not in output


def test_migrations_up_backfill_and_down(app, run_container, require_image, volume):
    require_image(APP)
    require_image(APP_110)

    def run(tag, *command):
        code, output = oneoff(run_container, tag, ["sms-app", *command], app_env(), volume)
        assert code == 0, output
        return json.loads(output.strip().splitlines()[-1])  # the last stdout line is always JSON

    assert run(APP, "migrate", "--json") == {"changed": True, "from": None, "to": "0001", "version": "1.0.0"}
    assert run(APP, "migrate")["changed"] is False  # without --json too, the last line is JSON
    assert run(APP, "revision") == {"revision": "0001", "expected": "0001", "version": "1.0.0"}
    first = run(APP, "seed", "--students", "5", "--json")
    assert first["changed"] is True and first["students"] == 5 and first["total_students"] == 5
    again = run(APP, "seed", "--students", "5", "--json")
    assert again["changed"] is False and again["students"] == 0 and again["total_students"] == 5
    assert run(APP_110, "revision")["expected"] == "0002"

    up = run(APP_110, "migrate", "--json")
    assert up == {"changed": True, "from": "0001", "to": "0002", "version": "1.1.0"}
    server = run_container(APP_110, environment=app_env(), volumes=volume, ports={"8000/tcp": ("127.0.0.1", None)})
    base = wait_live(server)
    assert get_json(base, "/health/ready")[0] == 200
    students = get_json(base, "/api/v1/students")[2]["items"]
    assert len(students) == 5
    assert all(s["full_name"] == "%s %s" % (s["first_name"], s["last_name"]) for s in students), students
    # deterministic: the same first five students as the module's app seeded with --students 12
    reference = get_json(app[0], "/api/v1/students?per_page=5")[2]["items"]
    keys = ("student_number", "first_name", "last_name", "email", "grade_level", "enrolled_on")
    assert [[s[k] for k in keys] for s in students] == [[s[k] for k in keys] for s in reference]
    server.remove(force=True, v=True)

    check = run(APP_110, "migrate", "--to", "0001", "--check", "--json")
    assert check["possible"] is True and check["blockers"] == [] and check["from"] == "0002"
    assert run(APP_110, "migrate", "--to", "0000", "--check")["possible"] is False
    assert run(APP, "revision")["revision"] == "0002", "--check changes nothing"
    down = run(APP_110, "migrate", "--to", "0001", "--json")
    assert down == {"changed": True, "from": "0002", "to": "0001", "version": "1.1.0"}
    assert run(APP, "revision")["revision"] == "0001"


def test_broken_build_is_live_but_never_ready(run_container, require_image, volume):
    require_image(BROKEN)
    code, output = oneoff(run_container, BROKEN, ["sms-app", "migrate", "--json"], app_env(), volume)
    assert code == 0, output
    assert json.loads(output.strip().splitlines()[-1])["to"] == "0002", "the broken build targets the 1.1.0 head"
    container = run_container(BROKEN, environment=app_env(), volumes=volume, ports={"8000/tcp": ("127.0.0.1", None)})
    base = wait_live(container)
    assert get_json(base, "/health/live")[0] == 200
    status, _, ready = get_json(base, "/health/ready")
    assert status == 503 and ready["checks"]["release"]["status"] == "error"
    assert ready["checks"]["database"]["status"] == "ok" and ready["checks"]["migrations"]["status"] == "ok"
    status, _, health = get_json(base, "/health")
    assert status == 503 and health["status"] == "unhealthy" and health["version"] == "1.2.0-broken"
    assert "deliberately broken" in health["checks"]["release"]["detail"]


CUT_PROBE = r"""
import json, os
os.environ.update(DATABASE_URL="sqlite:////tmp/cut.sqlite3", SECRET_KEY="k" * 48, RATE_LIMIT_PER_MINUTE="0")
from sqlalchemy.exc import OperationalError
from sms_app.app import create_app
from sms_app.config import load

app = create_app(load())
calls = []

def fail(message):
    raise OperationalError("SELECT 1", {}, Exception(message))

@app.route("/probe/<kind>", methods=["GET", "POST"])
def probe(kind):
    calls.append(kind)
    if calls.count(kind) == 1:  # the first call of each kind fails, the next one works
        fail({"setup": "FATAL:  terminating connection due to administrator command",
              "post": "server closed the connection unexpectedly", "other": "no such table: students",
              "down": 'could not translate host name "db" to address: Name or service not known'}[kind])
    return "ok"

client = app.test_client()
down = client.get("/probe/down")
print(json.dumps({"setup": client.get("/probe/setup").status_code, "post": client.post("/probe/post").status_code,
                  "other": client.get("/probe/other").status_code, "down": down.status_code,
                  "retry_after": down.headers.get("Retry-After"), "error": down.get_json()["error"], "calls": calls}))
"""


def test_a_read_whose_connection_the_server_ended_while_it_was_set_up_runs_again_once(run_container, require_image):
    """A restore's swap ends every session of the database it renames, one that was still being set up (in the
    pool's connect, so SQLAlchemy does not mark it invalidated) included: a GET runs again once, anything else
    and other database errors fail as before (images/sms-app/sms_app/app.py SMSFlask). A database that cannot be
    reached (or a connection cut under a write) is a 503 with Retry-After; an error in a statement stays a 500."""
    require_image(APP)
    code, output = oneoff(run_container, APP, ["python3", "-c", CUT_PROBE], app_env())
    assert code == 0, output
    # The app's error log lines (stderr) and the result (stdout) come from two pipes: Docker's log does not keep
    # their order, so the result is the line that is the result, not the last line (CI, 2026-12-05).
    result = json.loads([line for line in output.strip().splitlines() if line.startswith('{"setup"')][-1])
    assert result == {"setup": 200, "post": 503, "other": 500, "down": 503, "retry_after": "5",
                      "error": "database unavailable, try again shortly",
                      "calls": ["down", "setup", "setup", "post", "other"]}, result
