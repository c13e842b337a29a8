#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
---
module: health_check
short_description: Wait until an application health endpoint reports healthy
version_added: "0.1.0"
description:
  - Requests an HTTP health endpoint (such as the SMS app's C(/health)) from the managed host until it answers
    2xx with a healthy status document, or until O(wait_timeout) seconds have passed.
  - Fails with the reason (no answer, HTTP status, the failing sub-checks the application reports) when the
    endpoint does not become healthy, so a deploy stops at its health gate with something a person can act on.
  - Only reads; it never changes anything, so it runs in check mode too and always reports RV(ignore:changed=false).
author:
  - Rollcall contributors (@rollcall)
options:
  url:
    description:
      - The health endpoint, for example V(http://127.0.0.1:8080/health).
    type: str
    required: true
  wait_timeout:
    description:
      - Seconds to keep probing until the endpoint is healthy. V(0) probes exactly once.
    type: float
    default: 60
  interval:
    description:
      - Seconds between two probes.
    type: float
    default: 1
  request_timeout:
    description:
      - Seconds one request may take before it counts as no answer.
    type: float
    default: 5
  validate_certs:
    description:
      - Verify TLS certificates for C(https) URLs.
    type: bool
    default: true
  fail_unhealthy:
    description:
      - Fail the task when the endpoint is not healthy in time. With V(false) the result reports
        RV(status=critical) and the play goes on.
    type: bool
    default: true
notes:
  - Uses only the Python standard library on the managed host.
  - Supports check mode.
"""

EXAMPLES = r"""
- name: Wait until the SMS answers healthy
  rollcall.ops.health_check:
    url: http://127.0.0.1:8080/health
    wait_timeout: 90

- name: Probe once and carry on, whatever it says
  rollcall.ops.health_check:
    url: https://sms.example.edu/health/ready
    wait_timeout: 0
    fail_unhealthy: false
  register: ready
"""

RETURN = r"""
status:
  description: V(ok) when the endpoint is healthy, V(critical) otherwise.
  returned: always
  type: str
  sample: ok
reason:
  description: One line saying what was seen.
  returned: always
  type: str
  sample: "http://127.0.0.1:8080/health answered 200 (healthy) in 4 ms"
http_status:
  description: The HTTP status of the last answer, or null when nothing answered.
  returned: always
  type: int
  sample: 200
app_status:
  description: The C(status) field of the health document, when there is one.
  returned: always
  type: str
  sample: healthy
app_version:
  description: The C(version) field of the health document, when there is one.
  returned: always
  type: str
  sample: 1.0.0
checks:
  description: The C(checks) object of the health document, when there is one.
  returned: always
  type: dict
  sample: {"database": {"status": "ok", "latency_ms": 1.2}}
latency_ms:
  description: Latency of the last request in milliseconds.
  returned: always
  type: float
  sample: 3.4
attempts:
  description: How many requests were made.
  returned: always
  type: int
  sample: 3
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils.checks import CRITICAL, OK, wait_until_healthy


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            wait_timeout=dict(type="float", default=60),
            interval=dict(type="float", default=1),
            request_timeout=dict(type="float", default=5),
            validate_certs=dict(type="bool", default=True),
            fail_unhealthy=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["interval"] <= 0 or params["request_timeout"] <= 0:
        module.fail_json(msg="interval and request_timeout must be greater than 0")

    probe, attempts = wait_until_healthy(
        params["url"],
        wait_timeout=params["wait_timeout"],
        interval=params["interval"],
        request_timeout=params["request_timeout"],
        validate_certs=params["validate_certs"],
    )
    body = probe.body if isinstance(probe.body, dict) else {}
    result = dict(
        changed=False,
        status=OK if probe.healthy else CRITICAL,
        reason=probe.reason(),
        http_status=probe.http_status,
        app_status=probe.app_status,
        app_version=body.get("version"),
        checks=body.get("checks") or {},
        latency_ms=probe.latency_ms,
        attempts=attempts,
    )
    if not probe.healthy and params["fail_unhealthy"]:
        result["msg"] = "not healthy after %d attempt(s) in %.0f s: %s" % (attempts, params["wait_timeout"],
                                                                           result["reason"])
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
