#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: dr_report
short_description: Measure a disaster-recovery drill's RTO and RPO and write its report
version_added: "0.9.0"
description:
  - Looks up, through the rebuilt app's API, which of the writes M(rollcall.ops.dr_writer) had acknowledged before the
    disaster are there after the recovery, and computes the RPO (the last acknowledged write against the newest
    surviving one), the RTO (from O(disaster_at) to O(recovered_at)) and, from the set-up (O(mode)), the data a real
    disaster could lose. Judges them against the seeds' targets (000, 001, 002) and writes the report - C(<name>.json),
    C(<name>.md), C(<name>.html) - into O(directory), never over an existing one, and O(textfile) for Prometheus.
  - The status is C(failed) when an acknowledged write older than the recovery point is missing (a hole), when
    nothing survived, when a check in O(checks) failed, or when a measured figure is over a target; C(warning) when
    the measured figures meet every target but the set-up's worst case does not; else C(ok). The module reports,
    it does not fail on the status; C(playbooks/dr_drill.yml) fails after cleaning up.
author:
  - Rollcall contributors (@rollcall)
options:
  url:
    description: The rebuilt app's base URL on this host, loopback only.
    type: str
    required: true
  writes:
    description: RV(rollcall.ops.dr_writer#module:writes) of every writer.
    type: list
    elements: dict
    required: true
  disaster_at:
    description: Epoch seconds when the scratch stack's destruction began.
    type: float
    required: true
  recovered_at:
    description: Epoch seconds when the rebuilt stack passed its smoke tests.
    type: float
    required: true
  events:
    description: The drill's steps for the timeline, each C({step, at}) with C(at) in epoch seconds.
    type: list
    elements: dict
    default: []
  checks:
    description: Checks made after the recovery, each C({name, ok, detail}).
    type: list
    elements: dict
    default: []
  project:
    description: The live project the drill stands for.
    type: str
    required: true
  drill_project:
    description: The scratch project the drill destroyed and rebuilt.
    type: str
    required: true
  engine:
    description: The database engine.
    type: str
    required: true
  mode:
    description: How this set-up recovers - V(dump) (the newest backup) or V(pitr) (point-in-time recovery).
    type: str
    choices: [dump, pitr]
    default: dump
  backup_interval_s:
    description: Seconds between two scheduled backups (the daily schedule by default), for the worst case of V(dump).
    type: int
    default: 86400
  archive_timeout_s:
    description:
      - For the worst case of V(pitr), in seconds. PostgreSQL - the WAL archive timeout. MariaDB - how often the
        binary log is shipped (C(playbooks/archive_log.yml) on its schedule).
    type: int
    default: 60
  backup:
    description: What was restored (name, finished_at), shown in the report.
    type: dict
    default: {}
  survived:
    description:
      - The ids of O(writes) found after the recovery, as RV(survived) of an earlier call returned them. Given, the app
        is not asked again - so the report can be written on the report host from what the app host saw.
    type: list
    elements: int
  directory:
    description: Where the report is written (created when missing, mode 0750). Without it nothing is written.
    type: path
  name:
    description: The report's base name; defaults to C(dr-drill-<UTC YYYYmmddTHHMMSSZ>).
    type: str
  textfile:
    description: A Prometheus textfile to write (replaced) with the drill's RTO, RPO and result.
    type: path
  formats:
    description: Which report files to write.
    type: list
    elements: str
    choices: [json, md, html]
    default: [json, md, html]
notes:
  - Supports check mode; nothing is written and RV(paths) says what would be.
"""

EXAMPLES = r"""
- name: Measure and report the drill
  rollcall.ops.dr_report:
    url: http://127.0.0.1:8090
    writes: "{{ drill_writer_done.writes }}"
    disaster_at: "{{ drill_disaster_at }}"
    recovered_at: "{{ drill_recovered_at }}"
    project: rollcall
    drill_project: rollcall-drill
    engine: postgresql
    directory: /var/lib/rollcall/reports/rollcall
  register: drill_report
"""

RETURN = r"""
status:
  description: ok, warning or failed.
  returned: always
  type: str
rto_s:
  description: Seconds from the destruction to passing smoke tests.
  returned: always
  type: float
rpo_s:
  description: Seconds of acknowledged writes lost (the last acknowledged write against the newest that survived).
  returned: always
  type: float
source:
  description: What the drill recovered from, O(mode) - V(pitr) (the pgBackRest repository) or V(dump).
  returned: always
  type: str
source_why:
  description: The same in a sentence, with the backup restored.
  returned: always
  type: str
worst_case_rpo_s:
  description: The data a real disaster could lose with this set-up, in seconds.
  returned: always
  type: float
reasons:
  description: Why the status is not ok.
  returned: always
  type: list
  elements: str
summary:
  description: One line with the figures.
  returned: always
  type: str
survived:
  description: The ids of the acknowledged writes that are there after the recovery.
  returned: always
  type: list
  elements: int
recovery_point:
  description: The writes counted (writes, survived, lost, holes, last_acked_at, recovered_to_at, rpo_s).
  returned: always
  type: dict
targets:
  description: One entry per seed target with rto_met, rpo_met and worst_rpo_met.
  returned: always
  type: list
  elements: dict
paths:
  description: The report files by format.
  returned: always
  type: dict
"""

import json
import urllib.error
import urllib.parse

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.rollcall.ops.plugins.module_utils import drill, report


def surviving(url, writes, timeout=10):
    """The ids of ``writes`` the app has (same id and student number)."""
    found = []
    for write in writes:
        try:
            response = open_url("%s/api/v1/students/%d" % (url.rstrip("/"), int(write["id"])), timeout=timeout,
                                use_proxy=False)
            if json.loads(response.read().decode()).get("student_number") == write.get("number"):
                found.append(int(write["id"]))
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            writes=dict(type="list", elements="dict", required=True),
            disaster_at=dict(type="float", required=True),
            recovered_at=dict(type="float", required=True),
            events=dict(type="list", elements="dict", default=[]),
            checks=dict(type="list", elements="dict", default=[]),
            project=dict(type="str", required=True),
            drill_project=dict(type="str", required=True),
            engine=dict(type="str", required=True),
            mode=dict(type="str", choices=["dump", "pitr"], default="dump"),
            backup_interval_s=dict(type="int", default=86400),
            archive_timeout_s=dict(type="int", default=60),
            backup=dict(type="dict", default={}),
            survived=dict(type="list", elements="int"),
            directory=dict(type="path"),
            name=dict(type="str"),
            textfile=dict(type="path"),
            formats=dict(type="list", elements="str", choices=list(report.FORMATS), default=list(report.FORMATS)),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if urllib.parse.urlparse(p["url"]).hostname not in ("127.0.0.1", "localhost", "::1"):
        module.fail_json(msg="the drill's checks stay on loopback; %s is not" % p["url"])
    now = report.utcnow()
    name = p["name"] or report.default_name("dr-drill", now)
    try:
        survived = p["survived"] if p["survived"] is not None else surviving(p["url"], p["writes"])
    except (urllib.error.URLError, OSError, ValueError) as exc:
        module.fail_json(msg="the rebuilt app at %s did not answer while the surviving writes were counted (%s); the "
                             "recovery did not pass its checks" % (p["url"], exc))
    point = drill.recovery_point(p["writes"], survived)
    doc = drill.document(p["project"], p["drill_project"], p["engine"], p["mode"], p["events"], p["disaster_at"],
                         p["recovered_at"], point, p["checks"], p["backup_interval_s"], p["archive_timeout_s"],
                         p["backup"], report.isoformat(now))
    result = dict(changed=False, status=doc["status"], rto_s=doc["rto_s"], rpo_s=doc["rpo_s"], source=doc["source"],
                  source_why=doc["source_why"],
                  worst_case_rpo_s=doc["worst_case_rpo_s"], reasons=doc["reasons"], recovery_point=point,
                  targets=doc["targets"], summary=drill.summary(doc), survived=sorted(survived), name=name,
                  paths={})
    if not p["directory"]:
        module.exit_json(**result)
    try:
        result["paths"] = report.report_paths(p["directory"], name, p["formats"])
        result["changed"] = report.publish(doc, drill.RENDERERS, result["paths"], name, p["directory"],
                                           textfile=p["textfile"], render_textfile=drill.render_prometheus,
                                           check_mode=module.check_mode)
    except (report.ReportError, OSError) as exc:
        module.fail_json(msg="the drill's report was not written: %s" % exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
