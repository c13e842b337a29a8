#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: backup_keys
short_description: Report which backups use which key, and re-encrypt old backups to the current key
version_added: "0.2.0"
description:
  - V(report) lists every backup in O(directory) with the key id it was made with, whether the key ring
    (O(encryption_key) and O(encryption_keys)) holds that key, and whether the ring reads it - the manifest's
    signature checked with that key and every stored file present with its recorded size (no data is read; the
    nightly verification reads it all). It changes nothing.
  - V(reencrypt) re-encrypts every backup not on the current key (O(encryption_key)) - for each one, a new set of
    files C(<name>.key-<id8>.*) is written next to the old one, encrypted with the current key, and read back
    (sha256 and decryption, the same plain data as the old files); then the manifest is replaced in one rename,
    signed with the current key; only then are the old files removed. Whatever fails or interrupts it before the
    rename, the new files are removed and the old backup is as it was. Nothing is re-encrypted when any backup
    cannot be read with the ring.
  - V(reencrypt) also removes part files no manifest names (left by a run that was killed), and records a passed
    V(checksum) verification for each re-encrypted backup in C(<name>.verify.json).
  - Plain backups made without a key are left as they are. A plain backup whose manifest was signed
    (C(encrypt=false)) is written again plain and signed with the current key.
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.backup.artifact
  - rollcall.ops.backup.read
options:
  action:
    description:
      - V(report) changes nothing; V(reencrypt) re-encrypts old backups to the current key.
    type: str
    choices: [report, reencrypt]
    default: report
  database:
    description:
      - Only backups of this database. Damaged manifests are always listed (as unreadable).
    type: str
  engine:
    description:
      - Only backups of this engine (V(mariadb) is V(mysql)). With O(project), what a stack sharing the backup
        directory with other stacks reports and re-encrypts is its own backups only.
    type: str
    choices: [postgresql, mysql, mariadb, sqlite, mssql]
  require_readable:
    description:
      - Fail the task when a backup cannot be read with the key ring, naming each such backup and the key id it
        needs. V(reencrypt) always refuses then, before changing anything.
    type: bool
    default: false
notes:
  - Supports check mode. With O(action=reencrypt) it reports what would be re-encrypted and removed, and changes
    nothing.
"""

EXAMPLES = r"""
- name: Which backups use which key (fail when the ring cannot read one)
  rollcall.ops.backup_keys:
    directory: /var/backups/rollcall
    encryption_key: "{{ rollcall_backup_key }}"
    encryption_keys: "{{ rollcall_backup_old_keys }}"
    require_readable: true
  register: backup_key_report

- name: Re-encrypt every old backup to the current key
  rollcall.ops.backup_keys:
    directory: /var/backups/rollcall
    action: reencrypt
    encryption_key: "{{ rollcall_backup_key }}"
    encryption_keys: "{{ rollcall_backup_old_keys }}"
"""

RETURN = r"""
backups:
  description: Every backup, newest first - name, database, key_id (null without a key), encrypted, signed,
    in_ring, current (made with the current key), readable, problem (why not readable) and leftovers (part
    files its manifest does not name). With O(action=reencrypt), as it was before re-encrypting.
  returned: always
  type: list
  elements: dict
by_key:
  description: Backup names per key id (V(none) for backups made without a key).
  returned: always
  type: dict
unreadable:
  description: Backups the key ring cannot read.
  returned: always
  type: list
  elements: str
ring:
  description: Key ids in the key ring, the current key's first.
  returned: always
  type: list
  elements: str
current_key_id:
  description: Key id of the current key, null without one.
  returned: always
  type: str
nothing_to_rotate:
  description: Why a key rotation would have nothing to do (every kept backup already made with the current key,
    so it is not a new key), null when it would. C(playbooks/rotate_backup_key.yml) stops there, changing nothing.
  returned: action is report
  type: str
reencrypted:
  description: Re-encrypted backups (in check mode, that would be), each with name, from_key_id, to_key_id, files
    (the new files) and removed (files removed).
  returned: action is reencrypt
  type: list
  elements: dict
skipped:
  description: Backups not re-encrypted, with the reason.
  returned: action is reencrypt
  type: dict
leftovers_removed:
  description: Part files no manifest named, removed (in check mode, that would be).
  returned: action is reencrypt
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, backup, keyring
from ansible_collections.rollcall.ops.plugins.module_utils.params import ARTIFACT_ARGS, KEY_EXCLUSIVE, READ_ARGS, spec


def reencrypt(module, ring, report):
    p = module.params
    todo, skipped = keyring.reencrypt_plan(report["backups"], ring.current_id)
    stale = [e for i in report["backups"] if i["name"] not in todo for e in i["leftovers"]]
    if module.check_mode:
        done = [{"name": name, "from_key_id": next(i["key_id"] for i in report["backups"] if i["name"] == name),
                 "to_key_id": ring.current_id, "files": [], "removed": []} for name in todo]
        return done, skipped, stale
    done, removed = [], []
    with backup.terminate_cleanly():
        for item in report["backups"]:
            if item["name"] not in todo and item["leftovers"]:
                manifest = artifact.read_manifest(p["directory"], item["name"])
                removed += keyring.remove_leftovers(p["directory"], manifest)
        for name in todo:
            started, clock = artifact.isoformat(artifact.utcnow()), time.monotonic()
            try:
                outcome = keyring.reencrypt_backup(p["directory"], name, ring, p["allow_unsigned"])
            except backup.ERRORS + (backup.Interrupted, OSError) as exc:
                module.fail_json(msg="re-encrypting %s failed, that backup is kept as it was (key id %s): %s%s" % (
                    name, next(i["key_id"] for i in report["backups"] if i["name"] == name), exc,
                    "; already re-encrypted: %s" % ", ".join(d["name"] for d in done) if done else ""),
                    changed=bool(done or removed), reencrypted=done, skipped=skipped, leftovers_removed=removed,
                    **report)
            done.append(outcome)
            try:
                artifact.record_verification(p["directory"], name, keyring.verification_result(
                    outcome, started, round(time.monotonic() - clock, 3)))
            except artifact.ArtifactError as exc:
                outcome["not_recorded"] = str(exc)
    return done, skipped, removed


def main():
    module = AnsibleModule(
        argument_spec=spec(ARTIFACT_ARGS, READ_ARGS,
                           action=dict(type="str", default="report", choices=["report", "reencrypt"]),
                           database=dict(type="str"),
                           engine=dict(type="str", choices=["postgresql", "mysql", "mariadb", "sqlite", "mssql"]),
                           require_readable=dict(type="bool", default=False)),
        mutually_exclusive=KEY_EXCLUSIVE,
        supports_check_mode=True,
    )
    p = module.params
    try:
        ring = keyring.ring_from_params(p)
        report = keyring.key_report(p["directory"], ring, p["database"], p["allow_unsigned"],
                                    keep=lambda manifest: bool(backup.select([manifest], p["engine"], None,
                                                                             p["project"])))
        if report["unreadable"] and (p["require_readable"] or p["action"] == "reencrypt"):
            module.fail_json(msg="%s; nothing was changed" % keyring.unreadable_message(report), **report)
        if p["action"] == "report":
            module.exit_json(changed=False, nothing_to_rotate=keyring.nothing_to_rotate(report), **report)
        done, skipped, removed = reencrypt(module, ring, report)
    except backup.ERRORS + (backup.Interrupted,) as exc:
        module.fail_json(msg="backup keys: %s" % exc)
    module.exit_json(changed=bool(done or removed), reencrypted=done, skipped=skipped, leftovers_removed=removed,
                     **report)


if __name__ == "__main__":
    main()
