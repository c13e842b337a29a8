"""Rollcall's playbooks run the way AWX runs a job: ansible-runner with process isolation in our execution
environment (rollcall/ee, images/ee/), against a throw-away stack on this machine's Docker engine.

Each job gets a private data dir laid out as AWX lays it out (awx/main/tasks/jobs.py): `project/` is a copy of
the repository's files as a clone has them (tracked and not ignored: no .collections, .venv, .secrets),
`inventory/hosts` an executable script printing the inventory's JSON, `env/extravars` the survey answers and
AWX's meta variables in AWX's `!unsafe` format, `env/envvars` AWX's environment (ANSIBLE_COLLECTIONS_PATH with
/runner/requirements_collections first, ...), `env/cmdline` `-u root`. The job runs with
`ansible-runner run --process-isolation --process-isolation-executable docker --container-image rollcall/ee:...`
with AWX's container option `--user=root`. The jobs reach the stack as AWX jobs with a local connection on the
Docker host would: the engine's socket is mounted, the EE shares the host's network (the app port on
127.0.0.1), and the state, backup and report directories are mounted at the same paths, as they live on the
managed host across jobs.

One stack (project rc-w-awx) is shared by the module's tests and removed at the end.
"""

import concurrent.futures
import configparser
import contextlib
import glob
import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import urllib.request
import uuid

import docker
import docker.errors
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
EE_DIR = os.path.join(ROOT, "images", "ee")
EE_IMAGE = "rollcall/ee:2.19"
PROJECT = "rc-w-awx"
PORT = 18650
SECRET = "awx-secret-key-never-printed-0123456789abcdef-0123"
DB_PASSWORD = "awx-db-password-never-printed-42"
BACKUP_KEY = "cd" * 32
CONTAINER_PREFIX = "rc-w-awx-job-"
JOB_TIMEOUT = 420

# What AWX puts into every job's environment (awx/main/tasks/jobs.py build_env and settings' ANSIBLE_*).
AWX_ENV = {
    "ANSIBLE_FORCE_COLOR": "True",
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
    "ANSIBLE_RETRY_FILES_ENABLED": "False",
    "ANSIBLE_SSH_CONTROL_PATH_DIR": "/runner/cp",
    "AWX_HOST": "https://awx.example.invalid",
    "MAX_EVENT_RES": "700000",
}


class Unsafe(str):
    """A string AWX writes as `!unsafe '...'` (survey answers, credential-injected extra vars)."""


class AwxDumper(yaml.SafeDumper):
    pass


AwxDumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value), style="'"))


def unsafe_strings(values):
    return {key: Unsafe(value) if isinstance(value, str) else value for key, value in values.items()}


def project_files():
    """The repository's files as a clone holds them: tracked or new, never ignored (git ls-files)."""
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout
    return sorted({name for name in out.decode().split("\0") if name})


def copy_project(dest):
    """Copy the working tree's files (symlinks kept as links, as git checks them out) to dest."""
    for relpath in project_files():
        source = os.path.join(ROOT, relpath)
        if not os.path.lexists(source):
            continue  # deleted in the working tree, not yet in the index
        target = os.path.join(dest, relpath)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(source):
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)


def awx_collections_path(project_dir):
    """ANSIBLE_COLLECTIONS_PATH as AWX builds it: requirements_collections, the project's ansible.cfg setting
    (as written there), then Ansible's defaults."""
    paths = ["~/.ansible/collections", "/usr/share/ansible/collections"]
    config = configparser.ConfigParser()
    config.read(os.path.join(project_dir, "ansible.cfg"))
    for key in ("collections_path", "collections_paths"):
        value = config.get("defaults", key, fallback=None)
        if value:
            paths = [value] + [p for p in paths if p not in value.split(":")]
    return ":".join(["/runner/requirements_collections"] + paths)


def awx_roles_path(project_dir):
    paths = ["~/.ansible/roles", "/usr/share/ansible/roles", "/etc/ansible/roles"]
    config = configparser.ConfigParser()
    config.read(os.path.join(project_dir, "ansible.cfg"))
    value = config.get("defaults", "roles_path", fallback=None)
    if value:
        paths = [value] + paths
    return ":".join(["/runner/requirements_roles"] + paths)


def inventory_script(hostvars_all):
    """AWX's inventory: an executable Python script that prints the inventory's JSON."""
    data = {
        "all": {"children": ["app", "db", "ungrouped"], "vars": hostvars_all},
        "app": {"hosts": ["localhost"]},
        "db": {"hosts": ["localhost"]},
        "_meta": {"hostvars": {"localhost": {"remote_tower_enabled": "true", "remote_tower_id": 1}}},
    }
    return "#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(data)


class Job:
    """One finished job: its status, return code, events and stdout (from the runner's artifacts)."""

    def __init__(self, name, proc, artifacts, job_id):
        self.name = name
        self.extravars_job_id = job_id
        self.proc = proc
        self.artifacts = artifacts
        self.status = self.read("status")
        rc = self.read("rc")
        self.rc = int(rc) if rc.strip().lstrip("-").isdigit() else None
        self.stdout = self.read("stdout")
        self.events = []
        for path in sorted(glob.glob(os.path.join(artifacts, "job_events", "*.json")),
                           key=lambda p: int(os.path.basename(p).split("-", 1)[0])):
            with open(path, encoding="utf-8") as handle:
                self.events.append(json.load(handle))

    def read(self, name):
        path = os.path.join(self.artifacts, name)
        if not os.path.exists(path):
            return ""
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def failures(self):
        found = []
        for event in self.events:
            if event.get("event") in ("runner_on_failed", "runner_on_unreachable"):
                data = event.get("event_data", {})
                if not data.get("ignore_errors"):
                    found.append((data.get("task"), (data.get("res") or {}).get("msg")))
        return found

    def stats(self):
        for event in self.events:
            if event.get("event") == "playbook_on_stats":
                return event["event_data"]
        return {}

    def result(self):
        """What the job's set_stats told AWX (roles/job_result): AWX shows the stats event's artifact_data."""
        return (self.stats().get("artifact_data") or {}).get("rollcall_result", {})

    def assert_reported(self, **expected):
        """The job's result as AWX shows it: status ok, AWX's user and job id as the actor, and `expected`."""
        result = self.result()
        job_id = self.extravars_job_id
        assert result.get("status") == "ok" and result.get("awx_job_id") == job_id, result
        assert result.get("actor") == "awx-scheduler@awx job %d" % job_id, result
        assert {key: result.get(key) for key in expected} == expected, result

    def explain(self):
        return "%s: status=%s rc=%s failures=%s\n--- stdout (tail)\n%s\n--- runner stderr (tail)\n%s" % (
            self.name, self.status, self.rc, self.failures(), self.stdout[-3000:], self.proc.stderr[-2000:])

    def assert_successful(self):
        assert self.status == "successful" and self.rc == 0, self.explain()


class AwxJobs:
    """Runs playbooks as AWX jobs: a fresh private data dir each, the shared dirs mounted at the same paths."""

    def __init__(self, base, hostvars, mounts):
        self.base = base
        self.hostvars = hostvars
        self.mounts = mounts
        self.ids = itertools.count(9001)  # AWX job ids; next() is safe across the syntax-check threads

    def run(self, playbook, survey=None, cmdline=("-u", "root")):
        job_id = next(self.ids)
        ident = uuid.uuid4().hex[:12]
        pdd = os.path.join(self.base, "job_%d_%s" % (job_id, ident))
        for sub in ("project", "inventory", "env"):
            os.makedirs(os.path.join(pdd, sub))
        os.chmod(pdd, stat.S_IRWXU)
        project = os.path.join(pdd, "project")
        copy_project(project)
        os.mkdir(os.path.join(pdd, "cp"), 0o700)
        hosts = os.path.join(pdd, "inventory", "hosts")
        with open(hosts, "w", encoding="utf-8") as handle:
            handle.write(inventory_script(self.hostvars))
        os.chmod(hosts, stat.S_IRUSR | stat.S_IWUSR | stat.S_IXUSR)
        extravars = {
            "awx_job_id": job_id, "tower_job_id": job_id, "awx_job_launch_type": "scheduled",
            "awx_job_template_name": "Rollcall %s" % playbook, "awx_user_name": "awx-scheduler",
            "awx_project_revision": "0" * 40, "awx_inventory_name": "Rollcall", "awx_execution_node": "awx-ee",
        }
        extravars = unsafe_strings(dict(extravars, **(survey or {})))  # ids stay integers, as AWX writes them
        self.write(pdd, "env/extravars", yaml.dump(extravars, Dumper=AwxDumper, default_flow_style=False))
        envvars = dict(AWX_ENV, JOB_ID=str(job_id), INVENTORY_ID="1", PROJECT_REVISION="0" * 40,
                       AWX_PRIVATE_DATA_DIR="/runner",
                       ANSIBLE_COLLECTIONS_PATH=awx_collections_path(project),
                       ANSIBLE_ROLES_PATH=awx_roles_path(project))
        self.write(pdd, "env/envvars", yaml.safe_dump(envvars))
        self.write(pdd, "env/cmdline", subprocess.list2cmdline(list(cmdline)))
        self.write(pdd, "env/settings", yaml.safe_dump({"suppress_ansible_output": True}))
        argv = [os.path.join(BIN, "ansible-runner"), "run", pdd, "-p", "playbooks/%s" % playbook, "--ident", ident,
                "--process-isolation", "--process-isolation-executable", "docker", "--container-image", EE_IMAGE,
                "--container-option=--user=root", "--container-option=--network=host",
                "--container-option=--name=%s%s" % (CONTAINER_PREFIX, ident)]
        for mount in self.mounts:
            argv += ["--container-volume-mount", mount]
        env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
        env["PATH"] = BIN + os.pathsep + os.environ["PATH"]
        try:
            proc = subprocess.run(argv, cwd=self.base, env=env, capture_output=True, text=True,
                                  timeout=JOB_TIMEOUT, check=False)
        finally:
            remove_containers(CONTAINER_PREFIX + ident)
        return Job(playbook, proc, os.path.join(pdd, "artifacts", ident), job_id)

    @staticmethod
    def write(pdd, relpath, text):
        path = os.path.join(pdd, relpath)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def remove_containers(prefix):
    client = docker.from_env(timeout=60)
    try:
        for container in client.containers.list(all=True, filters={"name": prefix}):
            if container.name.startswith(prefix):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True, v=True)
    finally:
        client.close()


def remove_stack():
    """Whatever of the throw-away stack is left: containers, then volumes and networks named rc-w-awx-*."""
    client = docker.from_env(timeout=60)
    try:
        for container in client.containers.list(all=True, filters={"name": PROJECT}):
            if container.name.startswith(PROJECT + "-"):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True, v=True)
        for volume in client.volumes.list(filters={"name": PROJECT}):
            if volume.name.startswith(PROJECT + "-"):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    volume.remove(force=True)
        for network in client.networks.list(names=[PROJECT]):
            if network.name.startswith(PROJECT):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    network.remove()
    finally:
        client.close()


def get_json(path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (PORT, path), timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def secrets_absent(*texts):
    for text in texts:
        for secret in (SECRET, DB_PASSWORD, BACKUP_KEY):
            assert secret not in text


@pytest.fixture(scope="module")
def ee(require_image):
    return require_image(EE_IMAGE)


@pytest.fixture(scope="module")
def jobs(ee, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("awx"))
    shared = os.path.join(base, "host")  # what lives on the managed host across jobs
    dirs = {name: os.path.join(shared, name) for name in ("state", "backups", "reports", "incidents")}
    for path in dirs.values():
        os.makedirs(path)
    hostvars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "/usr/bin/python3",
        "rollcall_project": PROJECT,
        "rollcall_app_port": PORT,
        "rollcall_db_engine": "postgresql",
        "rollcall_secret_key": SECRET,
        "rollcall_db_password": DB_PASSWORD,
        "rollcall_backup_key": BACKUP_KEY,
        "rollcall_seed_students": 7,
        "rollcall_environment": "test",
        "rollcall_state_dir": dirs["state"],
        "rollcall_backup_dir": dirs["backups"],
        "rollcall_report_dir": dirs["reports"],
        "rollcall_incident_dir": dirs["incidents"],
        "rollcall_drain_seconds": 1,
    }
    mounts = ["/var/run/docker.sock:/var/run/docker.sock", "%s:%s" % (shared, shared)]
    return AwxJobs(base, hostvars, mounts), dirs


@pytest.fixture(scope="module")
def stack(jobs):
    """The throw-away stack, deployed (1.0.0) by an AWX-style job; removed at the end of the module."""
    runner, dirs = jobs
    remove_stack()
    try:
        job = runner.run("deploy.yml", survey={"rollcall_app_version": "1.0.0"})
        yield runner, dirs, job
    finally:
        remove_stack()


# ------------------------------------------------------------------ the image and its definition

def ee_run(*argv, user=None):
    """A command in the EE; with user, through the image's entrypoint (as AWX starts it)."""
    options = ["--user", user] if user else ["--entrypoint", argv[0]]
    command = list(argv) if user else list(argv[1:])
    return subprocess.run(["docker", "run", "--rm", "--name", "rc-w-awx-probe-%s" % uuid.uuid4().hex[:8], *options,
                           EE_IMAGE, *command], capture_output=True, text=True, timeout=120, check=False)


def pins(path):
    found = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                found[name.lower().replace("_", "-")] = version
    return found


def test_the_ee_holds_what_execution_environment_yml_declares(ee):
    with open(os.path.join(EE_DIR, "execution-environment.yml"), encoding="utf-8") as handle:
        definition = yaml.safe_load(handle)
    assert definition["version"] == 3
    deps = definition["dependencies"]
    wanted = pins(os.path.join(EE_DIR, deps["python"]))
    for key in ("ansible_core", "ansible_runner"):
        name, version = deps[key]["package_pip"].split("==")
        wanted[name] = version
    repo_pins = pins(os.path.join(ROOT, "requirements.txt"))
    assert {name: repo_pins.get(name) for name in wanted} == wanted, "EE pins differ from requirements.txt"

    proc = ee_run("python3", "-m", "pip", "list", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    installed = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(proc.stdout)}
    assert {name: installed.get(name) for name in wanted} == wanted

    with open(os.path.join(EE_DIR, deps["galaxy"]), encoding="utf-8") as handle:
        ee_collections = {c["name"]: str(c["version"]) for c in yaml.safe_load(handle)["collections"]}
    with open(os.path.join(ROOT, "requirements.yml"), encoding="utf-8") as handle:
        repo_collections = {c["name"]: str(c["version"]) for c in yaml.safe_load(handle)["collections"]}
    assert {name: ee_collections.get(name) for name in repo_collections} == repo_collections, (
        "images/ee/requirements.yml must hold every collection of requirements.yml at its version")
    proc = ee_run("ansible-galaxy", "collection", "list", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    listed = {}
    for collections in json.loads(proc.stdout).values():
        listed.update({name: info["version"] for name, info in collections.items()})
    assert {name: listed.get(name) for name in ee_collections} == ee_collections
    assert "rollcall.ops" not in listed, "the EE must not ship a copy of rollcall.ops: the project brings it"

    # The libraries our modules import, an SSH client, and the runner user AWX's jobs expect.
    proc = ee_run("sh", "-c", "python3 -c 'import docker, psycopg2, pymysql, pymssql, cryptography, requests' "
                              "&& ssh -V && command -v ansible-playbook ansible-runner ssh-agent git && id -u")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "1000" and "OpenSSH" in proc.stderr
    # Any uid (OpenShift) gets a passwd entry with HOME=/runner from the entrypoint.
    proc = ee_run("sh", "-c", "whoami && echo $HOME", user="12345:0")
    assert proc.returncode == 0 and proc.stdout.split() == ["runner", "/runner"], proc.stdout + proc.stderr


def test_ansible_builder_accepts_the_definition(tmp_path):
    proc = subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "-f",
                           os.path.join(EE_DIR, "execution-environment.yml"), "-c", str(tmp_path / "ctx"),
                           "--output-filename", "Containerfile"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (tmp_path / "ctx" / "Containerfile").read_text()
    assert "ansible-core==2.19.14" in containerfile and "ansible-runner==2.4.3" in containerfile
    assert "ansible-galaxy collection install" in containerfile
    built = (tmp_path / "ctx" / "_build")
    assert "openssh" in (built / "bindep.txt").read_text()
    assert "psycopg2-binary==" in (built / "requirements.txt").read_text()


# ------------------------------------------------------------------ every playbook resolves in the EE

PLAYBOOKS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml")))


def test_the_job_project_is_a_bare_checkout(ee, tmp_path):
    copy_project(str(tmp_path))
    for absent in (".collections", ".venv", ".secrets", ".backups"):
        assert not os.path.exists(tmp_path / absent), absent
    link = tmp_path / "playbooks" / "collections" / "ansible_collections" / "rollcall" / "ops"
    assert os.path.islink(link) and os.path.isfile(link / "galaxy.yml"), "the committed link must resolve"


def test_every_playbook_passes_syntax_check_in_the_ee(jobs):
    """A job of its own for each playbook (ansible-runner runs one playbook a job), three at a time."""
    runner, _ = jobs
    assert PLAYBOOKS and "deploy.yml" in PLAYBOOKS
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda name: runner.run(name, cmdline=("-u", "root", "--syntax-check")), PLAYBOOKS))
    failed = [job.explain() for job in results if not (job.status == "successful" and job.rc == 0)]
    assert not failed, "--syntax-check fails in the EE:\n\n" + "\n\n".join(failed)
    for job in results:
        assert "playbook: playbooks/%s" % job.name in job.stdout, job.explain()


# ------------------------------------------------------------------ jobs against the throw-away stack

def test_deploy_job_brings_up_a_healthy_stack(stack):
    _, _, job = stack
    job.assert_successful()
    assert job.stats().get("changed", {}).get("localhost", 0) > 0, job.stats()
    job.assert_reported(playbook="deploy", version="1.0.0")
    health = get_json("/health")
    assert health["status"] == "healthy" and health["version"] == "1.0.0", health
    assert get_json("/api/v1/students")["total"] == 7
    secrets_absent(job.stdout)


def test_backup_job_then_verify_backup_job(stack):
    runner, dirs, _ = stack
    before = set(glob.glob(os.path.join(dirs["backups"], "**", "*.manifest.json"), recursive=True))
    job = runner.run("backup.yml")
    job.assert_successful()
    job.assert_reported(playbook="backup")
    made = set(glob.glob(os.path.join(dirs["backups"], "**", "*.manifest.json"), recursive=True)) - before
    assert made, "the backup job left no new manifest under %s" % dirs["backups"]
    secrets_absent(job.stdout)

    job = runner.run("verify_backup.yml", survey={"rollcall_backup_verify_level": "restore"})
    job.assert_successful()
    job.assert_reported(playbook="verify_backup")
    assert not job.failures()
    secrets_absent(job.stdout)


def test_health_job_reports_on_the_managed_host(stack):
    runner, dirs, _ = stack
    job = runner.run("health.yml")
    job.assert_successful()
    job.assert_reported(playbook="health", failing=[])
    report = job.result().get("report", "")
    assert report.startswith(dirs["reports"] + os.sep) and os.path.isfile(report), (report, dirs["reports"])
    with open(report[: -len(".html")] + ".json", encoding="utf-8") as handle:
        document = json.load(handle)
    assert document["status"] in ("ok", "warning"), document
    secrets_absent(job.stdout)


def test_deploy_of_a_new_release_then_rollback_jobs(stack):
    runner, dirs, _ = stack
    job = runner.run("deploy.yml", survey={"rollcall_app_version": "1.1.0"})
    job.assert_successful()
    job.assert_reported(playbook="deploy", version="1.1.0")
    assert get_json("/health")["version"] == "1.1.0"

    # A blank optional survey answer (AWX sends "") means "not given": back to the release live before the last deploy.
    job = runner.run("rollback.yml", survey={"to": ""})
    job.assert_successful()
    job.assert_reported(playbook="rollback", version="1.0.0")
    health = get_json("/health")
    assert health["version"] == "1.0.0" and health["status"] == "healthy", health
    assert get_json("/api/v1/students")["total"] == 7
    audits = glob.glob(os.path.join(dirs["state"], "**", "audit.jsonl"), recursive=True)
    assert audits, "the release history must live in the state dir on the managed host: %s" % dirs["state"]
    with open(audits[0], encoding="utf-8") as handle:
        actors = {json.loads(line).get("actor") for line in handle if line.strip()}
    assert actors and all("awx-scheduler" in str(actor) for actor in actors), actors


def test_teardown_job_with_survey_answers_removes_the_stack(stack):
    """The survey answers arrive as AWX sends them: strings, `!unsafe 'yes'` and `!unsafe 'true'`."""
    runner, dirs, _ = stack
    job = runner.run("teardown.yml", survey={"confirm": "yes", "teardown_volumes": "true"})
    job.assert_successful()
    job.assert_reported(playbook="teardown", volumes_removed=True)
    client = docker.from_env(timeout=60)
    try:
        left = [c.name for c in client.containers.list(all=True, filters={"name": PROJECT})
                if c.name.startswith(PROJECT + "-")]
        volumes = [v.name for v in client.volumes.list(filters={"name": PROJECT}) if v.name.startswith(PROJECT + "-")]
    finally:
        client.close()
    assert not left and not volumes, (left, volumes)
