#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: container_health
short_description: Wait until a container's own health test passes, running it directly
version_added: "1.0.0"
description:
  - Runs the container's own health test (its image's C(HEALTHCHECK), the same command Docker runs) inside it, again
    every O(interval) seconds, until it passes, the container stops, or O(timeout) seconds pass.
  - Our images let Docker probe every 30 s (each probe is an exec, about a tenth of a core-second of the engine's
    time), so Docker's own verdict (C(healthy)) comes 30 s after a start. A deploy waiting for it would wait half a
    minute for a database that answered in two seconds; this module asks the same test directly instead.
  - Changes nothing, so it runs in check mode too. Fails, naming the container, its state and the test's last words,
    when the test does not pass, the container stops, is missing, or has no health test.
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.docker
options:
  name:
    description:
      - The container.
    type: str
    required: true
  timeout:
    description:
      - Seconds to wait for the test to pass.
    type: int
    default: 120
  interval:
    description:
      - Seconds between two runs of the test.
    type: float
    default: 1
"""

EXAMPLES = r"""
- name: Wait until the database answers its health test
  rollcall.ops.container_health:
    name: sms-db
    timeout: 120
"""

RETURN = r"""
attempts:
  description: How many times the test ran.
  returned: always
  type: int
  sample: 3
waited_s:
  description: Seconds waited until it passed (or gave up).
  returned: always
  type: float
  sample: 2.1
output:
  description: What the test printed the last time it ran.
  returned: always
  type: str
  sample: ""
state:
  description: The container's status (running, exited, ...).
  returned: always
  type: str
  sample: running
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import docker as dockerlib
from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            timeout=dict(type="int", default=120),
            interval=dict(type="float", default=1),
            docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        api = dockerlib.client(p["docker_host"]).api
        found = dockerlib.wait_health_test(api, p["name"], p["timeout"], p["interval"])
    except RunnerError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # noqa: BLE001 - the engine's own words, with what to do
        module.fail_json(msg="could not run the health test of %s on %s: %s; check the engine (docker ps) and run "
                             "again" % (p["name"], p["docker_host"], exc))
    result = dict(changed=False, attempts=found["attempts"], waited_s=found["waited_s"], output=found["output"],
                  state=found["state"])
    if not found["passed"]:
        said = found["output"].strip().splitlines()[-1][:300] if found["output"].strip() else "nothing"
        module.fail_json(msg="Container %s is not healthy: %s (it is %s; its health test, run %d times, last said: "
                             "%s). Its logs say why: docker logs %s"
                             % (p["name"], found["reason"], found["state"], found["attempts"], said, p["name"]),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
