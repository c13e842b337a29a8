#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: log_audit
short_description: Audit the SMS app's JSON access log over a time window
version_added: "0.4.0"
description:
  - Reads the application's JSON log (one object per line, as the SMS app writes it) from a container's logs or
    from a file, streamed, and reports for the window O(since) to O(until) the counts of 401/403, 429 and 5xx
    answers, requests matching SQL-injection patterns (with the top clients and sample paths), the top error
    messages, the most used endpoints, the slowest endpoints (p95 of C(duration_ms) per route) and the clients
    with the most 401/403 answers.
  - SQL-injection patterns are matched case-insensitively against the path (and a C(query) field when there is
    one) after URL decoding (up to three rounds) - C(UNION SELECT), quote tautologies such as C(' OR 1=1),
    SQL comments (C(--), C(/* */)), stacked queries (C(;DROP), C(;DELETE) ...), time delays (C(sleep(),
    C(pg_sleep(), C(benchmark(), C(WAITFOR DELAY)), schema probes (C(information_schema), C(@@version) ...),
    file or command access (C(load_file(), C(INTO OUTFILE), C(xp_cmdshell)) and C(char(<n>)) encoding. A match
    is an attempt, not proof of a vulnerability.
  - Lines that are not JSON objects are ignored and counted; so are JSON lines without a parseable C(ts).
  - Optionally writes the audit as a report (C(<name>.json), C(<name>.md), one self-contained C(<name>.html)),
    never overwriting one, and node_exporter textfile metrics.
author:
  - Rollcall contributors (@rollcall)
options:
  container:
    description:
      - Read the logs (stdout and stderr) of this container through the Docker SDK.
    type: str
  docker_host:
    description:
      - The Docker engine to ask, for example V(unix:///var/run/docker.sock); the environment's default when
        omitted.
    type: str
  path:
    description:
      - Read this log file instead of a container's logs.
    type: path
  since:
    description:
      - Start of the window (inclusive) - a duration before now (V(7d), V(24h), V(90m), V(30s), V(2w)) or an
        ISO 8601 time (V(2026-11-25T08:00:00Z); without an offset it is UTC).
    type: str
    default: 24h
  until:
    description:
      - End of the window (exclusive), in the same forms as O(since); now when omitted.
    type: str
  top:
    description:
      - How many entries each top list keeps.
    type: int
    default: 10
  samples:
    description:
      - How many distinct sample paths of SQL-injection attempts to keep (each cut to 200 characters, values of
        query parameters that look sensitive masked).
    type: int
    default: 5
  directory:
    description:
      - Write the audit as a report into this directory (created when missing). Without it nothing is written
        there.
    type: path
  name:
    description:
      - The report's base name; defaults to C(audit-<UTC YYYYmmddTHHMMSSZ>).
    type: str
  title:
    description:
      - The report's title.
    type: str
    default: Rollcall log audit
  actor:
    description:
      - Who ran the audit, recorded in the report and the result as RV(run_by) (C(playbooks/audit.yml) passes
        C(rollcall_actor), the AWX user and job id when AWX runs it).
    type: str
  formats:
    description:
      - Which report files to write.
    type: list
    elements: str
    choices: [json, md, html]
    default: [json, md, html]
  prometheus_textfile:
    description:
      - Path of a C(.prom) file in the node_exporter textfile collector directory, replaced atomically, with
        C(rollcall_audit_requests), C(rollcall_audit_unauthorized), C(rollcall_audit_forbidden),
        C(rollcall_audit_rate_limited), C(rollcall_audit_server_errors), C(rollcall_audit_sqli_requests),
        C(rollcall_audit_error_records), C(rollcall_audit_window_seconds) and C(rollcall_audit_timestamp_seconds),
        each labelled with C(source).
    type: path
  redact:
    description:
      - Strings (secrets) masked wherever they appear in messages and sample paths.
    type: list
    elements: str
    default: []
notes:
  - Supports check mode; in check mode the audit is computed and nothing is written.
  - Reading a container's logs needs the Python package C(docker) (Docker SDK) where the module runs.
"""

EXAMPLES = r"""
- name: Audit the last week of the SMS app's log and write the weekly report
  rollcall.ops.log_audit:
    container: sms-app
    since: 7d
    directory: /var/lib/rollcall/reports
  register: audit

- name: Audit a log file over one day
  rollcall.ops.log_audit:
    path: /var/log/sms/access.log
    since: "2026-11-24T00:00:00Z"
    until: "2026-11-25T00:00:00Z"
"""

RETURN = r"""
run_by:
  description: Who ran the audit (O(actor)).
  returned: when O(actor) is given
  type: str
  sample: alice@awx job 42
window:
  description: The window audited (C(since), C(until)) and the first and last record seen in it.
  returned: always
  type: dict
  sample: {"since": "2026-11-18T08:00:00.000Z", "until": "2026-11-25T08:00:00.000Z",
           "first_record": "2026-11-18T08:00:01.120Z", "last_record": "2026-11-25T07:59:58.004Z"}
lines:
  description: Lines read (C(total)), in the window (C(in_window)), ignored as not JSON (C(non_json)), JSON without
    a timestamp (C(no_timestamp)), outside the window (C(outside_window)), JSON in the window that is neither a
    request nor an error record (C(other_json)).
  returned: always
  type: dict
requests:
  description: Requests (JSON records with a C(status)) in the window.
  returned: always
  type: int
status_classes:
  description: Requests per status class (C(2xx), C(4xx) ...).
  returned: always
  type: dict
status_counts:
  description: Requests per HTTP status.
  returned: always
  type: dict
unauthorized:
  description: Requests answered 401.
  returned: always
  type: int
forbidden:
  description: Requests answered 403.
  returned: always
  type: int
auth_failures:
  description: Requests answered 401 or 403.
  returned: always
  type: int
rate_limited:
  description: Requests answered 429.
  returned: always
  type: int
server_errors:
  description: Requests answered 5xx.
  returned: always
  type: int
sqli:
  description: Requests matching SQL-injection patterns - C(count), C(patterns) (count per pattern),
    C(top_clients) (client, count) and C(samples) (ts, client, method, status, pattern, path).
  returned: always
  type: dict
error_records:
  description: Records with level error or critical in the window.
  returned: always
  type: int
top_errors:
  description: The most frequent error messages (C(message), C(count)).
  returned: always
  type: list
  elements: dict
top_endpoints:
  description: The most used routes (C(route), C(count)).
  returned: always
  type: list
  elements: dict
slowest_endpoints:
  description: Routes by p95 of C(duration_ms), slowest first (C(route), C(p95_ms), C(max_ms), C(count)).
  returned: always
  type: list
  elements: dict
auth_failures_by_client:
  description: Clients with the most 401/403 answers (C(client), C(count), C(unauthorized), C(forbidden)).
  returned: always
  type: list
  elements: dict
rate_limited_by_client:
  description: Clients with the most 429 answers (C(client), C(count)).
  returned: always
  type: list
  elements: dict
source:
  description: Where the log came from (C(container:<name>) or C(file:<path>)).
  returned: always
  type: str
paths:
  description: The report files by format (written, or that would be written in check mode); empty without
    O(directory).
  returned: always
  type: dict
name:
  description: The report's name.
  returned: always
  type: str
prometheus_textfile:
  description: The metrics file written (or that would be), null without O(prometheus_textfile).
  returned: always
  type: str
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import logaudit, report
from ansible_collections.rollcall.ops.plugins.module_utils.docker import client as docker_client
from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError

# The engine stamps lines when it receives them; the app's own ts decides, this only narrows what is streamed.
DOCKER_SLACK = datetime.timedelta(minutes=5)


def container_created(container, docker_host):
    """When the container was created (its logs start there), or None when it cannot be inspected."""
    try:
        return docker_client(docker_host).api.inspect_container(container).get("Created")
    except Exception:  # noqa: BLE001 - container_lines reports a missing container with its own message
        return None


def container_lines(container, docker_host, since, until):
    """The container's log lines (stdout and stderr) around the window, streamed."""
    api = docker_client(docker_host).api
    try:
        chunks = api.logs(container, stdout=True, stderr=True, stream=True, follow=False, timestamps=False,
                          since=int((since - DOCKER_SLACK).timestamp()),
                          until=int((until + DOCKER_SLACK).timestamp()) + 1)
    except Exception as exc:  # noqa: BLE001 - NotFound and APIError come from the optional SDK
        if getattr(getattr(exc, "response", None), "status_code", None) == 404:
            raise RunnerError("container %s does not exist" % container) from None
        raise RunnerError("cannot read the logs of container %s: %s" % (container, exc)) from None
    return logaudit.iter_lines(_guarded(chunks, container))


def _guarded(chunks, container):
    """The chunks, with a failure while streaming (engine gone, connection cut) as a RunnerError."""
    try:
        yield from chunks
    except Exception as exc:  # noqa: BLE001 - the SDK's errors come from the optional package
        raise RunnerError("reading the logs of container %s failed: %s" % (container, exc)) from None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container=dict(type="str"),
            docker_host=dict(type="str"),
            path=dict(type="path"),
            since=dict(type="str", default="24h"),
            until=dict(type="str"),
            top=dict(type="int", default=10),
            samples=dict(type="int", default=5),
            directory=dict(type="path"),
            name=dict(type="str"),
            title=dict(type="str", default="Rollcall log audit"),
            actor=dict(type="str"),
            formats=dict(type="list", elements="str", choices=list(report.FORMATS), default=list(report.FORMATS)),
            prometheus_textfile=dict(type="path"),
            redact=dict(type="list", elements="str", default=[], no_log=True),
        ),
        mutually_exclusive=[("container", "path")],
        required_one_of=[("container", "path")],
        supports_check_mode=True,
    )
    p = module.params
    if p["top"] < 1 or p["samples"] < 0:
        module.fail_json(msg="top must be at least 1 and samples at least 0")
    now = logaudit.utcnow()
    name = p["name"] or report.default_name("audit", now)
    source = "container:%s" % p["container"] if p["container"] else "file:%s" % p["path"]
    try:
        since, until = logaudit.window(p["since"], p["until"], now)
        if p["container"]:
            since = logaudit.clamp_since(since, container_created(p["container"], p["docker_host"]))
        lines = container_lines(p["container"], p["docker_host"], since, until) if p["container"] else \
            logaudit.read_file_lines(p["path"])
        result = logaudit.audit_lines(lines, since, until, top=p["top"], samples=p["samples"], secrets=p["redact"])
    except (logaudit.AuditError, RunnerError) as exc:
        module.fail_json(msg=str(exc))
    doc = report.redact(logaudit.document(result, p["title"], source, now, p["actor"]), p["redact"])
    result = dict(doc, changed=False, paths={}, name=name, prometheus_textfile=p["prometheus_textfile"])
    for key in ("kind", "title", "generated_at"):
        result.pop(key, None)
    renderers = {"json": report.render_audit_json, "md": report.render_audit_markdown,
                 "html": report.render_audit_html}
    try:
        if p["directory"]:
            result["paths"] = report.report_paths(p["directory"], name, p["formats"])
        result["changed"] = report.publish(doc, renderers, result["paths"], name, p["directory"],
                                           p["prometheus_textfile"], report.render_audit_prometheus, module.check_mode)
    except (report.ReportError, OSError) as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
