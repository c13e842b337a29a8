#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: app_standby
short_description: Keep the app's earlier secret keys and send traffic back to the warm standby, in one run
version_added: "0.9.0"
description:
  - The first step of a rollback to the release the warm standby runs (roles/sms_app C(standby.yml)), done in one
    module run because traffic waits for it.
  - First what M(rollcall.ops.secret_keys) does, with the same options and results - which earlier secret keys
    the app keeps accepting (C(SECRET_KEY_FALLBACKS)), recorded in O(state_dir)/O(app)/C(secret_keys.json).
    They are part of the release's settings.
  - Then the release's settings (O(settings), the fallbacks, O(extra_settings) over both) and O(image_id) name the
    network alias only a container started with exactly that image and those settings answers to. The proxy
    container O(proxy_container) fetches that alias's C(/health/ready) (which includes the app's schema check) and,
    on 200, switches traffic to it. Anything else - no such container, not ready, other settings, no proxy - changes
    no traffic, and RV(ready) is false - the caller then starts the release as usual.
  - In check mode nothing is written and the proxy is only asked; RV(ready) says whether the standby would take
    traffic.
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.secret_keys
options:
  proxy_container:
    description:
      - Name of the proxy container in front of the app, which asks the standby and switches.
    type: str
    required: true
  settings:
    description:
      - The release's settings without C(SECRET_KEY_FALLBACKS) (the role's C(sms_app_base_env)). Holds secrets.
    type: dict
    required: true
  extra_settings:
    description:
      - Settings laid over the others (C(rollcall_app_extra_env)).
    type: dict
    default: {}
  image_id:
    description:
      - The image ID the release history recorded for the release the standby is to run.
    type: str
    required: true
notes:
  - Supports check mode (the proxy is only asked) and diff mode (the secret keys' record, fingerprints only).
  - Needs the Docker SDK for Python on the host, like the community.docker modules.
"""

EXAMPLES = r"""
- name: Keep the earlier secret keys, and switch back to the warm standby when it runs 1.0.0 with these settings
  rollcall.ops.app_standby:
    app: sms
    key: "{{ rollcall_secret_key }}"
    container: sms-app
    proxy_container: sms-proxy
    settings: "{{ sms_app_base_env }}"
    image_id: "{{ rollback_release.image_id }}"
  register: sms_standby
  no_log: true  # the result holds the fallback keys (env)

- name: Say where traffic is
  ansible.builtin.debug:
    msg: "{{ sms_standby.summary }}; standby {{ 'took traffic' if sms_standby.switched else 'not used' }}"
"""

RETURN = r"""
env:
  description: As M(rollcall.ops.secret_keys) - the value for C(SECRET_KEY_FALLBACKS); holds keys.
  returned: success
  type: str
event:
  description: As M(rollcall.ops.secret_keys).
  returned: success
  type: str
summary:
  description: As M(rollcall.ops.secret_keys) - one line with fingerprints and times.
  returned: success
  type: str
keys_changed:
  description: Whether the secret keys' record changed (or, in check mode, would).
  returned: success
  type: bool
ready:
  description: Whether the standby answered C(/health/ready) under the alias of these settings.
  returned: success
  type: bool
switched:
  description: Whether traffic now goes to the standby (never in check mode).
  returned: success
  type: bool
alias:
  description: The alias asked (project and 12 hex digits; no setting can be read from it).
  returned: success
  type: str
record:
  description: Path of the secret keys' record on the host.
  returned: always
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import secret_keys as sk
from ansible_collections.rollcall.ops.plugins.module_utils import standby
from ansible_collections.rollcall.ops.plugins.module_utils.docker import client as docker_client
from ansible_collections.rollcall.ops.plugins.module_utils.docker import container_env
from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError


def ask_and_switch(api, proxy, address, ask_only):
    """Run the switch in the proxy; True when the standby answered (and, unless ``ask_only``, took traffic)."""
    import docker.errors

    try:
        code, _output = api.containers.get(proxy).exec_run(standby.switch_argv(address, ask_only))
    except docker.errors.APIError:  # no proxy, or it is not running: the usual start follows
        return False
    return code == 0


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sk.argument_spec(),
            proxy_container=dict(type="str", required=True),
            settings=dict(type="dict", required=True, no_log=True),
            extra_settings=dict(type="dict", default={}, no_log=True),
            image_id=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    # A no_log dict masks each of its values wherever it appears in the result, as a substring: "1" (TRUST_PROXY)
    # would turn every 1 in the summary's times into ********. The secrets among the settings are long (a
    # SECRET_KEY, a URL with a password); the short values are not secrets, and the result never holds a setting.
    module.no_log_values = set(value for value in module.no_log_values if len(value) >= 8)
    p = module.params
    try:
        api = docker_client(p["docker_host"])
        try:
            result = sk.keep_on_host(p, lambda name: container_env(api, name), time.time(),
                                     check_mode=module.check_mode, diff=module._diff)
            env = standby.settings(p["settings"], result["env"], p["extra_settings"])
            name = standby.alias(p["app"], env, p["image_id"])
            ready = ask_and_switch(api, p["proxy_container"], "%s:%d" % (name, standby.PORT), module.check_mode)
        finally:
            api.close()
    except (sk.SecretKeyError, RunnerError) as exc:
        module.fail_json(msg="secret keys of %s: %s" % (p["app"], exc),
                         record="%s/%s/%s" % (p["state_dir"], p["app"], sk.RECORD))
    switched = ready and not module.check_mode
    result.update(keys_changed=result["changed"], ready=ready, switched=switched, alias=name,
                  changed=result["changed"] or switched)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
