#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: apt_plan
short_description: Say what an apt upgrade would change on a Debian host, and record what it changed
version_added: "0.3.0"
description:
  - Patching's two bookends (issue 13; the upgrade itself is C(ansible.builtin.apt) with the RV(targets) given here).
  - O(action=plan) asks apt to simulate the upgrade (C(apt-get -s upgrade --with-new-pkgs); no lock, nothing
    changes), and reports every package it would change with its version from and to, which come from the security
    archive, which are on the hold list O(holds) (left alone), and whether the host will need a reboot
    (C(/var/run/reboot-required), or a change to the kernel, libc or the init system). With O(security_only), only
    packages from the security archive are kept.
  - O(action=record) reads the installed versions of O(before)'s packages again and appends one entry (before,
    after, the rollback plan that would put O(before) back, reboot) to O(state_dir)/O(app)/C(patching.json) (mode
    0600, written atomically); RV(rollback) is what C(ansible.builtin.apt) would install to go back.
  - The decisions are C(plugins/module_utils/patching.py) (pure, unit tested).
author:
  - Rollcall contributors (@rollcall)
options:
  action:
    description: V(plan) (read only) or V(record).
    type: str
    choices: [plan, record]
    default: plan
  security_only:
    description: Keep only packages from the security archive (its origin names C(security)).
    type: bool
    default: false
  holds:
    description: Packages never changed (names; C(*) matches any characters, e.g. C(linux-image-*)).
    type: list
    elements: str
    default: []
  before:
    description: With O(action=record), the versions before the upgrade (RV(installed) of the plan).
    type: dict
    default: {}
  new_packages:
    description:
      - With O(action=record), the packages the upgrade installed new (RV(changes) whose action is C(install)),
        so that the record lists them and RV(rollback) removes them.
    type: list
    elements: str
    default: []
  app:
    description: The project whose state directory keeps C(patching.json) (O(action=record)).
    type: str
    default: rollcall
  state_dir:
    description: Directory of every project's release state (O(action=record)).
    type: path
    default: /var/lib/rollcall
notes:
  - Supports check mode; O(action=plan) changes nothing in any mode, O(action=record) writes nothing in check mode.
  - Debian and its derivatives only (apt-get, dpkg-query).
"""

EXAMPLES = r"""
- name: What would change
  rollcall.ops.apt_plan:
    security_only: true
    holds: [linux-image-*]
  register: patch_plan

- name: Upgrade exactly that
  ansible.builtin.apt:
    name: "{{ patch_plan.targets }}"
    only_upgrade: false
  when: patch_plan.targets | length > 0

- name: Record what changed
  rollcall.ops.apt_plan:
    action: record
    before: "{{ patch_plan.installed }}"
"""

RETURN = r"""
changes:
  description: What apt would change and this plan keeps (package, from, to, origins, security, action).
  returned: action is plan
  type: list
  elements: dict
held:
  description: Changes left alone because of O(holds).
  returned: action is plan
  type: list
  elements: dict
not_security:
  description: Changes left for a full run because they are not from the security archive (O(security_only)).
  returned: action is plan
  type: list
  elements: dict
targets:
  description: C(name=version) of every kept upgrade or new package, for C(ansible.builtin.apt)'s name.
  returned: action is plan
  type: list
  elements: str
installed:
  description: The installed version of every package in RV(changes) (new packages are absent), for O(before).
  returned: action is plan
  type: dict
reboot:
  description: Whether the host needs a reboot (after the kept changes), and why.
  returned: always
  type: dict
summary:
  description: One line.
  returned: always
  type: str
after:
  description: Installed versions after the upgrade, of O(before)'s packages and the new ones.
  returned: action is record
  type: dict
rollback:
  description: What puts O(before) back - C(install) (package to version) and C(remove) (packages the upgrade added).
  returned: action is record
  type: dict
changed_packages:
  description: The packages whose version differs from O(before), with their version now.
  returned: action is record
  type: dict
rollback_targets:
  description: C(name=version) of RV(rollback)'s installs, for C(ansible.builtin.apt) with C(allow_downgrade).
  returned: action is record
  type: list
  elements: str
record:
  description: Path of C(patching.json).
  returned: action is record
  type: str
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, patching

REBOOT_FILE = "/var/run/reboot-required"
DPKG_FORMAT = "${Package} ${Version} ${db:Status-Abbrev}\n"
KEEP_ENTRIES = 100


def run(module, argv, what):
    rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"})
    if rc != 0:
        lines = [line for line in (err or out or "").splitlines() if line.strip()]
        module.fail_json(msg="%s failed (exit %d): %s" % (what, rc, lines[-1] if lines else "no output"))
    return out


def installed(module, packages):
    if not packages:
        return {}
    rc, out, _err = module.run_command(["dpkg-query", "-W", "-f", DPKG_FORMAT, "--"] + sorted(packages),
                                       environ_update={"LC_ALL": "C"})
    # rc 1: some packages are not installed (new ones); what is installed is still listed
    if rc not in (0, 1):
        module.fail_json(msg="dpkg-query could not list the installed versions (exit %d)" % rc)
    return patching.parse_installed(out)


def reboot_state(changes):
    listed = []
    if os.path.exists(REBOOT_FILE + ".pkgs"):
        with open(REBOOT_FILE + ".pkgs", encoding="utf-8", errors="replace") as handle:
            listed = [line.strip() for line in handle if line.strip()]
    needed, why = patching.needs_reboot(changes, os.path.exists(REBOOT_FILE), listed)
    return {"needed": needed, "why": why}


def plan(module):
    p = module.params
    simulated = run(module, ["apt-get", "-s", "-o", "Debug::NoLocking=1", "-q", "upgrade", "--with-new-pkgs"],
                    "apt-get's simulation of the upgrade")
    changes = patching.parse_simulation(simulated)
    apply, held, skipped = patching.select(changes, p["security_only"], p["holds"])
    reboot = reboot_state(apply)
    return dict(changed=False, changes=apply, held=held, not_security=skipped, targets=patching.apt_targets(apply),
                installed=installed(module, [c["package"] for c in changes]), reboot=reboot,
                summary=patching.summary(apply, held, skipped, (reboot["needed"], reboot["why"])))


def record(module):
    p = module.params
    before = p["before"] or {}
    path = os.path.join(p["state_dir"], p["app"], "patching.json")
    history = []
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as handle:
                history = json.load(handle)["entries"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            module.fail_json(msg="%s cannot be read (%s); move it aside and run again" % (path, exc))
    after = installed(module, list(before) + list(p["new_packages"] or []))
    changed_pkgs = {name: after.get(name) for name in before if after.get(name) != before[name]}
    reboot = reboot_state([{"package": name} for name in changed_pkgs])
    rollback = patching.rollback_plan(before, after)
    entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "before": before, "after": after,
             "changed": changed_pkgs, "rollback": rollback, "reboot": reboot}
    if not module.check_mode:
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            artifact.write_json_atomic(path, {"entries": (history + [entry])[-KEEP_ENTRIES:]}, replace=True)
        except (OSError, artifact.ArtifactError) as exc:
            module.fail_json(msg="could not write the patching record %s: %s; check state_dir" % (path, exc))
    line = "%d package(s) changed; %s" % (len(changed_pkgs), reboot["why"])
    return dict(changed=not module.check_mode, after=after, rollback=rollback, reboot=reboot, summary=line,
                record=path, changed_packages=changed_pkgs, rollback_targets=patching.rollback_targets(rollback))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", choices=["plan", "record"], default="plan"),
            security_only=dict(type="bool", default=False),
            holds=dict(type="list", elements="str", default=[]),
            before=dict(type="dict", default={}),
            new_packages=dict(type="list", elements="str", default=[]),
            app=dict(type="str", default="rollcall"),
            state_dir=dict(type="path", default="/var/lib/rollcall"),
        ),
        supports_check_mode=True,
    )
    if module.params["action"] == "plan":
        module.exit_json(**plan(module))
    module.exit_json(**record(module))


if __name__ == "__main__":
    main()
