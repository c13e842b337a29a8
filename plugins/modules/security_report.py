#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: security_report
short_description: Write the security audit of all hosts as one report (JSON, Markdown, HTML)
version_added: "0.5.0"
description:
  - Takes the M(rollcall.ops.security_audit) results of every host and writes one report - C(<name>.json),
    C(<name>.md) and one self-contained C(<name>.html) - into O(directory), never overwriting an existing one
    (temporary file, fsync, link into place).
  - The overall status is C(critical) when any finding is critical, C(warning) when any is a warning, else
    C(ok). The module does not fail on a critical finding; C(playbooks/security_audit.yml) fails after the
    report is written.
  - A host whose result is missing or failed gets a critical finding (an audit that did not run is not a pass).
author:
  - Rollcall contributors (@rollcall)
options:
  results:
    description:
      - One entry per host - a registered M(rollcall.ops.security_audit) result with C(host) added.
    type: list
    elements: dict
    required: true
  directory:
    description: Where the report is written (created when missing, mode 0750).
    type: path
    required: true
  name:
    description: The report's base name; defaults to C(security-<UTC YYYYmmddTHHMMSSZ>).
    type: str
  title:
    description: The report's title.
    type: str
    default: Rollcall security audit
  actor:
    description: Who ran the audit, recorded in the report.
    type: str
  formats:
    description: Which files to write.
    type: list
    elements: str
    choices: [json, md, html]
    default: [json, md, html]
  redact:
    description: Strings (secrets) masked wherever they appear in the report.
    type: list
    elements: str
    default: []
notes:
  - Supports check mode; in check mode nothing is written and RV(paths) says what would be.
"""

EXAMPLES = r"""
- name: Write the report of every host's audit
  rollcall.ops.security_report:
    results: "{{ groups['all'] | map('extract', hostvars, 'security_result') | list }}"
    directory: /var/lib/rollcall/reports/rollcall
  register: security_report
"""

RETURN = r"""
status:
  description: ok, warning or critical (the worst finding).
  returned: always
  type: str
critical:
  description: Whether any finding is critical.
  returned: always
  type: bool
counts:
  description: Findings per severity over all hosts.
  returned: always
  type: dict
  sample: {"critical": 2, "warning": 5, "info": 6}
failing:
  description: One line per critical or warning finding (host, severity, subject, finding, what to do).
  returned: always
  type: list
  elements: str
paths:
  description: The report files by format (written, or that would be in check mode).
  returned: always
  type: dict
name:
  description: The report's name.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import report, security


def main():
    module = AnsibleModule(
        argument_spec=dict(
            results=dict(type="list", elements="dict", required=True),
            directory=dict(type="path", required=True),
            name=dict(type="str"),
            title=dict(type="str", default="Rollcall security audit"),
            actor=dict(type="str"),
            formats=dict(type="list", elements="str", choices=list(report.FORMATS), default=list(report.FORMATS)),
            redact=dict(type="list", elements="str", default=[], no_log=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    now = report.utcnow()
    name = p["name"] or report.default_name("security", now)
    doc = security.document(p["results"], p["title"], now, p["actor"], p["redact"])
    result = dict(changed=False, status=doc["status"], critical=doc["critical"], counts=doc["counts"],
                  failing=doc["failing"], name=name, paths={})
    try:
        result["paths"] = report.report_paths(p["directory"], name, p["formats"])
        result["changed"] = report.publish(doc, security.RENDERERS, result["paths"], name, p["directory"],
                                           check_mode=module.check_mode)
    except (report.ReportError, OSError) as exc:
        module.fail_json(msg="the security report was not written: %s" % exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
