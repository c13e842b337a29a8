"""inventories/local (the demo's) rendered by real ansible-playbook: where each stack's secrets live. Nothing is
generated: only the directories are asked for, never the password lookups."""

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
SECRETS = os.path.join(ROOT, ".secrets", "local")


def rendered(tmp_path, *extra):
    play = tmp_path / "where.yml"
    play.write_text(yaml.safe_dump([{"hosts": "app", "gather_facts": False, "tasks": [
        {"name": "where", "ansible.builtin.debug": {"msg": "{{ [rollcall_secrets_dir, rollcall_stack_secrets_dir] }}"}}
    ]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = subprocess.run([PLAYBOOK, "-i", os.path.join(ROOT, "inventories", "local"), str(play), *extra], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]


@pytest.mark.parametrize("extra, stack", [
    ((), SECRETS),  # the demo's project keeps the files it always had
    (("-e", "rollcall_project=mdemo"), os.path.join(SECRETS, "mdemo")),
    (("-e", "rollcall_project=rollcall-drill"), os.path.join(SECRETS, "rollcall-drill")),  # the demo's DR drill
])
def test_each_stack_has_its_own_secrets_and_the_backup_key_is_the_inventorys(tmp_path, extra, stack):
    """A second stack from the demo inventory shared the demo's password files: its rotate_db_passwords.yml
    -e generate=true wrote new passwords that the demo's database never got (found 2026-12-06). The backup key stays
    the inventory's: the drill's scratch stack decrypts the live stack's backups with it."""
    assert rendered(tmp_path, *extra) == [SECRETS, stack]
