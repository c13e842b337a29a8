#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: release_plan
short_description: Decide the steps of a deploy, rollback, roll-forward or restore before anything changes
version_added: "0.4.0"
description:
  - Computes, from what was read about the stack, the ordered steps that bring the app and its database schema
    together - or a refusal with its reason and the command to run instead. Changes nothing.
  - Steps (in order) - C(restore) a backup, C(backup) before the schema changes, C(migrate) the schema up with an
    image, C(start) the release, C(gate) on /health/ready, C(switch) traffic, C(record) the release, and
    C(downgrade) the schema with the newer release's image once every host runs the older release.
  - A deploy never takes the schema down (it names C(rollback.yml) instead). Going to any kept release brings the
    schema to what it needs in either direction. A restore of a backup on an older schema migrates it forward
    with the live release's image; a backup on a newer schema than the live release runs on is refused, naming
    the kept release to roll forward to.
  - The decision is M(rollcall.ops.release_plan)'s module_utils C(release_plan.plan); roles/sms_app and
    roles/backup carry out the steps.
author:
  - Rollcall contributors (@rollcall)
options:
  kind:
    description:
      - V(deploy) (playbooks/deploy.yml), V(rollback) (playbooks/rollback.yml, to any kept release, older or
        newer) or V(restore) (playbooks/restore.yml).
    type: str
    required: true
    choices: [deploy, rollback, restore]
  target:
    description:
      - The release to go to - version, image and schema_revision (the revision it needs). Required unless
        O(kind=restore).
    type: dict
  live:
    description:
      - The live release - version, image and schema_revision (the revision it runs on). Omit when no release
        is live.
    type: dict
  db_revision:
    description:
      - The schema revision of the database now; omit (or null) for an empty database. For a restore, a backup on
        a newer schema than the live release runs on is restored only when the database is on that schema already
        (the live release serves on it now).
    type: str
  kept:
    description:
      - The kept releases, newest first, each with version, image and schema_revision (as
        M(rollcall.ops.app_release) O(rollcall.ops.app_release#module:action=info) returns them).
    type: list
    elements: dict
    default: []
  backup:
    description:
      - The backup to restore - name, schema_revision and app_version (from its manifest, as
        M(rollcall.ops.backup_info) lists them). For O(kind=rollback), the backup taken before the deploy being
        undone.
    type: dict
  blockers:
    description:
      - Why the schema cannot go down from O(db_revision) to the target's revision, as the newer image reported
        them (C(sms-app migrate --check --to REV)). Empty when it can.
    type: list
    elements: str
    default: []
  revisions:
    description:
      - The app's schema revisions, oldest first. Without it, revisions made of digits compare as numbers and
        others cannot be ordered (the plan refuses).
    type: list
    elements: str
  pre_deploy_backup:
    description:
      - Take a verified backup before the schema goes up.
    type: bool
    default: true
  up_to_date:
    description:
      - The live container is the target release with the same settings (its config hash matches).
    type: bool
    default: false
  allow_restore:
    description:
      - For O(kind=rollback) whose schema cannot go back, restore O(backup) first instead of refusing.
    type: bool
    default: false
  switched:
    description:
      - For O(kind=rollback), traffic already went back to the target's warm standby on some host (the standby
        answered C(/health/ready) on today's schema). A schema that cannot go back is then kept, with the code
        back, instead of a refusal (RV(schema_kept)).
    type: bool
    default: false
  fail_on_refusal:
    description:
      - Fail with the refusal's reason and command (the default), or return it with RV(action=refuse).
    type: bool
    default: true
notes:
  - Changes nothing; supports check mode (the plan is what check mode of the playbooks reports).
"""

EXAMPLES = r"""
- name: Plan the deploy
  rollcall.ops.release_plan:
    kind: deploy
    target: {version: 1.1.0, image: "rollcall/sms-app:1.1.0", schema_revision: "0002"}
    live: {version: 1.0.0, image: "rollcall/sms-app:1.0.0", schema_revision: "0001"}
    db_revision: "0001"
  register: plan

- name: Say what will happen
  ansible.builtin.debug:
    msg: "{{ plan.summary }}"
"""

RETURN = r"""
action:
  description: V(change) (RV(steps) to carry out), V(none) (nothing to do) or V(refuse).
  returned: always
  type: str
  sample: change
steps:
  description: The ordered steps, each a dict with C(step) and its details (image, from, to, name, version).
  returned: always
  type: list
  elements: dict
  sample: [{step: backup, app_version: 1.0.0}, {step: migrate, image: "rollcall/sms-app:1.1.0", from: "0001",
            to: "0002"}, {step: start, version: 1.1.0, image: "rollcall/sms-app:1.1.0"}, {step: gate},
           {step: switch}, {step: record, version: 1.1.0, schema_revision: "0002"}]
do:
  description: The names of RV(steps), in order (for C(when) conditions).
  returned: always
  type: list
  elements: str
  sample: [backup, migrate, start, gate, switch, record]
summary:
  description: One line for people - what will happen, or why not and what to run instead.
  returned: always
  type: str
  sample: "Deploy 1.1.0 (from 1.0.0): verified backup, migrate 0001 -> 0002 with rollcall/sms-app:1.1.0, ..."
reason:
  description: Why it is refused, or why the schema is kept (RV(schema_kept)); null otherwise.
  returned: always
  type: str
command:
  description: What to run instead of a refused plan, or to have the older schema too (RV(schema_kept)).
  returned: always
  type: str
schema_kept:
  description: The code went back and the schema stays newer, because it cannot go back (O(switched) only).
  returned: when the schema is kept
  type: bool
old_serves:
  description:
    - The release that was live can serve on the schema this plan leaves, so it may stay as the warm standby.
    - True after a deploy, a roll forward (the schema goes up, as in a deploy), a rollback that keeps the schema and
      a code-only rollback; absent when the schema goes down (a downgrade or a restore of an older backup).
  returned: when it is true
  type: bool
schema:
  description: The schema revision before (C(from)) and the one the target needs (C(to)).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils.release_plan import PlanError, plan

NONE = ("", "None", "none", "null")


def _revision(value):
    """Templated playbooks pass an empty database's revision as "", "None" or "null": all mean None."""
    return None if value is None or str(value) in NONE else str(value)


def _entry(entry):
    if not entry:
        return entry
    return dict(entry, schema_revision=_revision(entry.get("schema_revision")))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kind=dict(type="str", required=True, choices=["deploy", "rollback", "restore"]),
            target=dict(type="dict"), live=dict(type="dict"), db_revision=dict(type="str"),
            kept=dict(type="list", elements="dict", default=[]), backup=dict(type="dict"),
            blockers=dict(type="list", elements="str", default=[]),
            revisions=dict(type="list", elements="str", no_log=False),
            pre_deploy_backup=dict(type="bool", default=True), up_to_date=dict(type="bool", default=False),
            allow_restore=dict(type="bool", default=False), switched=dict(type="bool", default=False),
            fail_on_refusal=dict(type="bool", default=True)),
        required_if=[("kind", "deploy", ["target"]), ("kind", "rollback", ["target"])],
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = plan(p["kind"], target=_entry(p["target"]), live=_entry(p["live"]),
                      db_revision=_revision(p["db_revision"]), kept=[_entry(e) for e in p["kept"]],
                      backup=_entry(p["backup"]), blockers=p["blockers"], revisions=p["revisions"],
                      pre_deploy_backup=p["pre_deploy_backup"], up_to_date=p["up_to_date"],
                      allow_restore=p["allow_restore"], switched=p["switched"])
    except PlanError as exc:
        module.fail_json(msg=str(exc))
    if result["action"] == "refuse" and p["fail_on_refusal"]:
        module.fail_json(msg=result["summary"], **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
