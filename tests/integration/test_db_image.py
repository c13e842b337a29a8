"""The database engine's minor update (issue 13 item 5) on this machine's engine through real ansible-playbook, on
the PostgreSQL stack of test_release_sequence.py (test_image_refresh.py calls these functions; a stack of
its own would double the cost): the patching role's database image tasks refresh rollcall/postgres:15 with its base's
updates and recreate the database once on it (same volume), after a verified backup, with the data checked (engine
version, row counts, the app's /health/ready); a plain deploy keeps that build; a database image that never becomes
healthy is put back to the image that ran before, is removed, and the run stops naming the host."""

import contextlib
import io
import json
import os
import subprocess

import docker
from conftest import health_test
from patching_steps import images_built, inspect, steps_playbook
from test_deploy import DB_PASSWORD, failures, playbook

# The patching role's database part alone: the plan of the database image, then the update.
DB_PLAYBOOK = steps_playbook('Update the database engine like patching does', 'db', [
    ('Which images have a base with updates', 'images_plan.yml'),
    ('Update the database engine', 'db_image.yml'),
])

# The recreate step alone on an image given by the test (one that never becomes healthy).
RECREATE_PLAYBOOK = steps_playbook('Recreate the database on a given image like patching does', 'db', [
    ('Recreate the database', 'db_recreate.yml'),
])

BROKEN = "rollcall/postgres:rc-it-broken"



def psql(project, sql):
    return subprocess.run(["docker", "exec", "-e", "PGPASSWORD=" + DB_PASSWORD, project + "-db", "psql", "-h",
                           "127.0.0.1", "-U", "sms", "-d", "sms", "-Atc", sql], capture_output=True, text=True,
                          check=True).stdout.strip()


def outputs(tmp_path):
    return "-e", json.dumps({"rollcall_outputs": {"host": "localhost", "report_dir": str(tmp_path / "reports")}})


def results(report, name):
    """localhost's results of the tasks whose name ends with ``name``, in order (the JSON callback's report)."""
    return [t["hosts"]["localhost"] for play in report["plays"] for t in play["tasks"]
            if t["task"]["name"].endswith(name)]


def update_database(tmp_path, inventory, project, leftovers):
    """The update, forced (whether or not Debian published updates since the image was built). Returns its tag."""
    old_id = inspect(project + "-db", "{{.Image}}")
    assert inspect("rollcall/postgres:15", "{{.Id}}") == old_id
    students = psql(project, "SELECT count(*) FROM students")
    path = tmp_path / "db_image.yml"
    path.write_text(DB_PLAYBOOK)
    args = ("-e", "rollcall_patching_images_force=true", "-e", '{"rollcall_patching_images_which": ["db"]}',
            *outputs(tmp_path))
    # Check mode: the decision is printed, nothing is built or restarted.
    proc, report = playbook(inventory, str(path), "--check", *args)
    assert proc.returncode == 0, failures(report)
    said = [result["msg"] for result in results(report, "Say what the database update does")]
    assert said and "Database on localhost: refresh" in said[0] and "would be rebuilt" in said[0], said
    assert inspect(project + "-db", "{{.Image}}") == old_id
    # Nothing built: the build task was skipped. (Not "no rollcall/postgres:15-p* image exists": one Docker engine
    # serves every run on a machine, and another run's update may have built one meanwhile.)
    built = results(report, "Build the refreshed database image")
    assert built and all(result.get("skipped") for result in built), built
    with images_built("rollcall/postgres:15-p*", leftovers):
        proc, report = playbook(inventory, str(path), *args)
    refresh = results(report, "Build the refreshed database image")
    tag = (refresh[0].get("refreshed") or {}).get("image") if refresh else None
    assert proc.returncode == 0, failures(report)
    assert tag in leftovers, (tag, leftovers)
    assert DB_PASSWORD not in proc.stdout and DB_PASSWORD not in proc.stderr
    assert tag.startswith("rollcall/postgres:15-p"), tag
    # Recreated once on the refreshed image, on the same volume; the data checks passed and are recorded.
    assert inspect(project + "-db", "{{.Image}}") == inspect(tag, "{{.Id}}") != old_id
    assert inspect(project + "-db", "{{range .Mounts}}{{.Name}}{{end}}") == project + "-dbdata"
    assert psql(project, "SELECT count(*) FROM students") == students
    with open(os.path.join(tmp_path, "state", project, "database-image.json")) as handle:
        record = json.load(handle)
    assert record["image"] == tag and record["previous"] == "rollcall/postgres:15", record
    assert record["version_before"].startswith("15.") and record["version_after"].startswith("15."), record
    audit = (tmp_path / "state" / project / "audit.jsonl").read_text()
    assert '"patching_db_image"' in audit and "same row counts, the app is ready" in audit
    return tag


def assert_database_kept(project, tag):
    """After a plain deploy: the database still runs the refreshed build (not recreated on rollcall/postgres:15)."""
    assert inspect(project + "-db", "{{.Image}}") == inspect(tag, "{{.Id}}")


def failed_update_restores(tmp_path, inventory, project, tag):
    """An image that never becomes healthy: the database is put back on the image it ran (tag) and the run stops
    naming the host; the broken image is removed; the rows are all there."""
    students = psql(project, "SELECT count(*) FROM students")
    docker_client = docker.from_env(timeout=300)
    dockerfile = "FROM %s\nHEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD false\n" % tag
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=BROKEN, rm=True)
    try:
        path = tmp_path / "db_recreate.yml"
        path.write_text(RECREATE_PLAYBOOK)
        proc, report = playbook(inventory, str(path), "-e", "patching_db_old_image=" + tag,
                                "-e", "patching_db_new_image=" + BROKEN, "-e", "rollcall_patching_db_health_timeout=8",
                                *outputs(tmp_path))
        assert proc.returncode != 0
        messages = [m for _, m in failures(report)]
        assert any(m.startswith("Patching failed on localhost at the database update (recreate:")
                   and "recreated on %s again" % tag in m for m in messages), messages
        assert inspect(project + "-db", "{{.Image}}") == inspect(tag, "{{.Id}}")
        code, said = health_test(docker_client.containers.get(project + "-db"))
        assert code == 0, "the database put back on %s passes its health test: %s" % (tag, said)
        assert psql(project, "SELECT count(*) FROM students") == students
        assert inspect(BROKEN, "{{.Id}}") is None, "the failed image is removed"
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(BROKEN)
        docker_client.close()
