"""Every community.docker.docker_container task that gives a container settings says how its settings are compared.

Under Mitogen (ansible.cfg's rollcall_linear) one Python per host runs the community.docker modules one after another,
and community.docker keeps each option's comparison mode in module-level objects: a task's `comparisons:
{env: ignore}` (the database container: a password rotation must not recreate it) stayed in force for every later
docker_container task on that host in the run. Found 2026-12-06: after rotate_db_passwords.yml the database
exporter kept the monitor role's old password although the run recreated it "with the new login": its env
difference was ignored, and Prometheus saw the database down (mysql_up 0). So each such task names the modes of the
options that any task changes (env, log_driver, log_options), resetting what an earlier task left."""

import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
LEAKING = {"env", "log_driver", "log_options"}
DEFAULTS = {"env": "allow_more_present", "log_driver": "strict", "log_options": "allow_more_present"}


def tasks_in(node):
    if isinstance(node, list):
        for item in node:
            yield from tasks_in(item)
    elif isinstance(node, dict):
        if "community.docker.docker_container" in node:
            yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            if key in node:
                yield from tasks_in(node[key])


def docker_container_tasks():
    for path in sorted(list(ROOT.glob("roles/*/tasks/*.yml")) + list(ROOT.glob("playbooks/*.yml"))):
        for task in tasks_in(yaml.safe_load(path.read_text()) or []):
            yield "%s: %s" % (path.relative_to(ROOT), task.get("name")), task


TASKS = list(docker_container_tasks())
CASES = [(name, task["community.docker.docker_container"]) for name, task in TASKS]


def test_there_are_tasks_to_look_at():
    assert len(CASES) >= 15, [name for name, _ in CASES]


@pytest.mark.parametrize("name, args", CASES, ids=[name for name, _ in CASES])
def test_a_task_that_gives_settings_names_their_comparison(name, args):
    if args.get("state") == "absent" or args.get("recreate") is True:
        return  # nothing is compared: removed, or always made anew
    if not LEAKING & set(args):
        return  # it gives none of these settings (a restart, a stop)
    comparisons = args.get("comparisons")
    assert comparisons, "%s gives %s but no comparisons: an earlier task's mode would apply" % (
        name, sorted(LEAKING & set(args)))
    if isinstance(comparisons, str):
        # a template (the database and the proxy): its defaults name the three, checked below
        return
    assert set(comparisons) >= LEAKING, (name, comparisons)


@pytest.mark.parametrize("path, variable", [
    ("roles/database/defaults/main.yml", "database_log_comparisons"),
    ("roles/sms_app/defaults/main.yml", "sms_app_proxy_comparisons"),
])
def test_the_templated_comparisons_name_the_log_settings_either_way(path, variable):
    text = yaml.safe_load((ROOT / path).read_text())[variable]
    for mode in ("log_driver", "log_options"):
        assert text.count("'%s'" % mode) == 2, (variable, text)  # set when recreating for them, and when not


@pytest.mark.parametrize("name, task", [(n, t) for n, t in TASKS if "env" in t["community.docker.docker_container"]],
                         ids=[n for n, t in TASKS if "env" in t["community.docker.docker_container"]])
def test_a_task_that_gives_an_environment_prints_none_of_it(name, task):
    """A container's environment holds its passwords (DATABASE_URL, the exporter's DSN, SECRET_KEY): the module's
    result shows it unless the task says no_log (a debugging no_log: false was once committed)."""
    if name in NO_SECRET_IN_ENV:
        return
    assert task.get("no_log") is True, name


# environments that hold no secret, and why
NO_SECRET_IN_ENV = {"roles/sms_app/tasks/proxy.yml: Run the proxy": "ROLLCALL_UPSTREAM, the release's address"}
