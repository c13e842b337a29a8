"""roles/patching/tasks/engine.yml (issue 13 item 4) against this machine's Docker engine, without upgrading it:
a plan that names docker.io makes the pre-check read the restart policy of each running container of the
project (found by its rollcall.project label); one that would not come back (policy no) stops the run naming it;
with unless-stopped the pre-check passes, and after a stand-in "engine restart" (the container stopped and started
again 3 s later) the step after the packages waits until it runs again and notes "engine upgraded, 1 container(s)
back in N s" for the report. The engine itself is never upgraded or restarted here (docs/patching.md says so).
Cost: one small container and three short ansible-playbook runs on localhost (about 20 s)."""

import json
import os
import subprocess
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
ENGINE = os.path.join(ROOT, "roles", "patching", "tasks", "engine.yml")

PLAYBOOK = """
- name: The engine steps of roles/patching
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    patching_plan: {changes: [{package: curl}, {package: docker.io}]}
    patching_precheck: {checks: [{check: health, ok: true}]}
    patching_is_db: false
    patching_project: %(project)s
    patching_engine_packages: [docker.io, containerd]
    patching_engine_names: []
    patching_engine_timeout: 30
    patching_docker_host: unix:///var/run/docker.sock
    patching_host: {host: localhost}
  tasks:
    - name: Pre-check
      ansible.builtin.include_tasks: %(engine)s
      vars: {patching_engine_step: precheck}
    - name: Before the packages
      ansible.builtin.include_tasks: %(engine)s
      vars: {patching_engine_step: before}
    - name: Stand-in engine restart (the container comes back 3 s later)
      ansible.builtin.shell: >-
        docker stop -t 0 %(container)s >/dev/null && { (sleep 3; docker start %(container)s) >/dev/null 2>&1 & }
      changed_when: true
    - name: After the packages
      ansible.builtin.include_tasks: %(engine)s
      vars: {patching_engine_step: after}
    - name: Show the engine entry
      ansible.builtin.debug:
        var: patching_host.engine
"""


def play(tmp_path, project, container):
    path = tmp_path / ("engine-%s.yml" % uuid.uuid4().hex[:6])
    path.write_text(PLAYBOOK % {"project": project, "engine": ENGINE, "container": container})
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-e",
                           "ansible_python_interpreter=" + sys.executable, str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    doc = json.loads(proc.stdout)
    results = {}
    for task in doc["plays"][0]["tasks"]:
        results.setdefault(task["task"]["name"], []).append(task["hosts"].get("localhost", {}))
    return proc.returncode, results


def test_the_engine_steps_stop_on_a_container_that_would_not_come_back_and_wait_for_the_others(
        tmp_path, run_container, require_image):
    image = require_image("rollcall/host:bookworm")
    project = "it-eng-%s" % uuid.uuid4().hex[:6]
    stays = run_container(image, command=["sleep", "infinity"], labels={"rollcall.project": project},
                          restart_policy={"Name": "no"})

    rc, results = play(tmp_path, project, stays.name)
    stop = results["Stop when a container would not come back after the engine restarts"][0]
    assert rc != 0 and stop.get("failed"), results.keys()
    assert "%s (restart policy no): set it to unless-stopped" % stays.name in stop["msg"]
    assert "docker.io" in stop["msg"] and "Nothing was changed" in stop["msg"]

    stays.remove(force=True, v=True)
    back = run_container(image, command=["sleep", "infinity"], labels={"rollcall.project": project},
                         restart_policy={"Name": "unless-stopped"})
    rc, results = play(tmp_path, project, back.name)
    assert rc == 0, {k: v for k, v in results.items() if any(r.get("failed") for r in v)}
    engine = results["Show the engine entry"][0]["patching_host.engine"]
    assert engine["upgraded"] and engine["packages"] == ["docker.io"] and engine["missing"] == []
    assert engine["containers"] == 1 and engine["back_s"] >= 3
    assert engine["note"].startswith("engine upgraded, 1 container(s) back in ")
    said = results["Say what happens to the Docker engine"][0]["msg"]
    assert "the upgrade changes docker.io" in said and "1 container(s) must come back" in said
