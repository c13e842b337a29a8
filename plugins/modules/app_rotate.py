#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: app_rotate
short_description: Give the live name to the release that takes traffic; keep the one before as the standby or retire it
version_added: "0.2.0"
description:
  - After a release's switch (roles/sms_app C(switch.yml), C(promote.yml)) the container that now takes traffic,
    O(serving), is renamed O(live). The container that held O(live) becomes the warm standby O(standby) when
    O(keep_old) and it runs; otherwise it is retired - stopped gracefully (up to 30 s) and removed - and a standby
    from before is retired too. The proxy follows network aliases, not names, so no rename moves traffic.
  - With O(retire_later) the release that was live is not waited for - renamed C(<live>-retiring) and sent SIGTERM,
    it stops by itself (gunicorn finishes what it holds) - and O(action=wait_retired) later removes it once it has
    exited, or kills it after O(timeout) seconds. A rollback whose schema goes down next uses this, so the renames and
    the record do not wait for the graceful stop (playbooks/rollback.yml waits before the schema goes down).
  - A C(<live>-retiring) left by an earlier run is retired before anything else.
  - The decisions are in C(plugins/module_utils/rotation.py).
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.docker
options:
  action:
    description:
      - V(rotate) renames and retires; V(wait_retired) waits for the C(<live>-retiring) a rotate with O(retire_later)
        left, and removes it.
    type: str
    choices: [rotate, wait_retired]
    default: rotate
  serving:
    description:
      - The container that takes traffic now (the new release, or the standby a rollback switched back to). Required
        with O(action=rotate).
    type: str
  live:
    description:
      - The live name (C(<project>-app)).
    type: str
    required: true
  standby:
    description:
      - The warm standby's name (C(<project>-app-standby)). Required with O(action=rotate).
    type: str
  keep_old:
    description:
      - Keep the release that was live, when it runs, as the warm standby.
    type: bool
    default: true
  retire_later:
    description:
      - Retire the release that was live by a signal and a later O(action=wait_retired) instead of waiting for its stop.
    type: bool
    default: false
  timeout:
    description:
      - O(action=wait_retired) - seconds to wait for the retiring release to stop by itself before it is killed.
    type: int
    default: 40
notes:
  - Supports check mode (reports the steps, changes nothing) and diff mode (the names before and after).
"""

EXAMPLES = r"""
- name: Make the new release the live one, the old one the warm standby
  rollcall.ops.app_rotate:
    serving: sms-app-next
    live: sms-app
    standby: sms-app-standby

- name: Back on the warm standby; the newer release stops by itself (the schema goes down next)
  rollcall.ops.app_rotate:
    serving: sms-app-standby
    live: sms-app
    standby: sms-app-standby
    keep_old: false
    retire_later: true

- name: Before the schema goes down, wait for the newer release to be gone
  rollcall.ops.app_rotate:
    action: wait_retired
    live: sms-app
"""

RETURN = r"""
summary:
  description: One line - which release is live now and what became of the one before.
  returned: action=rotate
  type: str
  sample: 1.0.0 is sms-app (1.1.0 stops as sms-app-retiring)
steps:
  description: The steps, in order, each an action (V(retire), V(rename), V(signal)), a container name and, for a
    rename, the new name. In check mode, the steps a run would take.
  returned: action=rotate
  type: list
  elements: list
retired:
  description: O(action=wait_retired) - V(none) (nothing to wait for), V(removed) (it had stopped by itself) or
    V(killed) (still running after O(timeout)).
  returned: action=wait_retired
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import rotation
from ansible_collections.rollcall.ops.plugins.module_utils.docker import client as docker_client
from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError

try:
    from docker.errors import APIError as DockerError
except ImportError:  # docker_client says what to install

    class DockerError(Exception):
        pass


def rotate(module, api, p):
    names = [p["serving"], p["live"], p["standby"], rotation.retiring_name(p["live"])]
    found = rotation.find(api, names)
    steps, summary = rotation.plan(p["serving"], p["live"], p["standby"], found, p["keep_old"], p["retire_later"])
    if not module.check_mode:
        rotation.apply(api, steps)
    diff = {"before": "\n".join(sorted("%s: %s" % (name, found[name].get("version")) for name in found)) + "\n",
            "after": summary + "\n"}
    return dict(changed=bool(steps), summary=summary, steps=[list(step) for step in steps], diff=diff)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", choices=["rotate", "wait_retired"], default="rotate"),
            serving=dict(type="str"),
            live=dict(type="str", required=True),
            standby=dict(type="str"),
            keep_old=dict(type="bool", default=True),
            retire_later=dict(type="bool", default=False),
            timeout=dict(type="int", default=40),
            docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
        ),
        required_if=[("action", "rotate", ("serving", "standby"))],
        supports_check_mode=True,
    )
    p = module.params
    try:
        api = docker_client(p["docker_host"])
        try:
            if p["action"] == "rotate":
                result = rotate(module, api, p)
            elif module.check_mode:
                result = dict(changed=rotation.retiring_name(p["live"]) in rotation.find(
                    api, [rotation.retiring_name(p["live"])]), retired="none")
            else:
                retired = rotation.wait_retired(api, p["live"], p["timeout"])
                result = dict(changed=retired != "none", retired=retired)
        finally:
            api.close()
    except RunnerError as exc:
        module.fail_json(msg=str(exc))
    except rotation.RotationError as exc:
        module.fail_json(msg="%s; run the deploy or rollback again" % exc)
    except DockerError as exc:
        said = getattr(exc, "explanation", None) or exc
        module.fail_json(msg="renaming or retiring the app's containers around %s failed: %s. The proxy still sends "
                         "traffic where it did; run the deploy or rollback again." % (p["live"], said))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
