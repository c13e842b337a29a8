"""Our database and host images, and the content-hash cache of images/build.py."""

import os
import subprocess
import sys

import psycopg2
import pymysql
import pytest
from conftest import host_port, wait_exit, wait_healthy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "pw with 'quotes' and \\ backslash"


@pytest.fixture(scope="module")
def postgres(docker_client, require_image):
    require_image("rollcall/postgres:15")
    container = docker_client.containers.run(
        "rollcall/postgres:15", detach=True, name="it-pg-images",
        environment={"POSTGRES_USER": "sms", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "school"},
        ports={"5432/tcp": ("127.0.0.1", None)})
    try:
        wait_healthy(container)
        yield container
    finally:
        container.remove(force=True, v=True)


def pg_connect(container, password=PASSWORD):
    return psycopg2.connect(host="127.0.0.1", port=host_port(container, "5432/tcp"), user="sms", password=password,
                            dbname="school", connect_timeout=5)


def test_postgres_accepts_the_password_and_rejects_a_wrong_one(postgres):
    with pg_connect(postgres) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database(), pg_encoding_to_char(encoding) FROM pg_database "
                       "WHERE datname = current_database()")
        assert cursor.fetchone() == ("sms", "school", "UTF8")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        pg_connect(postgres, password="wrong")


def test_postgres_restart_keeps_data_and_does_not_reinitialise(postgres):
    with pg_connect(postgres) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS kept (v text); INSERT INTO kept VALUES ('still here')")
    postgres.restart(timeout=20)
    wait_healthy(postgres)
    assert postgres.logs().decode().count("initialised") == 1
    with pg_connect(postgres) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT v FROM kept")
        assert cursor.fetchall() == [("still here",)]


def test_postgres_without_password_says_so(run_container, require_image):
    container = run_container(require_image("rollcall/postgres:15"), environment={"POSTGRES_USER": "sms"})
    code, output = wait_exit(container)
    assert code == 1
    assert output.strip() == ("postgres: POSTGRES_PASSWORD is not set; set it (or POSTGRES_HOST_AUTH_METHOD=trust "
                              "for throw-away tests)")


def test_mariadb_users_charset_and_wrong_password(run_container, require_image):
    container = run_container(require_image("rollcall/mariadb:10.11"), ports={"3306/tcp": ("127.0.0.1", None)},
                              environment={"MARIADB_ROOT_PASSWORD": PASSWORD + "root", "MARIADB_DATABASE": "school",
                                           "MARIADB_USER": "sms", "MARIADB_PASSWORD": PASSWORD})
    wait_healthy(container)
    port = host_port(container, "3306/tcp")
    connection = pymysql.connect(host="127.0.0.1", port=port, user="sms", password=PASSWORD, database="school")
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@character_set_server, @@collation_server, DATABASE()")
        assert cursor.fetchone() == ("utf8mb4", "utf8mb4_unicode_ci", "school")
        cursor.execute("CREATE TABLE t (s VARCHAR(10)) ; ")
        cursor.execute("INSERT INTO t VALUES (%s)", ("🎓 ok",))
        cursor.execute("SELECT s FROM t")
        assert cursor.fetchone() == ("🎓 ok",)
    connection.close()
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host="127.0.0.1", port=port, user="root", password="wrong")
    # No root account without a password is left behind (a classic of hand-made MariaDB images).
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host="127.0.0.1", port=port, user="root", password="")


def test_mariadb_without_root_password_says_so(run_container, require_image):
    container = run_container(require_image("rollcall/mariadb:10.11"), environment={"MARIADB_DATABASE": "x"})
    code, output = wait_exit(container)
    assert code == 1
    assert "MARIADB_ROOT_PASSWORD is not set" in output


def test_host_image_has_what_ansible_and_community_docker_need(run_container, require_image):
    container = run_container(require_image("rollcall/host:bookworm"),
                              command=["python3", "-c", "import docker, requests, yaml; print('ok')"])
    assert wait_exit(container) == (0, "ok\n")


def test_build_cache_keeps_an_unchanged_image(docker_client):
    before = docker_client.images.get("rollcall/postgres:15").id
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "images", "build.py"), "postgres"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "image: rollcall/postgres:15 up to date"
    assert docker_client.images.get("rollcall/postgres:15").id == before
    check = subprocess.run([sys.executable, os.path.join(ROOT, "images", "build.py"), "--check", "nonsense"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 2 and "unknown image(s) nonsense" in check.stderr
