#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: alert_silence
short_description: Silence alerts in Alertmanager for a maintenance window, and lift the silence
description:
  - O(state=present) creates a silence of the alerts matching O(matchers) for O(minutes) minutes, unless an active
    silence with the same matchers and O(comment) exists (then nothing changes).
  - O(state=absent) expires every active silence with these matchers and this comment.
  - Deploys and patching runs use it (roles/monitoring C(tasks/silence.yml)) so the alerts they cause by design do
    not page anyone; a run that fails before lifting its silence leaves it until it ends by itself.
  - With O(missing_ok=true), an Alertmanager that does not answer is reported (C(reachable=false)) instead of
    failing (no Alertmanager, no alerts to silence).
version_added: "1.0.0"
author:
  - Rollcall contributors (@rollcall)
options:
  url:
    description: Alertmanager's base URL, as seen from the host the module runs on.
    type: str
    required: true
  state:
    description: Whether the silence should exist.
    type: str
    choices: [present, absent]
    default: present
  matchers:
    description: "Labels the silenced alerts have (exact matches), for example C({project: sms, service: app})."
    type: dict
    required: true
  minutes:
    description: How long a new silence lasts.
    type: int
    default: 30
  comment:
    description: Why; it also identifies the silence for O(state=absent).
    type: str
    required: true
  created_by:
    description: Who or what set it.
    type: str
    default: rollcall
  missing_ok:
    description: An Alertmanager that does not answer is not an error.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Silence the app's alerts during the deploy
  rollcall.ops.alert_silence:
    url: http://127.0.0.1:9093
    matchers: {project: sms, service: app}
    minutes: 30
    comment: deploy of sms
    created_by: root@awx job 42
    missing_ok: true
"""

RETURN = r"""
ids:
  description: The silences created, found or expired.
  returned: always
  type: list
  elements: str
reachable:
  description: Whether Alertmanager answered.
  returned: always
  type: bool
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import alerting


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            matchers=dict(type="dict", required=True),
            minutes=dict(type="int", default=30),
            comment=dict(type="str", required=True),
            created_by=dict(type="str", default="rollcall"),
            missing_ok=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        client = alerting.Client(p["url"])
        existing = alerting.ours(client.silences(), p["matchers"], p["comment"])
        if p["state"] == "present":
            if existing:
                module.exit_json(changed=False, ids=existing, reachable=True)
            body = alerting.silence_body(p["matchers"], p["minutes"], p["created_by"], p["comment"],
                                         datetime.datetime.now(datetime.timezone.utc))
            ids = ["(check mode)"] if module.check_mode else [client.create(body)]
            module.exit_json(changed=True, ids=ids, reachable=True)
        if not module.check_mode:
            for silence_id in existing:
                client.expire(silence_id)
        module.exit_json(changed=bool(existing), ids=existing, reachable=True)
    except ConnectionError as exc:
        if p["missing_ok"]:
            module.exit_json(changed=False, ids=[], reachable=False, msg=str(exc))
        module.fail_json(msg="%s. Is the monitoring stack running (playbooks/monitoring.yml)?" % exc)
    except alerting.AlertingError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
