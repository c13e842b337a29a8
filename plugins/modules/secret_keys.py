#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: secret_keys
short_description: Keep the app's previous SECRET_KEY valid for a grace period after a rotation
version_added: "0.3.0"
description:
  - Decides, on one app host, which earlier secret keys the app keeps accepting (C(SECRET_KEY_FALLBACKS)) and
    records them there, in O(state_dir)/O(app)/C(secret_keys.json) (mode 0600, in the 0700 directory of the
    release state).
  - Reads C(SECRET_KEY) and C(SECRET_KEY_FALLBACKS) of the live app container O(container). When its key differs
    from O(key), the key is being rotated - the live key becomes a fallback until now + O(grace_hours), so what
    it signed (download links already handed out) keeps working until then, and no longer.
  - Recorded fallbacks whose grace has ended are dropped, and so is a fallback equal to O(key). With
    O(grace_hours=0) no fallback is kept at all, earlier ones included - what any earlier key signed stops
    working with the next release (use it when a key leaked).
  - The record is the authority - an entry removed from it (or given an earlier C(expires)) is gone from the app
    with the next release. Only when there is no record yet are the fallbacks the live container runs with taken
    over.
  - It starts nothing; the caller (roles/sms_app) passes RV(env) as C(SECRET_KEY_FALLBACKS) to the release,
    whose zero-downtime switch puts it in place.
  - No key is ever reported except in RV(env); register the result with C(no_log) and show RV(summary).
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.secret_keys
notes:
  - Supports check mode and diff mode. In check mode nothing is written and the result says what would be; the
    diff shows fingerprints and expiries, never keys.
  - Needs the Docker SDK for Python on the host, like the community.docker modules.
"""

EXAMPLES = r"""
- name: Decide the fallbacks (the live key stays valid for a week when the inventory's key differs)
  rollcall.ops.secret_keys:
    app: sms
    key: "{{ rollcall_secret_key }}"
    container: sms-app
    grace_hours: 168
  register: sms_keys
  no_log: true  # the result holds the fallback keys (env)

- name: Say what happens to the keys
  ansible.builtin.debug:
    msg: "{{ sms_keys.summary }}"
"""

RETURN = r"""
env:
  description: The value for the app's C(SECRET_KEY_FALLBACKS) - a JSON list of C({"key", "expires"}), soonest
    expiry first; empty when there is no fallback. Holds keys - register with C(no_log).
  returned: success
  type: str
event:
  description: What the audit log should say about this run - V(secret_key_rotated), V(secret_key_fallbacks_dropped),
    V(secret_key_fallbacks_adopted) (taken over from the live container), or null (nothing worth a line).
  returned: success
  type: str
rotated:
  description: Whether the key changes on this host (the live container runs another key than O(key)).
  returned: success
  type: bool
current:
  description: Fingerprint of O(key) (the first 12 hex digits of its sha256).
  returned: success
  type: str
previous:
  description: Fingerprint of the key being replaced, when RV(rotated).
  returned: success
  type: str
kept:
  description: The fallback entry made for the key being replaced (fingerprint, retired_at, expires), or null.
  returned: success
  type: dict
fallbacks:
  description: The fallbacks after this run, soonest expiry first (fingerprint, retired_at, expires; no keys).
  returned: success
  type: list
  elements: dict
dropped:
  description: Fallbacks dropped by this run (fingerprint, expires, reason).
  returned: success
  type: list
  elements: dict
notes:
  description: What people should know (a previous key that could not be kept, fallbacks taken over).
  returned: success
  type: list
  elements: str
summary:
  description: One line with fingerprints and times, for the output and the audit log.
  returned: success
  type: str
record:
  description: Path of the record on the host.
  returned: always
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import secret_keys as sk
from ansible_collections.rollcall.ops.plugins.module_utils.docker import client as docker_client
from ansible_collections.rollcall.ops.plugins.module_utils.docker import container_env
from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError


def live_environment(container, docker_host):
    """The live container's environment (["NAME=value"]), None when it does not exist."""
    api = docker_client(docker_host)  # RunnerError without the Docker SDK or an engine that answers
    try:
        return container_env(api, container)
    finally:
        api.close()


def main():
    module = AnsibleModule(
        argument_spec=sk.argument_spec(),
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = sk.keep_on_host(p, lambda name: live_environment(name, p["docker_host"]), time.time(),
                                 check_mode=module.check_mode, diff=module._diff)
    except (sk.SecretKeyError, RunnerError) as exc:
        module.fail_json(msg="secret keys of %s: %s" % (p["app"], exc),
                         record="%s/%s/%s" % (p["state_dir"], p["app"], sk.RECORD))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
