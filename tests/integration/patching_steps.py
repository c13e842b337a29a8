"""Shared by the image-refresh tests (test_image_refresh.py, test_db_image.py, test_proxy_image.py): a playbook that
runs some of roles/patching's task files alone, as patching.yml does (the host's report entry started first), and
`docker inspect -f`."""

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
