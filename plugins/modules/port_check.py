#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: port_check
short_description: Refuse to start services whose host ports another container or program holds
version_added: "1.0.0"
description:
  - For each service, the host port its container will listen on or publish is taken when a running container
    other than the service's own publishes it, or, when the service's own container is not running, when another
    program listens there (a bind on the host, closed at once).
  - A container on the host network whose port is taken keeps restarting ("address already in use") and one that
    publishes it fails at its start with the engine's raw error; asking first lets the run stop before anything
    changes and say what holds the port.
  - Read-only; supports check mode. Fails naming every taken port and the setting that moves ours.
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.docker
options:
  services:
    description:
      - The services this host is about to run.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: What the refusal calls it (C(Prometheus)).
        type: str
        required: true
      container:
        description: Its container; running, it is taken to hold its own port (a re-run).
        type: str
        required: true
      address:
        description: The address it listens on or publishes on (empty or C(0.0.0.0) for every address).
        type: str
        default: ""
      port:
        description: The host port.
        type: int
        required: true
      key:
        description: Its key under O(setting), when that is a mapping of ports (C(prometheus)).
        type: str
  setting:
    description:
      - The setting the refusal names to move our services to other ports (C(rollcall_monitoring_ports)).
    type: str
    required: true
  host:
    description:
      - The host's name in the refusal (default the machine's host name).
    type: str
"""

EXAMPLES = r"""
- name: Refuse to start the monitoring stack on ports another program holds
  rollcall.ops.port_check:
    services:
      - {name: Prometheus, container: sms-prometheus, address: 127.0.0.1, port: 9090, key: prometheus}
      - {name: the node exporter, container: sms-node-exporter, address: 127.0.0.1, port: 9100, key: node}
    setting: rollcall_monitoring_ports
"""

RETURN = r"""
taken:
  description: One line per taken port, naming what holds it.
  returned: always
  type: list
  elements: str
  sample: ["Prometheus's port 127.0.0.1:9090 is taken by another program (Address already in use)"]
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import ports
from ansible_collections.rollcall.ops.plugins.module_utils.docker import client


def main():
    module = AnsibleModule(
        argument_spec=dict(
            services=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                container=dict(type="str", required=True),
                address=dict(type="str", default=""),
                port=dict(type="int", required=True),
                key=dict(type="str", no_log=False),
            )),
            setting=dict(type="str", required=True),
            host=dict(type="str"),
            docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    taken, keys = [], []
    try:
        docker = client(p["docker_host"])
        for service in p["services"]:
            state = ports.container_state(docker, service["container"])
            holders = ports.port_holders(docker, service["address"], service["port"])
            asked = None if state == "running" else ports.bind_error_here(p["docker_host"], service["address"],
                                                                          service["port"])
            said = ports.service_taken(service, state, holders, asked)
            if said:
                taken.append(said)
                keys += [service["key"]] if service["key"] else []
    except Exception as exc:  # noqa: BLE001 - the Docker API's errors all mean "could not look"
        module.fail_json(msg="Could not ask the Docker engine at %s who holds the ports: %s; check the engine "
                             "(docker ps) and run again" % (p["docker_host"], exc))
    problem = ports.refusal(p["host"] or socket.gethostname(), taken, p["setting"], keys)
    if problem:
        module.fail_json(msg=problem, taken=taken)
    module.exit_json(changed=False, taken=taken)


if __name__ == "__main__":
    main()
