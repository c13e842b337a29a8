#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: dr_writer
short_description: Write one record a second through the app until it stops answering (the DR drill's RPO probe)
version_added: "0.9.0"
description:
  - Creates one student through the SMS app's API (C(POST /api/v1/students)) every O(interval) seconds and records
    each write the app acknowledged (201) with its id and the time of the acknowledgement. It stops after
    O(stop_after_failures) failed writes in a row (the disaster), when O(stop_file) appears, or after O(max_seconds).
  - Run by C(playbooks/dr_drill.yml) as an C(async) task on an app host; the acknowledged writes are what the drill
    measures its RPO with (M(rollcall.ops.dr_report)). Only loopback URLs are accepted.
  - Meant for the drill's scratch stack only; it adds rows to the database it writes to.
author:
  - Rollcall contributors (@rollcall)
options:
  url:
    description: The app's base URL on this host, loopback only (for example V(http://127.0.0.1:8090)).
    type: str
    required: true
  prefix:
    description: The first characters of every written student number (letters and digits, at most 10).
    type: str
    required: true
  interval:
    description: Seconds between two writes.
    type: float
    default: 1.0
  max_seconds:
    description: Stop after this long whatever happens.
    type: int
    default: 1800
  stop_after_failures:
    description: Stop after this many failed writes in a row.
    type: int
    default: 3
  stop_file:
    description: Stop as soon as this file exists.
    type: path
  timeout:
    description: Seconds one write may take.
    type: float
    default: 5.0
notes:
  - In check mode nothing is written and RV(writes) is empty.
"""

EXAMPLES = r"""
- name: Write until the disaster
  rollcall.ops.dr_writer:
    url: http://127.0.0.1:8090
    prefix: DR1733
  async: 1900
  poll: 0
  register: drill_writer
"""

RETURN = r"""
writes:
  description: The acknowledged writes, in order, each with C(id), C(number) and C(at) (epoch seconds).
  returned: always
  type: list
  elements: dict
failures:
  description: Failed writes (the last ones are the disaster).
  returned: always
  type: int
stopped_because:
  description: Why the writer stopped - failures, stop_file, max_seconds or check_mode.
  returned: always
  type: str
last_error:
  description: The last failed write's error.
  returned: when a write failed
  type: str
"""

import json
import os
import re
import time
import urllib.error
import urllib.parse

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url


def write_one(url, number, seq, timeout):
    body = json.dumps({"student_number": number, "first_name": "Drill", "last_name": "Write %d" % seq,
                       "email": "%s@drill.invalid" % number.lower(), "grade_level": 1}).encode()
    response = open_url(url.rstrip("/") + "/api/v1/students", data=body, method="POST", timeout=timeout,
                        headers={"Content-Type": "application/json"}, use_proxy=False)
    answer = json.loads(response.read().decode() or "{}")
    if response.status != 201 or "id" not in answer:
        raise ValueError("the app answered %s without an id" % response.status)
    return answer["id"]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            prefix=dict(type="str", required=True),
            interval=dict(type="float", default=1.0),
            max_seconds=dict(type="int", default=1800),
            stop_after_failures=dict(type="int", default=3),
            stop_file=dict(type="path"),
            timeout=dict(type="float", default=5.0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if urllib.parse.urlparse(p["url"]).hostname not in ("127.0.0.1", "localhost", "::1"):
        module.fail_json(msg="the drill's writer stays on loopback; %s is not (use the app's 127.0.0.1 port)"
                             % p["url"])
    if not re.fullmatch(r"[A-Za-z0-9]{1,10}", p["prefix"]):
        module.fail_json(msg="prefix %r must be 1 to 10 letters or digits" % p["prefix"])
    if module.check_mode:
        module.exit_json(changed=False, writes=[], failures=0, stopped_because="check_mode")
    writes, failures, in_a_row, last_error = [], 0, 0, None
    started = time.monotonic()
    seq = 0
    stopped = "max_seconds"
    while time.monotonic() - started < p["max_seconds"]:
        if p["stop_file"] and os.path.exists(p["stop_file"]):
            stopped = "stop_file"
            break
        seq += 1
        number = "%s%06d" % (p["prefix"], seq)
        tick = time.monotonic()
        try:
            writes.append({"id": write_one(p["url"], number, seq, p["timeout"]), "number": number, "at": time.time()})
            in_a_row = 0
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures += 1
            in_a_row += 1
            last_error = str(exc)
            if in_a_row >= p["stop_after_failures"]:
                stopped = "failures"
                break
        time.sleep(max(0.0, p["interval"] - (time.monotonic() - tick)))
    result = dict(changed=bool(writes), writes=writes, failures=failures, stopped_because=stopped)
    if last_error:
        result["last_error"] = last_error
    module.exit_json(**result)


if __name__ == "__main__":
    main()
