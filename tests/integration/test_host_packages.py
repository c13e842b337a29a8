"""Packages our roles install on a managed host (roles/host_packages), run through Mitogen on a fresh Debian
container (the docker connection): sshfs on a host whose apt package lists are missing (a fresh cloud image), and
the patching plan in check mode on a host without apt's Python bindings (python3-apt). Both need Debian's mirror, as
a real host does."""

import os
import subprocess

from test_deploy import BIN, ROOT

SSHFS = """- hosts: all
  gather_facts: false
  tasks:
    - name: The way roles/uploads_share and roles/backup take to sshfs
      ansible.builtin.include_role:
        name: rollcall.ops.host_packages
      vars:
        host_packages_name: sshfs
        host_packages_creates: /usr/bin/sshfs
"""

PLAN = """- hosts: all
  gather_facts: false
  vars:
    rollcall_patching_images: false
  tasks:
    - name: The patching plan
      ansible.builtin.include_role:
        name: rollcall.ops.patching
        tasks_from: plan
"""

BINDINGS = "/usr/lib/python3/dist-packages/apt/__init__.py"


def run(tmp_path, host, text, *extra):
    playbook = tmp_path / ("p%d.yml" % len(os.listdir(tmp_path)))
    playbook.write_text(text)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", host + ",", "-c", "docker",
                           "-e", "ansible_python_interpreter=/usr/bin/python3", str(playbook), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


def recap(proc):
    line = [line for line in proc.stdout.splitlines() if "changed=" in line][-1]
    return {key: int(value) for key, value in (item.split("=") for item in line.split(":", 1)[1].split())}


def exists(container, path):
    return container.exec_run(["test", "-e", path]).exit_code == 0


def test_sshfs_on_a_host_without_package_lists_then_nothing_to_do(tmp_path, run_container, require_image):
    host = run_container(require_image("rollcall/host:bookworm"), command="sleep infinity")
    host.exec_run(["sh", "-c", "rm -rf /var/lib/apt/lists/*"])
    assert not exists(host, "/usr/bin/sshfs")

    # Check mode: says it would install, installs nothing, leaves the package lists alone.
    proc = run(tmp_path, host.name, SSHFS, "--check")
    assert proc.returncode == 0 and recap(proc)["changed"] == 1, proc.stdout[-3000:]
    assert not exists(host, "/usr/bin/sshfs")
    assert host.exec_run(["sh", "-c", "ls /var/lib/apt/lists | wc -l"]).output.strip() == b"0", "lists refreshed"

    proc = run(tmp_path, host.name, SSHFS)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Refresh the package lists" in proc.stdout
    assert recap(proc)["changed"] == 1 and exists(host, "/usr/bin/sshfs")

    proc = run(tmp_path, host.name, SSHFS)
    assert proc.returncode == 0 and recap(proc)["changed"] == 0, proc.stdout[-3000:]


def test_patching_plan_in_check_mode_without_apt_bindings_installs_nothing(tmp_path, run_container, require_image):
    host = run_container(require_image("rollcall/host:bookworm"), command="sleep infinity")
    assert host.exec_run(["dpkg", "-r", "python3-apt"]).exit_code == 0
    assert not exists(host, BINDINGS)

    proc = run(tmp_path, host.name, PLAN, "--check")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert not exists(host, BINDINGS), "check mode installed nothing"
    assert recap(proc)["changed"] == 1, "check mode says the bindings would be installed: %s" % proc.stdout[-3000:]

    proc = run(tmp_path, host.name, PLAN)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert exists(host, BINDINGS), "a real run installs the bindings the upgrade's apt module needs"
