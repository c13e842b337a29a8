"""The reference SMS app in its real image: API, health, limits, logs, metrics, CLI errors, migrations."""

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from conftest import SECRET, host_port, wait_exit, wait_healthy

APP = "rollcall/sms-app:1.0.0"
SQLITE = "sqlite:////data/db/sms.sqlite3"


def request(base, path, method="GET", body=None, headers=None, raw=None):
    data = json.dumps(body).encode() if body is not None else raw
    req = urllib.request.Request(base + path, data=data, method=method, headers=dict(headers or {}))
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


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


@pytest.fixture(scope="module")
def app(docker_client, require_image):
    """One migrated, seeded app on SQLite for the module, published on a random loopback port."""
    require_image(APP)
    volume = "it-sms-%s" % uuid.uuid4().hex[:8]
    volumes = {volume: {"bind": "/data/db", "mode": "rw"}}
    for command in (["sms-app", "migrate"], ["sms-app", "seed", "--students", "12"]):
        # raises ContainerError (with the output) when the command fails
        docker_client.containers.run(APP, command=command, environment=app_env(), volumes=volumes, remove=True)
    container = docker_client.containers.run(APP, detach=True, name="it-app-%s" % volume, environment=app_env(),
                                             volumes=volumes, ports={"8000/tcp": ("127.0.0.1", None)})
    try:
        wait_healthy(container)
        yield "http://127.0.0.1:%d" % host_port(container, "8000/tcp"), container
    finally:
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
    assert SECRET not in container.logs().decode()


def test_rate_limit_answers_429_with_retry_after(run_container, require_image):
    require_image(APP)
    container = run_container(APP, environment=app_env(RATE_LIMIT_PER_MINUTE="3"),
                              command=["sh", "-c", "sms-app migrate && exec sms-app serve"],
                              ports={"8000/tcp": ("127.0.0.1", None)})
    wait_healthy(container)
    base = "http://127.0.0.1:%d" % host_port(container, "8000/tcp")
    statuses = [request(base, "/api/v1/courses")[0] for _ in range(3)]
    status, headers, payload = request(base, "/api/v1/courses")
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert json.loads(payload)["limit_per_minute"] == 3
    assert request(base, "/health/live")[0] == 200, "health endpoints are exempt"
    assert statuses == [200, 200, 200]


@pytest.mark.parametrize("secret", [None, "short-key"])
def test_missing_or_short_secret_key_refuses_to_start(run_container, require_image, secret):
    require_image(APP)
    env = app_env()
    env.pop("SECRET_KEY")
    if secret:
        env["SECRET_KEY"] = secret
    container = run_container(APP, environment=env)
    code, output = wait_exit(container)
    assert code == 2
    assert output.strip() == ("sms-app: SECRET_KEY is missing or shorter than 32 characters; set SECRET_KEY to a "
                              "random string of at least 32 characters")


def test_unreachable_database_is_one_line_without_password(run_container, require_image):
    require_image(APP)
    password = "p4ss-that-must-not-leak"
    url = "postgresql+psycopg2://sms:%s@127.0.0.1:1/sms" % password
    code, output = oneoff(run_container, APP, ["sms-app", "migrate"], app_env(DATABASE_URL=url))
    assert code == 3
    assert len(output.strip().splitlines()) == 1
    assert output.startswith("sms-app: cannot connect to the database at 127.0.0.1:1 (")
    assert password not in output


def test_migrations_up_backfill_and_down(run_container, require_image, docker_client):
    for tag in ("rollcall/sms-app:1.0.0", "rollcall/sms-app:1.1.0"):
        require_image(tag)
    volume = "it-mig-%s" % uuid.uuid4().hex[:8]
    volumes = {volume: {"bind": "/data/db", "mode": "rw"}}
    try:
        def run(tag, *command):
            code, output = oneoff(run_container, tag, ["sms-app", *command], app_env(), volumes)
            assert code == 0, output
            return json.loads(output.strip().splitlines()[-1]) if "--json" in command else output

        assert run(APP, "migrate", "--json") == {"changed": True, "from": None, "to": "0001", "version": "1.0.0"}
        assert run(APP, "migrate", "--json")["changed"] is False
        first = run(APP, "seed", "--students", "5", "--json")
        assert first["changed"] is True and first["students"] == 5
        assert run(APP, "seed", "--students", "5", "--json")["changed"] is False
        up = run("rollcall/sms-app:1.1.0", "migrate", "--json")
        assert up == {"changed": True, "from": "0001", "to": "0002", "version": "1.1.0"}
        check = run_container("rollcall/sms-app:1.1.0", environment=app_env(), volumes=volumes,
                              command=["python3", "-c", "import sqlite3; c = sqlite3.connect('/data/db/sms.sqlite3');"
                                       "print(c.execute(\"SELECT count(*) FROM students WHERE full_name = "
                                       "first_name || ' ' || last_name\").fetchone()[0])"])
        code, output = wait_exit(check)
        assert code == 0 and output.strip() == "5", output
        down = run("rollcall/sms-app:1.1.0", "migrate", "--to", "0001", "--json")
        assert down == {"changed": True, "from": "0002", "to": "0001", "version": "1.1.0"}
    finally:
        for container in docker_client.containers.list(all=True, filters={"volume": volume}):
            container.remove(force=True)
        docker_client.volumes.get(volume).remove(force=True)


def test_broken_build_is_live_but_never_ready(run_container, require_image, docker_client):
    broken = require_image("rollcall/sms-app:1.2.0-broken")
    volume = "it-broken-%s" % uuid.uuid4().hex[:8]
    volumes = {volume: {"bind": "/data/db", "mode": "rw"}}
    try:
        code, output = oneoff(run_container, broken, ["sms-app", "migrate"], app_env(), volumes)
        assert code == 0, output
        container = run_container(broken, environment=app_env(), volumes=volumes,
                                  ports={"8000/tcp": ("127.0.0.1", None)})
        wait_healthy(container)  # the container HEALTHCHECK looks at /health/live only
        base = "http://127.0.0.1:%d" % host_port(container, "8000/tcp")
        assert get_json(base, "/health/live")[0] == 200
        status, _, ready = get_json(base, "/health/ready")
        assert status == 503 and ready["checks"]["release"]["status"] == "error"
        status, _, health = get_json(base, "/health")
        assert status == 503 and health["status"] == "unhealthy" and health["version"] == "1.2.0-broken"
    finally:
        for container in docker_client.containers.list(all=True, filters={"volume": volume}):
            container.remove(force=True)
        docker_client.volumes.get(volume).remove(force=True)
