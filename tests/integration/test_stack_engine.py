"""A deploy never changes the database engine of a stack that holds data (issue 9, item 3).

Before: `deploy.yml -e rollcall_db_engine=mariadb` on a PostgreSQL stack replaced the database container on the
same data volume and re-seeded demo data. Now the first play refuses, naming what it found, before any change.
"""

import contextlib
import json
import socket
import sys
import urllib.request

import docker.errors
import pytest
import yaml
from modules import run_module
from test_deploy import failures, playbook, teardown, write_inventory

from ansible_collections.rollcall.ops.plugins.module_utils.docker import run_once

PROJECT = "rc-l-eng"
TASK = "Refuse to change the database engine of a stack that holds data, or to deploy on a taken port"
PORT = 18500


def test_a_deploy_with_another_engine_is_refused_before_anything_changes(tmp_path, docker_client):
    inventory = write_inventory(tmp_path, rollcall_project=PROJECT, rollcall_db_engine="sqlite",
                                rollcall_app_port=PORT, rollcall_state_dir=str(tmp_path / "state"))
    (tmp_path / "pg").mkdir()
    other = write_inventory(tmp_path / "pg", rollcall_project=PROJECT, rollcall_db_engine="postgresql",
                            rollcall_app_port=PORT, rollcall_state_dir=str(tmp_path / "state"))
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        proc, report = playbook(other)
        assert proc.returncode != 0, "the deploy with another engine went ahead"
        found = failures(report)
        assert found[0][0] == TASK, found
        assert "already runs sqlite" in found[0][1] and "Nothing was changed" in found[0][1], found
        assert report["stats"]["localhost"]["changed"] == 0
        for getter, name in ((docker_client.containers.get, PROJECT + "-db"),
                             (docker_client.volumes.get, PROJECT + "-dbdata")):
            with pytest.raises(docker.errors.NotFound):
                getter(name)
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % PORT, timeout=5) as answer:
            assert answer.status == 200, "the SQLite stack keeps serving"

        # Another stack on the same port, then on a port a program listens on: refused before anything is made
        # (before, the deploy started the database, then failed on the engine's "address already in use" and
        # left the proxy container created).
        (tmp_path / "other").mkdir()
        cases = (  # (settings, what holds the port, its port as the refusal says it, the setting to change)
            (dict(rollcall_app_port=PORT), "container %s-proxy publishes 127.0.0.1:%d" % (PROJECT, PORT),
             "the app's port 127.0.0.1:%d" % PORT, "rollcall_app_port"),
            (dict(rollcall_app_port=PORT + 1), "another program listens there",
             "the app's port 127.0.0.1:%d" % (PORT + 1), "rollcall_app_port"),
            (dict(rollcall_app_port=PORT + 2, rollcall_db_publish="127.0.0.1", rollcall_db_publish_port=PORT + 1),
             "another program listens there (Address already in use; a database server installed on the host?)",
             "the database's port 127.0.0.1:%d" % (PORT + 1), "rollcall_db_publish_port"))
        for settings, held_by, which, setting in cases:
            crowded = write_inventory(tmp_path / "other", rollcall_project=PROJECT + "2", **settings,
                                      rollcall_db_engine="postgresql", rollcall_state_dir=str(tmp_path / "state2"))
            with socket.socket() as listener:
                listener.bind(("127.0.0.1", PORT + 1))
                listener.listen()
                proc, report = playbook(crowded)
            assert proc.returncode != 0, "the deploy on a taken port went ahead"
            found = failures(report)
            assert found[0][0] == TASK and held_by in found[0][1], found
            assert "Nothing was changed: %s on localhost is taken" % which in found[0][1], found
            assert "-e %s=PORT" % setting in found[0][1], found
            assert report["stats"]["localhost"]["changed"] == 0
            assert not docker_client.containers.list(all=True, filters={"name": PROJECT + "2-"})
            with pytest.raises(docker.errors.NotFound):
                docker_client.volumes.get(PROJECT + "2-dbdata")
        # the stack's own proxy on its port is a re-deploy, not a conflict
        proc, report = playbook(inventory)
        assert proc.returncode == 0 and report["stats"]["localhost"]["changed"] == 0, failures(report)
    finally:
        teardown(inventory)


def test_a_refusal_on_the_db_host_stops_the_app_hosts_too(tmp_path, docker_client):
    """A fleet's check play refused the db host (here its database port taken; a lost data volume likewise) and the
    app hosts went on alone: they made the stack's network, volumes and proxy and failed on "cannot connect to the
    database at db:5432", the refusal far above (seen in bench/fleet.py after a lost volume). Any refusal there
    now stops every host before anything is made."""
    project, port = PROJECT + "-split", PORT + 5
    values = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
              "rollcall_project": project, "rollcall_app_port": port, "rollcall_db_engine": "postgresql",
              "rollcall_secret_key": "split-secret-key-0123456789abcdef-0123456789abcdef",
              "rollcall_db_password": "split-db-password", "rollcall_state_dir": str(tmp_path / "state"),
              "rollcall_db_publish": "127.0.0.1", "rollcall_db_publish_port": port + 1}
    inventory = tmp_path / "split.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"app": {"hosts": {"app1": None}},
                                                              "db": {"hosts": {"db1": None}}}, "vars": values}}))
    try:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port + 1))
            listener.listen()
            proc, report = playbook(str(inventory))
        assert proc.returncode != 0, "the deploy went ahead"
        found = failures(report)
        assert found[0][0] == TASK and "the database's port 127.0.0.1:%d" % (port + 1) in found[0][1], found
        assert all(stats["changed"] == 0 for stats in report["stats"].values()), report["stats"]
        assert [name for name, _ in found] == [TASK], "the app host went on alone: %s" % found
        assert not docker_client.containers.list(all=True, filters={"name": project + "-"})
        assert not docker_client.volumes.list(filters={"name": project + "-"})
        assert not docker_client.networks.list(names=[project + "-net"])
    finally:
        for container in docker_client.containers.list(all=True, filters={"name": project + "-"}):
            container.remove(force=True, v=True)
        for made in docker_client.volumes.list(filters={"name": project + "-"}):
            made.remove(force=True)
        for network in docker_client.networks.list(names=[project + "-net"]):
            network.remove()


@pytest.fixture
def volume(docker_client):
    made = []

    def make(name, labels=None, files=()):
        made.append(docker_client.volumes.create(name, labels=labels or {}))
        if files:
            code, _ = run_once(docker_client, "rollcall/postgres:15", ["/v/" + f for f in files],
                               entrypoint=["touch"], volumes={name: {"bind": "/v", "mode": "rw"}})
            assert code == 0
        return name

    yield make
    for item in made:
        with contextlib.suppress(docker.errors.NotFound):
            item.remove(force=True)


def test_the_engine_is_read_from_a_labelled_or_an_old_unlabelled_volume(volume):
    volume(PROJECT + "2-dbdata", files=["PG_VERSION"])  # made before volumes carried the label
    args = {"project": PROJECT + "2", "peek_image": "rollcall/postgres:15"}
    rc, result, _ = run_module("stack_engine", dict(args, engine="mariadb"), timeout=120)
    assert rc != 0 and "already runs postgresql" in result["msg"], result
    assert result["evidence"] == [{"source": "volume rc-l-eng2-dbdata (its files)", "engine": "postgresql"}]
    rc, result, _ = run_module("stack_engine", dict(args, engine="postgresql"), timeout=120)
    assert rc == 0 and result["engines"] == ["postgresql"] and not result["changed"], result

    volume(PROJECT + "3-dbdata", labels={"rollcall.engine": "mariadb"})
    rc, result, _ = run_module("stack_engine", {"project": PROJECT + "3", "engine": "sqlite"}, timeout=120)
    assert rc != 0 and "already runs mariadb" in result["msg"], result
    rc, result, _ = run_module("stack_engine", {"project": PROJECT + "4", "engine": "sqlite"}, timeout=120)
    assert rc == 0 and result["engines"] == [], "a new stack takes any engine"


def test_a_stack_whose_database_volume_is_gone_is_not_redeployed_empty(tmp_path, docker_client):
    """The database volume lost (`docker volume rm`, a disk replaced) while the release history says the stack
    served: deploy.yml started an empty database, migrated and seeded it, said "healthy" and served it. Now it
    refuses before anything changes; -e rollcall_db_rebuild=true rebuilds it and says to restore, and the restore
    brings the data back. A stack removed on purpose (teardown_volumes, which forgets the history) starts afresh."""
    project, port = PROJECT + "-lost", PORT + 3
    inventory = write_inventory(tmp_path, rollcall_project=project, rollcall_db_engine="postgresql",
                                rollcall_app_port=port, rollcall_state_dir=str(tmp_path / "state"),
                                rollcall_backup_dir=str(tmp_path / "bk"), rollcall_environment="test",
                                rollcall_seed_students=0, rollcall_backup_uploads=False)
    students = "http://127.0.0.1:%d/api/v1/students" % port

    def count():
        with urllib.request.urlopen(students, timeout=10) as answer:  # noqa: S310 - loopback test URL
            return json.loads(answer.read())["total"]

    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        request = urllib.request.Request(students, method="POST", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"student_number": "KEEP-1", "first_name": "Kept",
                                                          "last_name": "Row", "email": "keep-1@example.invalid",
                                                          "grade_level": 3}).encode())
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            assert answer.status == 201
        proc, report = playbook(inventory, "backup.yml")
        assert proc.returncode == 0, failures(report)
        docker_client.containers.get(project + "-db").remove(force=True)
        docker_client.volumes.get(project + "-dbdata").remove()

        proc, report = playbook(inventory)
        assert proc.returncode != 0, "the deploy started an empty database for a stack that has served"
        (task, msg), = failures(report)
        assert task == "Refuse to start an empty database for a stack that has served (its data volume is gone)"
        assert msg.startswith("Nothing was changed: the database volume %s-dbdata does not exist on localhost, but "
                              "this stack has served: 1.0.0 is live on localhost" % project), msg
        assert "playbooks/deploy.yml -e rollcall_db_rebuild=true, then playbooks/restore.yml -e confirm=sms" in msg
        assert report["stats"]["localhost"]["changed"] == 0
        for getter, name in ((docker_client.containers.get, project + "-db"),
                             (docker_client.volumes.get, project + "-dbdata")):
            with pytest.raises(docker.errors.NotFound):
                getter(name)

        # A password rotation would have made the empty database too (the database role makes one where none is).
        proc, report = playbook(inventory, "rotate_db_passwords.yml")
        assert proc.returncode != 0, "the rotation went ahead without a database"
        (task, msg), = failures(report)
        assert task == "Stop when the database is gone" and "Nothing was changed: the database volume" in msg, msg
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(project + "-dbdata")

        proc, report = playbook(inventory, "deploy.yml", "-e", "rollcall_db_rebuild=true")
        assert proc.returncode == 0, failures(report)
        said = [r.get("msg", "") for play in report["plays"] for t in play["tasks"] for r in t["hosts"].values()
                if t["task"]["name"] == "Say that the database was rebuilt empty and what brings its data back"]
        assert said and "rebuilt empty" in said[0] and "playbooks/restore.yml -e confirm=sms" in said[0], said
        assert count() == 0
        proc, report = playbook(inventory, "restore.yml")
        assert proc.returncode == 0, failures(report)
        assert count() == 1, "the restore brought the student back"

        # The uploads volume removed by hand (the app containers first: a volume in use cannot be removed): the
        # deploy brings the app back on a new, empty one, and says so and what brings the files back (it said
        # nothing before); a second deploy has nothing to say.
        for holder in docker_client.containers.list(all=True, filters={"volume": project + "-uploads"}):
            holder.remove(force=True)
        docker_client.volumes.get(project + "-uploads").remove()
        for expected in (1, 0):
            proc, report = playbook(inventory)
            assert proc.returncode == 0, failures(report)
            said = [r.get("msg", "") for play in report["plays"] for t in play["tasks"] for r in t["hosts"].values()
                    if t["task"]["name"] == "Say that the uploads volume was made anew, empty, and what brings the "
                                            "files back" and r.get("msg")]
            assert len(said) == expected, said
        assert said == [] and count() == 1

        playbook(inventory, "teardown.yml", "-e", "teardown_volumes=true", "-e", "confirm=yes")
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)  # removed on purpose: a new stack
        assert count() == 0
    finally:
        teardown(inventory)
