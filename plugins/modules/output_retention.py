#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: output_retention
short_description: Keep Rollcall's own outputs (audit log, reports, incident bundles) within their retention
version_added: "0.3.0"
description:
  - In one directory, gzips the files matching O(patterns) that are older than O(gzip_after_days), deletes those
    older than O(delete_after_days), then deletes the oldest until all of them together fit O(max_total_size).
  - Rotates a live append-only file (O(rotate), e.g. C(audit.jsonl)) once a month to C(<stem>-YYYY-MM<ext>)
    (the month of its first line) without losing a line written at the same time; the rotated files are then
    gzipped and deleted like the others.
  - Works only inside O(path), on its direct entries, and never follows a symlink (a symlink matching the
    patterns is reported in RV(untouched) and left alone; a symlinked O(path) is refused).
  - A file is gzipped atomically (a temp file, fsync, rename to C(<name>.gz), then the original is removed); the
    C(.gz) keeps the original's mode and modification time, so its age keeps counting from the last write.
  - Check mode reports what would be done and changes nothing; C(--diff) shows the entries before and after.
author:
  - Rollcall contributors (@rollcall)
options:
  path:
    description:
      - The directory. A missing directory is not an error (nothing to do, RV(exists) is false).
    type: path
    required: true
  patterns:
    description:
      - Shell patterns of the entry names this policy manages; nothing else in O(path) is touched. Names
        starting with C(.) never match.
    type: list
    elements: str
    default: ['*']
  gzip_after_days:
    description: Gzip matching files (not already C(.gz)) older than this many days. 0 never gzips.
    type: int
    default: 0
  delete_after_days:
    description:
      - Delete matching entries older than this many days. 0 never deletes by age. Must be more than
        O(gzip_after_days) when both are set.
    type: int
    default: 0
  max_total_size:
    description:
      - Cap on the total size of the matching entries (after gzip decisions, counted at their current size),
        such as C(10G) or C(500M) (1024-based) or bytes; the oldest are deleted until they fit. C(0) means no cap.
    type: str
    default: "0"
  rotate:
    description:
      - Name (in O(path), no C(/)) of a live append-only JSON-lines file to rotate monthly. It is never gzipped
        or deleted itself. Its rotated names C(<stem>-YYYY-MM<ext>) should match O(patterns).
    type: str
  rotate_time_field:
    description: The field of each line of O(rotate) that holds its ISO time.
    type: str
    default: at
  directories:
    description:
      - Whether matching directories may be deleted (with all under them; symlinks inside are removed, not
        followed) by age or size. Directories are never gzipped.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode.
  - Writers of the rotated file must open it by name for every write with C(O_APPEND) (as
    C(rollcall.ops.app_release) does for C(audit.jsonl)); then a line written during the rotation lands in the
    rotated file or in the new live one, never nowhere.
"""

EXAMPLES = r"""
- name: Keep the audit log a year, gzipped after 30 days, one file a month
  rollcall.ops.output_retention:
    path: /var/lib/rollcall/rollcall
    rotate: audit.jsonl
    patterns: ['audit-*.jsonl', 'audit-*.jsonl.gz']
    gzip_after_days: 30
    delete_after_days: 365

- name: Keep incident bundles 90 days (the archives and the directories they were made from)
  rollcall.ops.output_retention:
    path: /var/lib/rollcall/incidents/rollcall
    patterns: ['[0-9]*']
    directories: true
    delete_after_days: 90
    max_total_size: 10G
"""

RETURN = r"""
exists:
  description: Whether O(path) exists.
  returned: always
  type: bool
rotated:
  description: The live file's rotation, C(from) and C(to) names, or null.
  returned: always
  type: dict
gzipped:
  description: Names gzipped (in check mode, that would be), each now C(<name>.gz).
  returned: always
  type: list
  elements: str
deleted:
  description: Names deleted (in check mode, that would be).
  returned: always
  type: list
  elements: str
kept:
  description: Matching names kept as they are.
  returned: always
  type: list
  elements: str
untouched:
  description: Matching names left alone and why (symlinks, special files, an existing C(.gz)).
  returned: always
  type: dict
reasons:
  description: Why each name was rotated, gzipped or deleted.
  returned: always
  type: dict
retried:
  description: Names that changed while being gzipped; left as they were, tried again on the next run.
  returned: always
  type: list
  elements: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import retention


def _listing(names):
    return "".join("%s\n" % n for n in sorted(names))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            patterns=dict(type="list", elements="str", default=["*"]),
            gzip_after_days=dict(type="int", default=0),
            delete_after_days=dict(type="int", default=0),
            max_total_size=dict(type="str", default="0"),
            rotate=dict(type="str"),
            rotate_time_field=dict(type="str", default="at"),
            directories=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    empty = dict(changed=False, exists=False, rotated=None, gzipped=[], deleted=[], kept=[], untouched={},
                 reasons={}, retried=[])
    if p["rotate"] is not None and (not p["rotate"] or "/" in p["rotate"] or p["rotate"] in (".", "..")):
        module.fail_json(msg="rotate must be a file name inside path (no '/'), got %r" % p["rotate"])
    try:
        cap = retention.parse_size(p["max_total_size"])
        retention.check_policy(p["gzip_after_days"], p["delete_after_days"], cap)
    except retention.RetentionError as exc:
        module.fail_json(msg=str(exc))
    try:
        dir_fd = retention.open_directory(p["path"])
    except FileNotFoundError:
        module.exit_json(**empty)
    except (OSError, retention.RetentionError) as exc:
        module.fail_json(msg="cannot open %s: %s" % (p["path"], getattr(exc, "strerror", None) or exc))
    retried = []
    step = "reading the directory"
    try:
        entries = retention.list_entries(dir_fd)
        month = None
        live = [e for e in entries if p["rotate"] and e["name"] == p["rotate"] and e["kind"] == "file"]
        if live:
            month = retention.first_month(retention.read_head(dir_fd, p["rotate"]), p["rotate_time_field"])
        todo = retention.plan(entries, time.time(), patterns=p["patterns"], gzip_after_days=p["gzip_after_days"],
                              delete_after_days=p["delete_after_days"], max_total_bytes=cap, rotate=p["rotate"],
                              rotate_month=month, directories=p["directories"])
        before = [e["name"] for e in entries]
        after = set(before) - set(todo["delete"]) - set(todo["gzip"])
        after |= {n + ".gz" for n in todo["gzip"]}
        if todo["rotate"]:
            after = (after - {todo["rotate"]["from"]}) | {todo["rotate"]["to"]}
        diff = {"before": _listing(before), "after": _listing(after),
                "before_header": p["path"], "after_header": p["path"]}
        if not module.check_mode:
            step = "rotating %s" % p["rotate"]
            if todo["rotate"]:
                retention.rotate_file(dir_fd, todo["rotate"]["from"], todo["rotate"]["to"])
            for name in todo["delete"]:
                step = "deleting %s" % name
                retention.delete_entry(dir_fd, name)
            for name in todo["gzip"]:
                step = "gzipping %s" % name
                if not retention.gzip_file(dir_fd, name):
                    retried.append(name)
    except (OSError, retention.RetentionError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        module.fail_json(msg="retention in %s stopped while %s: %s; fix that (permissions, disk space) and run "
                             "again, what was done stays done" % (p["path"], step, detail))
    finally:
        os.close(dir_fd)
    gzipped = [n for n in todo["gzip"] if n not in retried]
    changed = bool(todo["rotate"] or todo["delete"] or gzipped)
    module.exit_json(changed=changed, exists=True, rotated=todo["rotate"], gzipped=gzipped, deleted=todo["delete"],
                     kept=todo["kept"], untouched=todo["untouched"], reasons=todo["reasons"], retried=retried,
                     diff=diff)


if __name__ == "__main__":
    main()
