"""Shared by the image-refresh tests (test_image_refresh.py, test_db_image.py, test_proxy_image.py): a playbook that
runs some of roles/patching's task files alone, as patching.yml does (the host's report entry started first),
`docker inspect -f`, and the images a step built."""

import contextlib
import subprocess

import yaml


def steps_playbook(name, hosts, steps):
    """YAML of one play on ``hosts`` including each (task name, roles/patching task file) of ``steps`` in order."""
    return yaml.safe_dump([{
        "name": name, "hosts": hosts, "gather_facts": False,
        "pre_tasks": [{"name": "Start the host's report entry as patching's plan does",
                       "ansible.builtin.set_fact": {
                           "patching_host": {"host": "{{ inventory_hostname }}", "outcome": "unchanged"}}}],
        "tasks": [{"name": title, "ansible.builtin.include_role": {"name": "rollcall.ops.patching",
                                                                    "tasks_from": tasks_from}}
                  for title, tasks_from in steps],
    }], sort_keys=False)


def inspect(ref, fmt):
    proc = subprocess.run(["docker", "inspect", "-f", fmt, ref], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_tags(pattern):
    """The repository:tag names of the images matching ``pattern`` (``rollcall/postgres:15-p*``)."""
    out = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", pattern], capture_output=True,
                         text=True, check=True).stdout
    return set(out.split())


@contextlib.contextmanager
def images_built(pattern, leftovers):
    """The images matching ``pattern`` that appear while the block runs go into ``leftovers`` (which the test removes
    after its teardown), even when the block fails: a playbook stopped by its time-out after the build names no image
    in a result, and its image stayed on the engine (where another run found it)."""
    before = image_tags(pattern)
    try:
        yield
    finally:
        leftovers.extend(sorted(image_tags(pattern) - before - set(leftovers)))
