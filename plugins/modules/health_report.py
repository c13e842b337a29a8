#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: health_report
short_description: Write a health report (JSON, Markdown, one HTML page) and Prometheus textfile metrics
version_added: "0.4.0"
description:
  - Takes the results of M(rollcall.ops.health_check), one per host, and answers "is the system healthy, and if
    not, why?" with the overall status, counts, and every check that is not ok with its reason.
  - Writes C(<name>.json), C(<name>.md) (a table per host) and C(<name>.html) into O(directory). The HTML page is
    self-contained (inline CSS, no script, nothing loaded) with a status table in colour and text, HTTP latency
    bars (p50/p95/p99 per endpoint) and, when O(history) is given, lines of backup age and p95 latency over time.
  - Report files are written atomically and never overwrite an existing file; a report with the same name makes
    the task fail before anything is written.
  - Optionally writes node_exporter textfile collector metrics to O(prometheus_textfile) (replaced atomically
    through a temporary file in the same directory and a rename).
  - Everything rendered is escaped (HTML in the page and the Markdown, the exposition format in label values),
    and the strings in O(redact) are masked everywhere.
author:
  - Rollcall contributors (@rollcall)
options:
  results:
    description:
      - One M(rollcall.ops.health_check) result per host, each with C(host), C(status) (V(ok), V(warning),
        V(critical)), C(checked_at), C(checks) (each with C(name), C(kind), C(status), C(reason), C(metrics)) and
        C(summary).
      - An entry without checks that failed or was unreachable counts as critical with its C(msg) as the reason.
        Unknown status values count as critical.
    type: list
    elements: dict
    required: true
  history:
    description:
      - Points from earlier runs for the charts, each with C(at) (ISO 8601), C(host), C(newest_backup_age_s),
        C(p95_ms) and C(status). The points of this run are returned as RV(history_entries), ready to append.
    type: list
    elements: dict
    default: []
  sizes:
    description:
      - Database sizes over time, C({at, host, bytes}) (the maintenance report's C(maintenance-history.json));
        drawn as a line per host in the HTML report's history section (MiB).
    type: list
    elements: dict
    default: []
  directory:
    description:
      - Where the report files go (created when missing, mode 0750). Without it no report file is written.
    type: path
  name:
    description:
      - The report's base name; the files are C(<name>.json), C(<name>.md) and C(<name>.html).
      - Defaults to C(health-<UTC YYYYmmddTHHMMSSZ>).
    type: str
  title:
    description:
      - The report's title.
    type: str
    default: Rollcall health report
  formats:
    description:
      - Which report files to write.
    type: list
    elements: str
    choices: [json, md, html]
    default: [json, md, html]
  metrics:
    description:
      - Which metric families O(prometheus_textfile) gets. V(maintenance) (the maintenance report of
        C(playbooks/maintenance.yml)) writes C(rollcall_maintenance_status{host}),
        C(rollcall_maintenance_check_status{host,check,kind}), C(rollcall_maintenance_figure{host,check,figure})
        and C(rollcall_maintenance_report_timestamp_seconds) instead of the health families below.
    type: str
    choices: [health, maintenance]
    default: health
  prometheus_textfile:
    description:
      - Path of a C(.prom) file in the node_exporter textfile collector directory (the directory must exist).
      - Metrics are C(rollcall_health_status{host}) and C(rollcall_check_status{host,check,kind}) (0 ok, 1 warning,
        2 critical), C(rollcall_backup_newest_age_seconds{host,check}),
        C(rollcall_backup_newest_verified_age_seconds{host,check}), C(rollcall_http_latency_p95_seconds{host,endpoint})
        (the endpoint is the check's name), C(rollcall_http_error_ratio{host,endpoint}),
        C(rollcall_container_restarts{host,container}), C(rollcall_tls_certificate_days_left{host,check}) and
        C(rollcall_health_report_timestamp_seconds). A metric whose value is unknown is left out.
    type: path
  fail_on:
    description:
      - Fail the task when the overall status is at least this bad. With V(never) the task succeeds and
        RV(critical) tells a playbook whether to end non-zero.
    type: str
    choices: [never, critical, warning]
    default: never
  redact:
    description:
      - Strings (secrets) masked wherever they appear in the results before anything is rendered or returned.
    type: list
    elements: str
    default: []
notes:
  - Supports check mode; in check mode the paths are reported and nothing is written.
  - Uses only the Python standard library where it runs (usually the controller, with C(delegate_to) localhost).
"""

EXAMPLES = r"""
- name: Report on every host's health
  rollcall.ops.health_report:
    results: "{{ ansible_play_hosts | map('extract', hostvars, 'health') | list }}"
    directory: /var/lib/rollcall/reports
    prometheus_textfile: /var/lib/node_exporter/textfile_collector/rollcall.prom
  delegate_to: localhost
  run_once: true
  register: report

- name: End non-zero when anything is critical
  ansible.builtin.fail:
    msg: "{{ report.failing | join('; ') }}"
  when: report.critical
  run_once: true
"""

RETURN = r"""
status:
  description: The overall status, the worst of all hosts.
  returned: always
  type: str
  sample: warning
critical:
  description: Whether the overall status is critical.
  returned: always
  type: bool
  sample: false
counts:
  description: Hosts and checks per status, with totals.
  returned: always
  type: dict
  sample: {"hosts": {"ok": 1, "warning": 1, "critical": 0, "total": 2},
           "checks": {"ok": 14, "warning": 1, "critical": 0, "total": 15}}
failing:
  description: One line per check that is not ok, as C(<host>) colon C(<check> <status> (<reason>)), worst hosts
    first.
  returned: always
  type: list
  elements: str
  sample: ["web1: backup warning (newest backup is 30 h old)"]
hosts:
  description: Each host's name and status, worst first.
  returned: always
  type: list
  elements: dict
  sample: [{"host": "web1", "status": "warning"}]
paths:
  description: The report files by format (written, or that would be written in check mode); empty without
    O(directory).
  returned: always
  type: dict
  sample: {"json": "/var/lib/rollcall/reports/health-20261125T080000Z.json"}
name:
  description: The report's name.
  returned: always
  type: str
  sample: health-20261125T080000Z
prometheus_textfile:
  description: The metrics file written (or that would be written in check mode), null without
    O(prometheus_textfile).
  returned: always
  type: str
history_entries:
  description: This run's points (C(at), C(host), C(newest_backup_age_s), C(p95_ms), C(status)), to keep for the
    next run's O(history).
  returned: always
  type: list
  elements: dict
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import report


def main():
    module = AnsibleModule(
        argument_spec=dict(
            results=dict(type="list", elements="dict", required=True),
            history=dict(type="list", elements="dict", default=[]),
            sizes=dict(type="list", elements="dict", default=[]),
            directory=dict(type="path"),
            name=dict(type="str"),
            title=dict(type="str", default="Rollcall health report"),
            formats=dict(type="list", elements="str", choices=list(report.FORMATS), default=list(report.FORMATS)),
            prometheus_textfile=dict(type="path"),
            metrics=dict(type="str", choices=["health", "maintenance"], default="health"),
            fail_on=dict(type="str", choices=["never", "critical", "warning"], default="never"),
            redact=dict(type="list", elements="str", default=[], no_log=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    now = report.utcnow()
    name = p["name"] or report.default_name("health", now)
    doc = report.health_document(p["results"], p["history"], p["title"], now, p["redact"], p["sizes"])
    result = dict(changed=False, status=doc["status"], critical=doc["critical"], counts=doc["counts"],
                  failing=doc["failing"], hosts=[{"host": h["host"], "status": h["status"]} for h in doc["hosts"]],
                  paths={}, name=name, prometheus_textfile=p["prometheus_textfile"],
                  history_entries=doc["history_entries"])
    renderers = {"json": report.render_json, "md": report.render_markdown, "html": report.render_html}
    try:
        if p["directory"]:
            result["paths"] = report.report_paths(p["directory"], name, p["formats"])
        result["changed"] = report.publish(doc, renderers, result["paths"], name, p["directory"],
                                           p["prometheus_textfile"],
                                           report.render_maintenance_prometheus if p["metrics"] == "maintenance"
                                           else report.render_prometheus, module.check_mode)
    except (report.ReportError, OSError) as exc:
        module.fail_json(msg=str(exc), **result)
    if p["fail_on"] != "never" and report.LEVEL[doc["status"]] >= report.LEVEL[p["fail_on"]]:
        module.fail_json(msg="overall status %s: %s" % (doc["status"], "; ".join(doc["failing"])), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
