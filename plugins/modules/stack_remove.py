#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: stack_remove
short_description: Remove an SMS stack's containers, network and volumes in one step
version_added: "1.0.0"
description:
  - Removes the named containers in the order given (each stopped gracefully first, then removed with its anonymous
    volumes), then the network (its remaining endpoints disconnected first), then the named volumes, over one
    connection to the Docker engine. What is not there is fine.
  - One module run instead of one per container and per volume (C(community.docker.docker_container) in a loop),
    so the teardown of a stack, and of every test stack, costs one process instead of about twenty.
  - Supports check mode (lists what would go) and diff mode (the containers, network and volumes before and after).
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.docker
options:
  containers:
    description:
      - Container names, removed in this order (the proxy before the app, the app before the database).
    type: list
    elements: str
    default: []
  network:
    description:
      - The stack network to remove after the containers; omit or leave empty to keep it (another host's
        containers may still use a shared one).
    type: str
  volumes:
    description:
      - Named volumes to remove after the containers (the data).
    type: list
    elements: str
    default: []
  stop_timeout:
    description:
      - Seconds a container gets to stop before it is killed; default its own stop timeout, else Docker's 10 s.
    type: int
"""

EXAMPLES = r"""
- name: Remove the stack, keeping its data volumes
  rollcall.ops.stack_remove:
    containers: [sms-proxy, sms-app, sms-db]
    network: sms-net

- name: Remove the stack and its data (teardown_volumes)
  rollcall.ops.stack_remove:
    containers: [sms-proxy, sms-app, sms-db]
    network: sms-net
    volumes: [sms-dbdata, sms-uploads]
"""

RETURN = r"""
removed:
  description: What was removed (in check mode, what would be).
  returned: always
  type: dict
  contains:
    containers:
      description: The containers that were there, in the order removed.
      type: list
      elements: str
    network:
      description: The network, or null when it was not there or not asked for.
      type: str
    volumes:
      description: The volumes that were there.
      type: list
      elements: str
    network_kept:
      description:
        - Why the network stays although it was asked for, else null. The one case is the Docker engine refusing
          to remove a network it still counts an endpoint on after every container left it (an engine bug that a
          restart of the engine clears); the run then warns and does not fail.
      type: str
  sample: {"containers": ["sms-proxy", "sms-app", "sms-db"], "network": "sms-net", "volumes": [], "network_kept": null}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import docker as dockerlib
from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            containers=dict(type="list", elements="str", default=[]),
            network=dict(type="str"),
            volumes=dict(type="list", elements="str", default=[]),
            stop_timeout=dict(type="int"),
            docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        removed = dockerlib.remove_stack(p["containers"], p["volumes"], p["network"] or None, p["docker_host"],
                                         module.check_mode, p["stop_timeout"])
    except RunnerError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # noqa: BLE001 - the engine's own words, with what to do
        module.fail_json(msg="removing the stack failed on %s: %s; run again (what is gone stays gone)"
                         % (p["docker_host"], exc))
    changed = bool(removed["containers"] or removed["network"] or removed["volumes"])
    if removed["network_kept"]:
        module.warn(removed["network_kept"])
    result = dict(changed=changed, removed=removed)
    if module._diff:
        result["diff"] = dict(before={"containers": removed["containers"], "network": removed["network"],
                                      "volumes": removed["volumes"]},
                              after={"containers": [], "network": None, "volumes": []})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
