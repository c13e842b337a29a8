#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: image_refresh
short_description: Say which Debian package updates an image's base has, and build a refreshed image with them
version_added: "0.3.0"
description:
  - The images part of patching (issue 13 item 5). The image is named O(image) (C(REPOSITORY:TAG)) on the Docker
    engine of the managed host; images are built there, nothing is pulled or pushed.
  - O(state=plan) (read only, in every mode) starts a throwaway container of the image as root, adds the Debian
    security and updates suites of the image's release (O(security_sources); many base images list only the main
    suite), refreshes apt's lists and asks apt to simulate the upgrade (C(apt-get -s upgrade)). It reports every
    package that would change, from which version to which, and which come from the security archive. The
    container is removed.
  - O(state=refreshed) plans the same way, then, when updates are pending (or O(force)), builds a new image FROM the
    current one that upgrades its packages, cleans apt's lists and returns to the image's user, tagged
    C(REPOSITORY:<version>-p<YYYYMMDD>) (C(.2), C(.3)... when that tag exists; an existing tag is never moved),
    with the labels C(rollcall.refreshed-from) (the image ID it was built from), C(rollcall.refreshed-at) and
    C(rollcall.refreshed-packages). A refreshed image's refresh starts again from its base version
    (C(1.0.0-p20261202) becomes C(1.0.0-p20261203)). With nothing pending no image is built and C(changed) is false.
  - The decisions are C(plugins/module_utils/images.py) (pure, unit tested); the engine is reached through the
    Docker SDK (C(plugins/module_utils/docker.py)'s client).
author:
  - Rollcall contributors (@rollcall)
options:
  image:
    description: The image to look at or refresh, C(REPOSITORY:TAG) (e.g. C(rollcall/sms-app:1.0.0)).
    type: str
    required: true
  state:
    description: V(plan) (read only) or V(refreshed) (build the refreshed image when its base has updates).
    type: str
    choices: [plan, refreshed]
    default: plan
  force:
    description: With O(state=refreshed), build a refreshed image even when no update is pending.
    type: bool
    default: false
  security_sources:
    description:
      - Add the Debian security and updates suites of the image's release (read from its C(/etc/os-release)) for the
        plan and the build; the refreshed image keeps its own sources list unchanged. Images that are not Debian
        get nothing added.
    type: bool
    default: true
  mirror:
    description: The Debian mirror of those suites.
    type: str
    default: http://deb.debian.org
  known_plan:
    description:
      - The result of an O(state=plan) run for this image moments ago (RV(image_id) and RV(changes) are used). When
        its RV(image_id) is the image's ID now, O(state=refreshed) builds from it instead of asking apt again (one
        throwaway container and apt's lists fewer); otherwise it is ignored.
    type: dict
  date:
    description: The C(YYYYMMDD) of the refreshed tag; default today (UTC).
    type: str
  docker_host:
    description: The Docker engine (default the environment's C(DOCKER_HOST) or the local socket).
    type: str
  timeout:
    description: Seconds the plan or the build may take.
    type: int
    default: 900
requirements:
  - The Docker SDK for Python (C(docker)) on the managed host.
notes:
  - Supports check mode; O(state=refreshed) then reports the plan and the tag it would build, and builds nothing.
  - The image must have C(apt-get) and C(sh). Its user, entrypoint, command, environment, health check and labels
    are kept (the build adds layers FROM it).
"""

EXAMPLES = r"""
- name: Which updates does the app image's base have?
  rollcall.ops.image_refresh:
    image: rollcall/sms-app:1.0.0
  register: app_image_plan

- name: Build the refreshed app image (nothing when nothing is pending)
  rollcall.ops.image_refresh:
    image: rollcall/sms-app:1.0.0
    state: refreshed
  register: app_image_refresh

- name: Deploy it like a release
  ansible.builtin.include_role:
    name: rollcall.ops.sms_app
  vars:
    sms_app_version: "{{ app_image_refresh.refreshed.version }}"
    sms_app_image: "{{ app_image_refresh.refreshed.image }}"
  when: app_image_refresh.changed
"""

RETURN = r"""
image:
  description: O(image).
  returned: always
  type: str
image_id:
  description: The ID of O(image) now.
  returned: always
  type: str
changes:
  description: The pending package changes in the image (package, from, to, security, action).
  returned: always
  type: list
  elements: dict
pending:
  description: How many packages would change.
  returned: always
  type: int
security:
  description: How many of them come from the security archive.
  returned: always
  type: int
summary:
  description: One line.
  returned: always
  type: str
decision:
  description: With O(state=refreshed), C(action) (V(build) or V(nothing)) and C(why).
  returned: state is refreshed
  type: dict
refreshed:
  description:
    - With O(state=refreshed), the refreshed image - C(image) (C(REPOSITORY:TAG)), C(version) (its tag),
      C(image_id) (absent in check mode) - or null when nothing was built.
  returned: state is refreshed
  type: dict
"""

import io
import json
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import images
from ansible_collections.rollcall.ops.plugins.module_utils.docker import client as docker_client
from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError


def simulate(api, image_id, script, timeout):
    """Run ``script`` with sh as root in a throwaway container of the image; (exit code, output)."""
    container = api.containers.create(image_id, entrypoint=["sh", "-c"], command=[script], user="0",
                                      labels={"rollcall.throwaway": "1"}, network_mode="bridge")
    try:
        container.start()
        status = container.wait(timeout=timeout)
        output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        return status.get("StatusCode", 1), output
    finally:
        # v=True: the image's VOLUME paths got anonymous volumes, left empty on the engine otherwise
        container.remove(force=True, v=True)


def build(api, tag, dockerfile, timeout):
    """Build ``dockerfile`` (no context) as ``tag``; the new image ID, or RunnerError with the build's last words."""
    lines = []
    try:
        stream = api.api.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True,
                               pull=False, decode=True, timeout=timeout)
        for chunk in stream:
            if "error" in chunk:
                raise RunnerError("building %s failed: %s (last lines: %s)" % (
                    tag, chunk["error"].strip(), " | ".join(lines[-5:])))
            text = (chunk.get("stream") or "").strip()
            if text:
                lines.append(text)
    except RunnerError:
        raise
    except Exception as exc:  # noqa: BLE001 - the engine's words
        raise RunnerError("building %s failed: %s" % (tag, exc)) from None
    return api.images.get(tag).id


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str", required=True),
            state=dict(type="str", choices=["plan", "refreshed"], default="plan"),
            force=dict(type="bool", default=False),
            security_sources=dict(type="bool", default=True),
            mirror=dict(type="str", default="http://deb.debian.org"),
            known_plan=dict(type="dict"),
            date=dict(type="str"),
            docker_host=dict(type="str"),
            timeout=dict(type="int", default=900),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        repo, _tag = images.split_ref(p["image"])
        api = docker_client(p["docker_host"], timeout=p["timeout"])
        try:
            source = api.images.get(p["image"])
        except Exception:  # noqa: BLE001 - not found or the engine's error: the same advice
            module.fail_json(msg="Image %s is not on this host's engine: build it (make images) or load it "
                                 "(docker save IMAGE | ssh HOST docker load) and run again." % p["image"])
        codename = None
        if p["security_sources"]:
            codename = images.debian_codename(simulate(api, source.id, images.OS_RELEASE_SCRIPT, p["timeout"])[1])
        known = p["known_plan"] if p["state"] == "refreshed" else None
        if images.plan_still_holds(known, source.id):
            result = images.replan(p["image"], source.id, known["changes"])
        else:
            code, output = simulate(api, source.id, images.probe_script(p["mirror"], p["security_sources"], codename),
                                    p["timeout"])
            if code != 0:
                module.fail_json(msg="apt could not plan the upgrade inside %s (exit %s): %s. Nothing was changed."
                                 % (p["image"], code, " | ".join(output.strip().splitlines()[-5:]) or "no output"))
            result = images.plan(p["image"], source.id, output)
        result["changed"] = False
        if p["state"] == "plan":
            module.exit_json(**result)

        decision = images.decide(result, p["force"])
        result["decision"] = decision
        result["refreshed"] = None
        if decision["action"] == "nothing":
            module.exit_json(**result)
        date = p["date"] or time.strftime("%Y%m%d", time.gmtime())
        existing = [t.rpartition(":")[2] for image in api.images.list(name=repo) for t in image.tags
                    if t.rpartition(":")[0] == repo]
        tag = images.refreshed_tag(p["image"], date, existing)
        result["refreshed"] = {"image": tag, "version": tag.rpartition(":")[2]}
        result["changed"] = True
        if module.check_mode:
            result["summary"] += "; would build %s (%s)" % (tag, decision["why"])
            module.exit_json(**result)
        user = (source.attrs.get("Config") or {}).get("User") or "root"
        the_labels = images.labels(source.id, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), result["changes"])
        # FROM the image ID, so that the build starts from exactly the image planned above.
        dockerfile = images.dockerfile(source.id, user, codename, p["mirror"], p["security_sources"], the_labels)
        result["refreshed"]["image_id"] = build(api, tag, dockerfile, p["timeout"])
        result["summary"] += "; built %s (%s)" % (tag, decision["why"])
        module.exit_json(**result)
    except (images.ImageError, RunnerError) as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # noqa: BLE001 - the engine's words, with what to do
        module.fail_json(msg="image_refresh of %s failed: %s" % (p["image"], json.dumps(str(exc))[1:-1]))


if __name__ == "__main__":
    main()
