#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: backup_prune
short_description: Apply retention to the backups of one database (last N, a time window, daily, weekly, monthly)
version_added: "0.2.0"
description:
  - Keeps the newest O(keep_last) backups and the newest backup of each of the last O(keep_daily) days,
    O(keep_weekly) ISO weeks and O(keep_monthly) months; deletes the rest.
  - With O(keep_within), also keeps every backup that finished within that time before now (for 15-minute
    snapshots kept 7 days, O(keep_within=7d) instead of counting them with O(keep_last)).
  - Never deletes the newest verified backup, never leaves zero backups, and deletes nothing when the newest
    backup's latest verification failed (a failing run must not also eat the good ones).
  - Never deletes a full backup that a kept differential (SQL Server) builds on, because a differential is
    restored on top of its full backup.
  - Never deletes a backup that a restore or a verification is reading now (a shared lock on its manifest);
    it is kept this time, with that reason in RV(reasons), and a later run deletes it.
  - Check mode and C(--diff) show exactly what would be deleted.
author:
  - Rollcall contributors (@rollcall)
options:
  directory:
    description:
      - The backup directory.
    type: path
    required: true
  engine:
    description:
      - The engine of the backups to prune (V(mariadb) is V(mysql), as manifests record it).
    type: str
    required: true
  project:
    description:
      - Only backups of this stack (C(rollcall_project)) and backups that record no project count and are pruned,
        so stacks that share a backup directory keep their own backups.
    type: str
  database:
    description:
      - The database whose backups are pruned. Other databases' backups are never touched.
    type: str
    required: true
  keep_last:
    description: Newest backups always kept.
    type: int
    default: 7
  keep_daily:
    description: Days for which the newest backup of the day is kept.
    type: int
    default: 7
  keep_weekly:
    description: ISO weeks for which the newest backup of the week is kept.
    type: int
    default: 4
  keep_monthly:
    description: Months for which the newest backup of the month is kept.
    type: int
    default: 6
  keep_within:
    description:
      - Every backup that finished within this time before now is kept, however many there are.
      - A number with a unit, V(d) (days), V(h) (hours) or V(m) (minutes), for example V(7d), V(36h) or V(90m)
        (also V(s), V(w) and fractions such as V(1.5d)); V(0) turns it off.
      - The other keep_* rules still apply; a backup is kept when any rule keeps it.
    type: str
    default: "0"
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: Keep a week of dailies, a month of weeklies and half a year of monthlies
  rollcall.ops.backup_prune:
    directory: /var/backups/rollcall
    engine: postgresql
    database: sms

- name: Keep every 15-minute snapshot of the last 7 days, then the usual daily, weekly and monthly backups
  rollcall.ops.backup_prune:
    directory: /var/backups/rollcall
    engine: postgresql
    database: sms
    keep_within: 7d
"""

RETURN = r"""
kept:
  description: Backups kept, newest first.
  returned: always
  type: list
  elements: str
deleted:
  description: Backups deleted (in check mode, that would be deleted).
  returned: always
  type: list
  elements: str
reasons:
  description: Why each kept backup was kept.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, backup


def main():
    module = AnsibleModule(
        argument_spec=dict(directory=dict(type="path", required=True), engine=dict(type="str", required=True),
                           database=dict(type="str", required=True), project=dict(type="str"),
                           keep_last=dict(type="int", default=7),
                           keep_daily=dict(type="int", default=7), keep_weekly=dict(type="int", default=4),
                           keep_monthly=dict(type="int", default=6), keep_within=dict(type="str", default="0")),
        supports_check_mode=True,
    )
    p = module.params
    if min(p["keep_last"], p["keep_daily"], p["keep_weekly"], p["keep_monthly"]) < 0 or p["keep_last"] < 1:
        module.fail_json(msg="keep_last must be at least 1 and the other keep_* values 0 or more")
    try:
        keep_within = backup.parse_duration(p["keep_within"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    now = artifact.utcnow()
    items = [i for i in backup.select(backup.describe(p["directory"], now), p["engine"], p["database"], p["project"])
             if "error" not in i]
    keep, delete, reasons = backup.prune_plan(items, p["keep_last"], p["keep_daily"], p["keep_weekly"],
                                              p["keep_monthly"], keep_within=keep_within, now=now)
    diff = {"before": "\n".join(keep + delete) + "\n", "after": "\n".join(keep) + "\n"}
    if not module.check_mode:
        deleted = []
        try:
            for name in delete:
                try:
                    backup.delete_backup(p["directory"], name)
                    deleted.append(name)
                except artifact.InUse:  # a restore or verification reads it now: the next run deletes it
                    keep.append(name)
                    reasons[name] = "kept: a restore or a verification is reading it now (deleted by a later run)"
        except (OSError, backup.ArtifactError) as exc:
            module.fail_json(msg="pruning stopped: %s" % exc, kept=keep, deleted=deleted, reasons=reasons)
        delete = deleted
        diff["after"] = "\n".join(keep) + "\n"
    module.exit_json(changed=bool(delete), kept=keep, deleted=delete, reasons=reasons, diff=diff)


if __name__ == "__main__":
    main()
