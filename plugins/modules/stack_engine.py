#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: stack_engine
short_description: Refuse to change a stack's database engine, or to deploy it on a taken port
version_added: "0.4.0"
description:
  - Looks at what an SMS stack already has on a Docker engine (the app container's C(DATABASE_URL), the database
    container's image, the C(rollcall.engine) label of the database volume, and for stacks made before that label
    the files in the volumes) and fails, naming what it found and the way to change engines on purpose, when the
    stack holds another engine than O(engine).
  - A new stack (nothing found) accepts any engine.
  - With O(app_port) (app hosts) or O(db_port) (db hosts), also fails when that host port is published by a
    container that is not this stack's proxy (or database), or, when no container of the stack holds it, when
    another program listens there. The deploy would otherwise start the database and fail when its proxy cannot
    publish the port (or fail to start the database with the engine's raw error).
  - Read-only; supports check mode.
author:
  - Rollcall contributors (@rollcall)
options:
  engine:
    description:
      - The engine the deploy is about to use.
    type: str
    required: true
    choices: [postgresql, mariadb, sqlite]
  project:
    description:
      - The stack's name prefix (C(rollcall_project)).
    type: str
    required: true
  db_container:
    description:
      - The database container (default C(<project>-db)).
    type: str
  db_volume:
    description:
      - The database data volume (default C(<project>-dbdata)).
    type: str
  sqlite_volume:
    description:
      - The app's SQLite volume (default C(<project>-sqlite)).
    type: str
  uploads_volume:
    description:
      - The app's uploads volume (default C(<project>-uploads)); only whether it exists is reported, in RV(volumes).
    type: str
  peek_image:
    description:
      - An image on the host with C(ls), used to list an unlabelled volume's files when no container of the stack
        tells its engine. Omit to skip that look.
    type: str
  docker_host:
    description:
      - The Docker engine to ask.
    type: str
    default: unix:///var/run/docker.sock
  app_port:
    description:
      - The host port the stack's proxy publishes (C(rollcall_app_port)). Omit to skip the port check (db hosts).
    type: int
  app_bind_address:
    description:
      - The address the proxy publishes it on (C(rollcall_app_bind_address)).
    type: str
    default: 127.0.0.1
  port_setting:
    description:
      - The setting the refusal tells the user to change.
    type: str
    default: rollcall_app_port
  db_port:
    description:
      - The host port the stack's database publishes on a db host (C(rollcall_db_publish_port)), when it publishes
        a fixed one (C(rollcall_db_publish) set). Omit to skip that check.
    type: int
  db_bind_address:
    description:
      - The address the database publishes it on (C(rollcall_db_publish)).
    type: str
    default: 127.0.0.1
  host:
    description:
      - The host's name in the refusal (default the machine's host name).
    type: str
requirements:
  - docker (Python SDK)
"""

EXAMPLES = r"""
- name: Refuse to change the engine of a live stack
  rollcall.ops.stack_engine:
    engine: "{{ rollcall_db_engine }}"
    project: "{{ rollcall_project }}"
    peek_image: rollcall/postgres:15

- name: Also refuse an app port another container or program holds (app hosts)
  rollcall.ops.stack_engine:
    engine: "{{ rollcall_db_engine }}"
    project: "{{ rollcall_project }}"
    app_port: "{{ rollcall_app_port }}"
    app_bind_address: "{{ rollcall_app_bind_address }}"
"""

RETURN = r"""
engines:
  description: The engines the stack holds (empty for a new stack).
  returned: always
  type: list
  elements: str
evidence:
  description: What told each engine (source and engine).
  returned: always
  type: list
  elements: dict
volumes:
  description: The stack's data volumes (the database's, the SQLite file's, the uploads) and whether each exists on this
    engine.
  returned: always
  type: dict
  sample: {"sms-dbdata": true, "sms-sqlite": false, "sms-uploads": true}
port_holders:
  description: The running containers that publish O(app_port) or O(db_port), as [name, "ip:port"].
  returned: always
  type: list
  elements: list
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ..module_utils import ports, stack
from ..module_utils.docker import client
from ..module_utils.runner import RunnerError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            engine=dict(type="str", required=True, choices=list(stack.ENGINES)),
            project=dict(type="str", required=True),
            db_container=dict(type="str"),
            db_volume=dict(type="str"),
            sqlite_volume=dict(type="str"),
            uploads_volume=dict(type="str"),
            peek_image=dict(type="str"),
            docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
            app_port=dict(type="int"),
            app_bind_address=dict(type="str", default="127.0.0.1"),
            port_setting=dict(type="str", default="rollcall_app_port"),
            db_port=dict(type="int"),
            db_bind_address=dict(type="str", default="127.0.0.1"),
            host=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    project = p["project"]
    volumes, holders = {}, []
    wanted = [(service, p[key + "_bind_address"], p[key + "_port"])
              for service, key in (("app", "app"), ("database", "db")) if p[key + "_port"]]
    try:
        docker = client(p["docker_host"])
        held = [ports.port_holders(docker, address, port) for _service, address, port in wanted]
        holders = [h for found in held for h in found]
        evidence = stack.gather(docker, project, p["db_container"] or project + "-db",
                                p["db_volume"] or project + "-dbdata", p["sqlite_volume"] or project + "-sqlite",
                                peek_image=p["peek_image"], seen=volumes)
        uploads = p["uploads_volume"] or project + "-uploads"
        volumes[uploads] = stack.volume_exists(docker, uploads)
    except RunnerError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # noqa: BLE001 - the Docker API's errors all mean "could not look"
        module.fail_json(msg="Could not look at the stack %s on %s: %s; check the Docker engine and run again"
                         % (project, p["docker_host"], exc))
    engines = sorted({item["engine"] for item in evidence})
    found = dict(engines=engines, evidence=evidence, volumes=volumes, port_holders=holders)
    problem = stack.engine_conflict(p["engine"], evidence)
    if problem:
        module.fail_json(msg=problem, **found)
    for (service, address, port), these in zip(wanted, held, strict=True):
        asked = None if these else ports.bind_error_here(p["docker_host"], address, port)
        problem = stack.port_conflict(project, p["host"] or socket.gethostname(), address, port, these, asked,
                                      p["port_setting"] if service == "app" else "rollcall_db_publish_port",
                                      service, None if service == "app" else (p["db_container"] or project + "-db",))
        if problem:
            module.fail_json(msg=problem, **found)
    module.exit_json(changed=False, **found)


if __name__ == "__main__":
    main()
