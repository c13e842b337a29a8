"""rollcall.ops.apt_plan (issue 13, the first part of patching) on a real Debian host (a rollcall/host container
reached by the docker connection) with a local apt repository whose packages have real upgrades, built here with
dpkg-deb: a plain one, a security one, one whose new version asks for a reboot, one on the hold list. The plan
says exactly what would change and changes nothing; ansible.builtin.apt applies its targets; the record lists
before/after and the way back; the plan is empty afterwards."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(ROOT, "molecule", "patching"))
import build_repo  # noqa: E402  (the .deb and flat repository builder molecule/patching uses too)

HOST = "rc-p-apt"
PACKAGES = {  # name: (security archive?, postinst of 1.1)
    "rc-tool": (False, ""),
    "rc-sec": (True, ""),
    "rc-reboot": (True, "touch /var/run/reboot-required; echo rc-reboot >> /var/run/reboot-required.pkgs\n"),
    "rc-held": (True, ""),
}


def build(tmp_path, name, version, postinst):
    return build_repo.build(tmp_path, name, version, postinst, "a package with an upgrade (issue 13 tests)")


def sh(*argv):
    result = subprocess.run(["docker", "exec", HOST, *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-1000:] + result.stderr[-1000:]
    return result.stdout


def module(name, args, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCALHOST_WARNING="0")
    proc = subprocess.run([os.path.join(BIN, "ansible"), "all", "-i", HOST + ",", "-c", "community.docker.docker",
                           "-e", "ansible_python_interpreter=/usr/bin/python3", "-m", name, "-a", json.dumps(args),
                           *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][HOST]
    return proc.returncode, result


@pytest.fixture(scope="module")
def host(tmp_path_factory, docker_client, require_image):
    require_image("rollcall/host:bookworm")
    tmp_path = tmp_path_factory.mktemp("apt")
    old, new = [], []
    for name, (_security, postinst) in PACKAGES.items():
        old.append(build(tmp_path, name, "1.0", ""))
        new.append(build(tmp_path, name, "1.1", postinst))
    build_repo.flat_repo(tmp_path / "main", [d for d in new if d.name.startswith("rc-tool_")], "Rollcall", "stable")
    build_repo.flat_repo(tmp_path / "security", [d for d in new if not d.name.startswith("rc-tool_")],
                         "Rollcall-Security", "stable-security")
    subprocess.run(["docker", "rm", "-f", HOST], capture_output=True)
    subprocess.run(["docker", "run", "-d", "--name", HOST, "rollcall/host:bookworm", "sleep", "infinity"], check=True,
                   capture_output=True)
    try:
        for part in ("main", "security"):
            subprocess.run(["docker", "cp", str(tmp_path / part), "%s:/repo-%s" % (HOST, part)], check=True)
        for deb in old:
            subprocess.run(["docker", "cp", str(deb), "%s:/tmp/%s" % (HOST, deb.name)], check=True)
        # ansible.builtin.apt needs python3-apt (a Debian host has it; this image does not): from Debian's mirror,
        # before the sources become the local repository only.
        sh("sh", "-c", "apt-get -q update >/dev/null && apt-get -q install -y --no-install-recommends python3-apt "
                       ">/dev/null")
        sh("sh", "-c", "dpkg -i /tmp/rc-*_1.0_all.deb >/dev/null && rm -f /etc/apt/sources.list.d/* && "
                       "printf 'deb [trusted=yes] file:/repo-main ./\\ndeb [trusted=yes] file:/repo-security ./\\n' "
                       "> /etc/apt/sources.list && apt-get -q update >/dev/null")
        yield HOST
    finally:
        subprocess.run(["docker", "rm", "-f", HOST], capture_output=True)


def versions():
    out = sh("dpkg-query", "-W", "-f", "${Package} ${Version}\n", "rc-tool", "rc-sec", "rc-reboot", "rc-held")
    return dict(line.split() for line in out.splitlines())


def test_plan_apply_record_and_plan_again(host):
    rc, plan = module("rollcall.ops.apt_plan", {"security_only": True, "holds": ["rc-hel*"]})
    assert rc == 0, plan.get("msg")
    assert plan["changed"] is False
    assert [(c["package"], c["from"], c["to"], c["security"]) for c in plan["changes"]] == [
        ("rc-reboot", "1.0", "1.1", True), ("rc-sec", "1.0", "1.1", True)]
    assert [c["package"] for c in plan["held"]] == ["rc-held"]
    assert [c["package"] for c in plan["not_security"]] == ["rc-tool"]
    assert plan["targets"] == ["rc-reboot=1.1", "rc-sec=1.1"]
    assert plan["reboot"] == {"needed": False, "why": "no change needs a reboot"}
    assert versions() == {"rc-tool": "1.0", "rc-sec": "1.0", "rc-reboot": "1.0", "rc-held": "1.0"}, \
        "the plan changed nothing"

    rc, applied = module("ansible.builtin.apt", {"name": plan["targets"]})
    assert rc == 0 and applied["changed"], applied.get("msg")
    assert versions() == {"rc-tool": "1.0", "rc-sec": "1.1", "rc-reboot": "1.1", "rc-held": "1.0"}

    rc, recorded = module("rollcall.ops.apt_plan", {"action": "record", "before": plan["installed"],
                                                     "app": "rc-p-apt", "state_dir": "/var/lib/rollcall"})
    assert rc == 0 and recorded["changed"], recorded.get("msg")
    assert recorded["rollback"] == {"install": {"rc-reboot": "1.0", "rc-sec": "1.0"}, "remove": []}
    assert recorded["reboot"]["needed"] and "rc-reboot" in recorded["reboot"]["why"]
    assert sh("stat", "-c", "%a", "/var/lib/rollcall/rc-p-apt/patching.json").strip() == "600"
    [entry] = json.loads(sh("cat", "/var/lib/rollcall/rc-p-apt/patching.json"))["entries"]
    assert entry["changed"] == {"rc-reboot": "1.1", "rc-sec": "1.1"}

    rc, again = module("rollcall.ops.apt_plan", {"security_only": True, "holds": ["rc-hel*"]})
    assert rc == 0 and again["changes"] == [] and again["reboot"]["needed"], again
    assert again["summary"].startswith("0 package(s) to change (0 security), 1 held (rc-held)")


def test_a_record_that_cannot_be_written_is_one_clear_error(host):
    rc, result = module("rollcall.ops.apt_plan", {"action": "record", "before": {"rc-sec": "1.1"},
                                                   "state_dir": "/proc/rollcall"})
    assert rc != 0 and result["msg"].startswith("could not write the patching record /proc/rollcall/rollcall/"), result
