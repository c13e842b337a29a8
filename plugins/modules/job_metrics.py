#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: job_metrics
short_description: Write a playbook run's result as Prometheus textfile metrics
description:
  - Writes C(rollcall_job_<playbook>.prom) into O(directory), the node_exporter textfile collector directory of
    the report host (roles/monitoring points its node exporter there), so Prometheus shows the run within one
    scrape (issue 16 item 5).
  - The metrics are C(rollcall_job_last_run_timestamp_seconds), C(rollcall_job_last_run_ok),
    C(rollcall_job_last_success_timestamp_seconds) (kept from the previous file when this run failed) and
    C(rollcall_job_last_run_duration_seconds) when O(started_at) is given, each labelled with the playbook.
  - The file is replaced atomically (temporary file in the same directory, fsync, rename).
  - In check mode nothing is written; the module says which file it would write.
version_added: "1.0.0"
author:
  - Rollcall contributors (@rollcall)
options:
  directory:
    description: The textfile collector directory; made (mode 0755) when missing.
    type: path
    required: true
  playbook:
    description: The playbook's name (deploy, backup, health, patching, ...).
    type: str
    required: true
  status:
    description: How the run ended on the hosts that reached its end.
    type: str
    choices: [ok, failed]
    required: true
  started_at:
    description: When the run started (Unix time); gives the duration.
    type: float
notes:
  - The roles call it from C(roles/job_result), the last play of every playbook; a run that stopped on every
    host never reaches it, so its staleness is what the alert rules watch.
"""

EXAMPLES = r"""
- name: Tell Prometheus how the backup went
  rollcall.ops.job_metrics:
    directory: /var/lib/rollcall/reports/sms
    playbook: backup
    status: ok
"""

RETURN = r"""
path:
  description: The textfile written (or that would be).
  returned: always
  type: str
  sample: /var/lib/rollcall/reports/sms/rollcall_job_backup.prom
metrics:
  description: The text written (or that would be).
  returned: always
  type: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import report


def main():
    module = AnsibleModule(
        argument_spec=dict(
            directory=dict(type="path", required=True),
            playbook=dict(type="str", required=True),
            status=dict(type="str", required=True, choices=["ok", "failed"]),
            started_at=dict(type="float"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = os.path.join(p["directory"], report.job_textfile_name(p["playbook"]))
    previous = ""
    try:
        with open(path) as handle:
            previous = handle.read()
    except FileNotFoundError:
        pass
    except OSError as exc:
        module.fail_json(msg="Cannot read %s: %s" % (path, exc.strerror), path=path)
    now = time.time()
    duration = round(now - p["started_at"], 1) if p["started_at"] else None
    text = report.render_job_metrics(p["playbook"], p["status"], now, previous, duration)
    if not module.check_mode:
        try:
            os.makedirs(p["directory"], mode=0o755, exist_ok=True)
            report.write_replace(path, text)
        except (OSError, report.ReportError) as exc:
            module.fail_json(msg="Cannot write %s: %s. Create the directory or set rollcall_report_dir." % (path, exc),
                             path=path)
    module.exit_json(changed=not module.check_mode, path=path, metrics=text)


if __name__ == "__main__":
    main()
