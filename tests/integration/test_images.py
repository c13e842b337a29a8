"""Our database and host images, and the content-hash cache of images/build.py.

One container per database image for the module (started once, restarted once); short-lived ones only for
the start-up errors. Containers are named imgtest-<random> and removed at the end; ports are published on
127.0.0.1 only, on ports the engine picks.
"""

import contextlib
import os
import subprocess
import sys
import time
import uuid

import docker.errors
import psycopg2
import pymysql
import pytest
from conftest import host_port, wait_exit, wait_healthy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "images", "build.py")
PASSWORD = "pw with 'quotes', \"doubles\" and \\ backslash"
POSTGRES = "rollcall/postgres:15"
MARIADB = "rollcall/mariadb:10.11"
HOST = "rollcall/host:bookworm"


@pytest.fixture(scope="module")
def start(docker_client, require_image):
    """start(image, **run_kwargs): a detached imgtest-* container, removed (with its volumes) after the module."""
    started = []

    def run(image, **kwargs):
        container = docker_client.containers.run(require_image(image), detach=True,
                                                 name="imgtest-%s" % uuid.uuid4().hex[:10], **kwargs)
        started.append(container)
        return container

    yield run
    for container in started:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)


def stop_and_start(container):
    """docker stop (timed), then start again until healthy; return (seconds to stop, exit code)."""
    began = time.monotonic()
    container.stop(timeout=20)
    seconds = time.monotonic() - began
    container.reload()
    code = container.attrs["State"]["ExitCode"]
    container.start()
    wait_healthy(container)
    return seconds, code


# ---------------------------------------------------------------- PostgreSQL

@pytest.fixture(scope="module")
def postgres(start):
    container = start(POSTGRES, ports={"5432/tcp": ("127.0.0.1", None)},
                      environment={"POSTGRES_USER": "sms", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "school"})
    wait_healthy(container)
    return container


def pg_connect(container, password=PASSWORD, user="sms"):
    return psycopg2.connect(host="127.0.0.1", port=host_port(container, "5432/tcp"), user=user, password=password,
                            dbname="school", connect_timeout=5)


def test_postgres_accepts_the_password_and_rejects_a_wrong_one(postgres):
    with pg_connect(postgres) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database(), pg_encoding_to_char(encoding), datcollate, "
                       "current_setting('shared_buffers'), current_setting('password_encryption') "
                       "FROM pg_database WHERE datname = current_database()")
        assert cursor.fetchone() == ("sms", "school", "UTF8", "C.UTF-8", "128MB", "scram-sha-256")
    connection.close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        pg_connect(postgres, password="wrong")


def test_postgres_stops_cleanly_and_keeps_its_data(postgres):
    with pg_connect(postgres) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    connection.close()
    seconds, code = stop_and_start(postgres)
    assert code == 0 and seconds < 5, "docker stop took %.1f s, exit code %s" % (seconds, code)
    logs = postgres.logs().decode()
    assert logs.count("postgres: initialised") == 1
    assert "database system is shut down" in logs and "not properly shut down" not in logs
    with pg_connect(postgres) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT v FROM kept")
        assert cursor.fetchall() == [("still here",)]
    connection.close()


def test_postgres_without_password_says_so(start):
    container = start(POSTGRES, environment={"POSTGRES_USER": "sms"})
    assert wait_exit(container) == (1, "postgres: POSTGRES_PASSWORD is not set; set it "
                                       "(or POSTGRES_HOST_AUTH_METHOD=trust for throw-away tests)\n")


def test_postgres_trust_needs_no_password(start):
    container = start(POSTGRES, ports={"5432/tcp": ("127.0.0.1", None)},
                      environment={"POSTGRES_HOST_AUTH_METHOD": "trust", "POSTGRES_DB": "school"})
    wait_healthy(container)
    with pg_connect(container, user="postgres", password="") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone() == ("school",)
    connection.close()


# ---------------------------------------------------------------- MariaDB

@pytest.fixture(scope="module")
def mariadb(start):
    container = start(MARIADB, ports={"3306/tcp": ("127.0.0.1", None)},
                      environment={"MARIADB_ROOT_PASSWORD": PASSWORD + "root", "MARIADB_DATABASE": "school",
                                   "MARIADB_USER": "sms", "MARIADB_PASSWORD": PASSWORD})
    wait_healthy(container)
    return container


def my_connect(container, user="sms", password=PASSWORD, database="school"):
    return pymysql.connect(host="127.0.0.1", port=host_port(container, "3306/tcp"), user=user, password=password,
                           database=database, connect_timeout=5)


def test_mariadb_user_database_and_utf8mb4(mariadb):
    connection = my_connect(mariadb)
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@character_set_server, @@collation_server, DATABASE(), CURRENT_USER()")
        assert cursor.fetchone() == ("utf8mb4", "utf8mb4_unicode_ci", "school", "sms@%")
        cursor.execute("SELECT default_character_set_name FROM information_schema.schemata WHERE schema_name = %s",
                       ("school",))
        assert cursor.fetchone() == ("utf8mb4",)
        cursor.execute("CREATE TABLE kept (s VARCHAR(20))")
        cursor.execute("INSERT INTO kept VALUES (%s)", ("🎓 still here",))
        cursor.execute("SELECT s FROM kept")
        assert cursor.fetchone() == ("🎓 still here",)
    connection.commit()
    connection.close()
    root = my_connect(mariadb, user="root", password=PASSWORD + "root", database=None)
    root.close()


def test_mariadb_rejects_wrong_and_empty_passwords(mariadb):
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        my_connect(mariadb, password="wrong")
    # No root account without a password is left behind (a classic of hand-made MariaDB images).
    for password in ("wrong", ""):
        with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
            my_connect(mariadb, user="root", password=password, database=None)


def test_mariadb_stops_cleanly_and_keeps_its_data(mariadb):
    seconds, code = stop_and_start(mariadb)
    assert code == 0 and seconds < 5, "docker stop took %.1f s, exit code %s" % (seconds, code)
    logs = mariadb.logs().decode()
    assert logs.count("mariadb: initialised") == 1
    assert "Shutdown complete" in logs and "crash recovery" not in logs
    connection = my_connect(mariadb)
    with connection.cursor() as cursor:
        cursor.execute("SELECT s FROM kept")
        assert cursor.fetchall() == (("🎓 still here",),)
    connection.close()


@pytest.mark.parametrize("environment, line", [
    ({"MARIADB_DATABASE": "x"},
     "mariadb: MARIADB_ROOT_PASSWORD is not set; set it to the root password of the new server"),
    ({"MARIADB_ROOT_PASSWORD": "r", "MARIADB_USER": "sms"},
     "mariadb: MARIADB_USER is set but MARIADB_PASSWORD is not; set both"),
])
def test_mariadb_without_a_required_password_says_so(start, environment, line):
    assert wait_exit(start(MARIADB, environment=environment)) == (1, line + "\n")


# ---------------------------------------------------------------- host

def test_host_image_has_what_ansible_and_community_docker_need(docker_client, start):
    container = start(HOST, command=["python3", "-c", "import docker, requests, yaml; print('ok')"])
    assert wait_exit(container) == (0, "ok\n")
    config = docker_client.images.get(HOST).attrs["Config"]
    assert (config["Entrypoint"], config["Cmd"]) == (["tini", "--"], ["sleep", "infinity"])
    idle = start(HOST)
    # Once tini runs sleep: a SIGTERM sent in the instant before tini sets up its signal handling is lost (PID 1),
    # and a loaded machine made that instant long enough once (a fresh clone's run, 2026-12-07).
    deadline = time.monotonic() + 30
    while not any("sleep" in " ".join(row) for row in (idle.top().get("Processes") or [])):
        assert time.monotonic() < deadline, "the host never ran its command"
        time.sleep(0.2)
    began = time.monotonic()
    idle.stop(timeout=20)
    assert time.monotonic() - began < 5, "docker stop of an idle host waited for the grace period"


# ---------------------------------------------------------------- images/build.py

def run_build(*args):
    return subprocess.run([sys.executable, BUILD, *args], capture_output=True, text=True, timeout=120, check=False)


def test_build_cache_keeps_an_unchanged_image(docker_client, require_image):
    before = docker_client.images.get(require_image(POSTGRES)).id
    proc = run_build("postgres")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "image: rollcall/postgres:15 up to date\n"
    assert docker_client.images.get(POSTGRES).id == before
    check = run_build("--check", "postgres")
    assert (check.returncode, check.stdout) == (0, "image: rollcall/postgres:15 up to date\n")
    wrong = run_build("--check", "nonsense")
    assert wrong.returncode == 2 and "unknown image(s) nonsense" in wrong.stderr


def test_build_says_when_the_engine_does_not_answer():
    proc = subprocess.run([sys.executable, BUILD, "--check"], capture_output=True, text=True, timeout=60,
                          check=False, env=dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock"))
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == ("build: the Docker engine does not answer; run 'make setup' "
                           "(images/engine.sh starts it)\n")
