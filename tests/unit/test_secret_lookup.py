"""rollcall.ops.secret: the demo inventory's generated secrets, without ansible.builtin.password's lock file (a
Ctrl-C during any lookup left `<sha1>.ansible_lockfile`, and every later run failed after 7 s)."""

import hashlib
import json
import multiprocessing
import os
import re
import stat
import subprocess
import sys

import pytest
import yaml
from ansible.errors import AnsibleLookupError

from ansible_collections.rollcall.ops.plugins.lookup import secret

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def lookup(path=None, length=32, chars="letters_digits"):
    """What the plugin's run() does with its options (the plugin itself: the real ansible test below)."""
    return secret.new_secret(length, chars) if path is None else secret.kept_secret(path, length, chars)


def test_a_secret_is_made_once_kept_0600_and_read_back(tmp_path):
    path = tmp_path / "new" / "secret_key"
    made = lookup(str(path), length=48)
    assert re.fullmatch(r"[A-Za-z0-9]{48}", made)
    assert lookup(str(path), length=48) == made == path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"], "no temporary file is left"
    assert re.fullmatch(r"[0-9a-f]{64}", lookup(str(tmp_path / "backup_key"), length=64, chars="hex"))


def test_the_password_lookup_s_files_are_read_as_they_are(tmp_path):
    (tmp_path / "db_password").write_text("abcDEF123\n")
    (tmp_path / "salted").write_text("hunter2 salt=xyz ident=2b\n")
    assert lookup(str(tmp_path / "db_password")) == "abcDEF123"
    assert lookup(str(tmp_path / "salted")) == "hunter2"


def test_what_an_interrupted_run_leaves_stops_nothing(tmp_path):
    path = tmp_path / "backup_key"
    # the password lookup's lock file, left by a Ctrl-C, and a temporary file of ours left by one
    (tmp_path / ("%s.ansible_lockfile" % hashlib.sha1(str(path).encode()).hexdigest())).write_text("")
    (tmp_path / ".secret-x.tmp").write_text("half")
    path.write_text("")  # an empty file (a crash before the write reached the disk): a new secret replaces it
    made = lookup(str(path), length=64, chars="hex")
    assert len(made) == 64 and path.read_text() == made + "\n"


def race(path, queue):
    queue.put(lookup(path, length=32))


def test_runs_making_it_at_once_agree_on_one(tmp_path):
    path = str(tmp_path / "secret_key")
    queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=race, args=(path, queue)) for _ in range(8)]
    for worker in workers:
        worker.start()
    found = {queue.get(timeout=60) for _ in workers}
    for worker in workers:
        worker.join(30)
    assert found == {(tmp_path / "secret_key").read_text().strip()}


def test_without_a_file_each_secret_is_new_and_kept_nowhere(tmp_path):
    first, second = lookup(length=32, chars="hex"), lookup(length=32, chars="hex")
    assert first != second and re.fullmatch(r"[0-9a-f]{32}", first)
    with pytest.raises(AnsibleLookupError, match="length must be at least 1"):
        lookup(length=0)
    blocked = tmp_path / "ro"
    blocked.mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anyway
        with pytest.raises(AnsibleLookupError, match="cannot write a new secret to .*: Permission denied"):
            lookup(str(blocked / "key"))


def test_no_playbook_role_or_inventory_uses_the_password_lookup():
    used = []
    for top in ("inventories", "playbooks", "roles", "molecule"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith((".yml", ".yaml")):
                    with open(os.path.join(folder, name), encoding="utf-8") as handle:
                        text = handle.read()
                    if "ansible.builtin.password" in text or "lookup('password'" in text:
                        used.append(os.path.relpath(os.path.join(folder, name), ROOT))
    assert used == []


def test_the_demo_inventory_s_secrets_through_real_ansible(tmp_path):
    """The inventory's own expressions, rendered by ansible (ad hoc debug) into a copy's secrets directory."""
    with open(os.path.join(ROOT, "inventories/local/group_vars/all.yml"), encoding="utf-8") as handle:
        values = yaml.safe_load(handle)
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    extra = {"rollcall_secrets_dir": str(tmp_path), "rollcall_stack_secrets_dir": str(tmp_path / "stack")}
    for name in ("rollcall_secret_key", "rollcall_db_password", "rollcall_backup_key"):
        extra[name] = values[name]
    # a Ctrl-C during a password lookup left its lock file: every later run failed ("cannot get the lock")
    path = str(tmp_path / "backup_key")
    (tmp_path / ("%s.ansible_lockfile" % hashlib.sha1(path.encode()).hexdigest())).write_text("")
    proc = subprocess.run(
        [ansible, "localhost", "-c", "local", "-i", "localhost,", "-e", json.dumps(extra), "-m", "debug", "-a",
         "msg={{ [rollcall_secret_key, rollcall_db_password, rollcall_backup_key] | join(',') }}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_DEPRECATION_WARNINGS="0"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    key, password, backup_key = re.search(r"msg: ([A-Za-z0-9]+),([A-Za-z0-9]+),([0-9a-f]+)", proc.stdout).groups()
    assert len(key) == 48 and len(password) == 32 and len(backup_key) == 64
    assert (tmp_path / "stack" / "secret_key").read_text() == key + "\n"
    assert (tmp_path / "backup_key").read_text() == backup_key + "\n"
