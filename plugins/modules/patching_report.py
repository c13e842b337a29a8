#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
DOCUMENTATION = r"""
---
module: patching_report
short_description: Write the report of one patching run (JSON, Markdown and HTML)
version_added: "0.3.0"
description:
  - Per host, what the plan said, what changed (from and to), whether it rebooted and why, health before and after,
    the time it was out of the load balancer's pool (or that it is still out), whether the Docker engine was
    upgraded and how long its containers took to run again,
    and for a failed host the error and what it was rolled back to. The document and its Markdown come from
    C(plugins/module_utils/patching.py) (C(host_entry), C(run_report), C(markdown); pure, unit tested).
  - Writes O(directory)/O(name)C(.json), C(.md) and C(.html) (mode 0640, each written atomically). A rolling run
    calls it after every batch with the same O(name), so the report of a run that stopped still names the host
    that failed.
author:
  - Rollcall contributors (@rollcall)
options:
  hosts:
    description:
      - One entry per host, each with C(host) and optionally C(plan) (the result of C(rollcall.ops.apt_plan)),
        C(record) (its C(action=record) result), C(reboot) (C(done), C(why)), C(health_before), C(health_after),
        C(outcome) (V(planned), V(unchanged), V(patched), V(rolled_back), V(failed), V(not_reached)), C(error),
        C(rolled_back) (C(name=version) list), C(images) (C(app), C(proxy), C(db) to the result of
        C(rollcall.ops.image_refresh) with O(rollcall.ops.image_refresh#module:state=plan)), C(images_refreshed) (its
        RV(rollcall.ops.image_refresh#module:refreshed)), C(pool) (the time out of the load balancer's pool from
        C(patching_pool_entry), from C(pool_entry) of C(plugins/module_utils/patching.py)), C(engine) (the Docker
        engine upgrade, C(patching_engine_entry)), C(database) (the database engine's update - C(image_before),
        C(image_after), C(version_before), C(version_after), C(checks), C(restored)), C(proxy) (the proxy image's
        refresh - C(image_before), C(image_after), C(upstream), C(restored)).
    type: list
    elements: dict
    required: true
  directory:
    description: Where the report files go (created, mode 0750, when missing).
    type: path
    required: true
  name:
    description:
      - File name without extension, the same for every batch of one run (such as C(patching-20261202T140000Z)).
    type: str
    required: true
  actor:
    description: Who ran it (C(rollcall_actor)).
    type: str
  check_mode_run:
    description:
      - The run was a check-mode run (the report says nothing was changed). Such runs are reported, not written.
    type: bool
    default: false
notes:
  - Supports check mode; in check mode nothing is written and RV(report) and RV(markdown) are returned.
"""
EXAMPLES = r"""
- name: Write the report of this run
  rollcall.ops.patching_report:
    hosts:
      - host: db1
        plan: "{{ patching_plan }}"
        outcome: planned
    directory: /var/lib/rollcall/reports/sms
    name: patching-20261202T140000Z
"""
RETURN = r"""
report:
  description: The document written as JSON (at, actor, check_mode, status, failed_hosts, counts, hosts).
  returned: always
  type: dict
markdown:
  description: The Markdown text.
  returned: always
  type: str
paths:
  description: C(json), C(md) and C(html), the files written (or that would be).
  returned: always
  type: dict
status:
  description: V(ok), or V(failed) when a host failed.
  returned: always
  type: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, patching

ENTRY_KEYS = ("plan", "record", "reboot", "health_before", "health_after", "outcome", "error", "rolled_back",
              "images", "images_refreshed", "pool", "engine", "database", "proxy")


def write_text_atomic(path, text):
    temp = os.path.join(os.path.dirname(path), ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            hosts=dict(type="list", elements="dict", required=True),
            directory=dict(type="path", required=True),
            name=dict(type="str", required=True),
            actor=dict(type="str"),
            check_mode_run=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["name"] or "/" in p["name"] or p["name"] in (".", ".."):
        module.fail_json(msg="name %r must be a plain file name (no directory part)" % p["name"])
    entries = []
    for item in p["hosts"]:
        if not item.get("host"):
            module.fail_json(msg="every entry of hosts needs its host name: %r" % (item,))
        kwargs = {k: item[k] for k in ENTRY_KEYS if item.get(k) is not None}
        outcome = kwargs.get("outcome", "planned")
        if outcome not in patching.OUTCOMES:
            module.fail_json(msg="outcome of %s must be one of %s, not %r"
                             % (item["host"], ", ".join(patching.OUTCOMES), outcome))
        entries.append(patching.host_entry(item["host"], **kwargs))
    report = patching.run_report(entries, check_mode=p["check_mode_run"] or module.check_mode, actor=p["actor"],
                                 at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    text = patching.markdown(report)
    page = patching.html(report)
    paths = {"json": os.path.join(p["directory"], p["name"] + ".json"),
             "md": os.path.join(p["directory"], p["name"] + ".md"),
             "html": os.path.join(p["directory"], p["name"] + ".html")}
    changed = False
    if not module.check_mode and not p["check_mode_run"]:
        try:
            os.makedirs(p["directory"], mode=0o750, exist_ok=True)
            artifact.write_json_atomic(paths["json"], report, replace=True)
            os.chmod(paths["json"], 0o640)
            for path, content in ((paths["md"], text), (paths["html"], page)):
                if read(path) != content:
                    write_text_atomic(path, content)
            changed = True
        except (OSError, artifact.ArtifactError) as exc:
            module.fail_json(msg="could not write the patching report into %s: %s; check rollcall_report_dir and its "
                                 "free space" % (p["directory"], exc))
    module.exit_json(changed=changed, report=report, markdown=text, paths=paths, status=report["status"])


if __name__ == "__main__":
    main()
