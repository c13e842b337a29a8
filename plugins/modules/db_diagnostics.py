#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: db_diagnostics
short_description: Read a database's performance figures and data checks against the seeds' thresholds
version_added: "0.9.0"
description:
  - Reads, never changes (unless O(stop) is given), and judges each figure V(ok), V(warning) or V(critical)
    next to its threshold (RV(findings)).
  - V(postgresql) cache hit ratio (against 0.99), statements running longer than 5 s (pid, seconds, text), lock
    waits (who blocks whom, both statements' text), statements whose mean is over 1000 ms from
    C(pg_stat_statements) (or why there are none, the extension not loaded or not created), dead tuples, unused
    indexes, sequential scans on big tables, connections against C(max_connections), database, table and
    index sizes, duplicate indexes (exact, or a non-unique btree index that is the leading part of another).
  - V(mysql) (MariaDB) the InnoDB buffer pool hit ratio, long statements from the process list, InnoDB lock waits,
    statement digests from C(performance_schema) where it is on (else why not), connections, database and table
    sizes, duplicate indexes.
  - V(sqlite) C(PRAGMA integrity_check), free pages, file and table sizes.
  - O(data_checks) checks named tables (row counts against a baseline, freshness of a time column, NULLs in
    required columns, duplicate keys); a failure is V(critical) and names its table and figures.
  - O(stop) cancels the statement of a session, or ends the session, given by pid, only when that pid is running
    a statement longer than O(long_query_seconds) (it is listed in RV(facts)); anything else is
    refused. In check mode it only says what it would stop.
extends_documentation_fragment:
  - rollcall.ops.database
author:
  - Rollcall contributors (@rollcall)
options:
  long_query_seconds:
    description:
      - Statements running at least this many seconds are listed (the seed's 5).
    type: int
    default: 5
  slow_query_ms:
    description:
      - Statements whose mean time is over this many milliseconds are slow (the seed's 1000).
    type: int
    default: 1000
  thresholds:
    description:
      - Overrides of C(cache_hit_ratio) (0.99), C(cache_min_accesses) (100000 block requests before the ratio
        is judged), C(connections_percent) (80), C(dead_tuple_percent) (10) and C(dead_tuples_min) (1000 dead
        tuples, as the monthly VACUUM plan of M(rollcall.ops.db_maintenance)), C(unused_index_min_bytes) (1 MiB),
        C(seq_scan_min_rows) (100000).
    type: dict
  data_checks:
    description:
      - Checks on named tables. C(kind) V(row_count) needs C(baseline) (C(tolerance_percent), default 10);
        V(freshness) needs C(column) (C(max_age_hours), default 24); V(not_null) and V(unique) need C(columns).
      - PostgreSQL tables may be given as C(schema.table) (default schema C(public)).
    type: list
    elements: dict
    default: []
  explain:
    description:
      - Statements to explain (V(postgresql) only), as C(slow_queries) of RV(facts) lists them (C(queryid), C(query)
        with C($n) parameters), e.g. the slowest few of a first call. Each must be a plain C(SELECT) (else it is
        reported, not explained). The plan only, never running it (C(PREPARE) and C(EXPLAIN EXECUTE) with NULL
        parameters under a generic plan), in a C(READ ONLY) transaction with a statement timeout, rolled back.
      - The login needs to read the statements' tables (the role matrix's report role), not the statistics.
      - When given, only the plans are read and reported (no other figures, no data checks, no stop).
    type: list
    elements: dict
    default: []
  explain_analyze:
    description:
      - Run each statement of O(explain) (C(EXPLAIN ANALYZE), with NULL parameters), still only a C(SELECT), in a
        C(READ ONLY) transaction bounded by O(explain_timeout_s). Off unless asked for.
    type: bool
    default: false
  explain_timeout_s:
    description:
      - The statement timeout of each C(EXPLAIN) (seconds).
    type: int
    default: 10
  stop:
    description:
      - A long-running statement to stop.
    type: dict
    suboptions:
      pid:
        description:
          - The session's pid (PostgreSQL) or thread id (MariaDB), as RV(facts) lists it.
        type: int
        required: true
      action:
        description:
          - V(cancel) the statement (C(pg_cancel_backend), C(KILL QUERY)) or V(terminate) the session
            (C(pg_terminate_backend), C(KILL CONNECTION)).
        type: str
        choices: [cancel, terminate]
        default: cancel
"""

EXAMPLES = r"""
- name: Diagnose the SMS database, with the SEQTA import's checks
  rollcall.ops.db_diagnostics:
    engine: postgresql
    container: sms-db
    user: sms
    password: "{{ rollcall_db_password }}"
    database: sms
    data_checks:
      - {table: students, kind: row_count, baseline: 1200, tolerance_percent: 5}
      - {table: students, kind: unique, columns: [student_number]}
      - {table: attendance, kind: freshness, column: recorded_at, max_age_hours: 26}

- name: The plans of the slowest SELECTs of a first call (as a login that may read the tables)
  rollcall.ops.db_diagnostics:
    engine: postgresql
    container: sms-db
    user: sms_report
    password: "{{ report_password }}"
    database: sms
    explain: "{{ diagnostics.facts.slow_queries | rollcall.ops.explain_candidates(3) }}"

- name: Terminate a runaway report query
  rollcall.ops.db_diagnostics:
    engine: postgresql
    container: sms-db
    user: sms
    password: "{{ rollcall_db_password }}"
    database: sms
    stop: {pid: 4242, action: terminate}
"""

RETURN = r"""
status:
  description: The worst status of RV(findings).
  returned: always
  type: str
  sample: warning
findings:
  description: One per figure, with its threshold in the reason.
  returned: always
  type: list
  elements: dict
  sample:
    - name: cache hit ratio
      status: ok
      reason: "0.9987 (threshold 0.99)"
      figures: {"cache_hit_ratio": 0.9987}
      details: []
facts:
  description: The figures as the engine reported them (long_queries, lock_waits, slow_queries,
    duplicate_indexes, sizes, ...); with O(explain), C(plans) (queryid, query, plan lines or error).
  returned: always
  type: dict
checks:
  description: RV(findings) in the report's shape (M(rollcall.ops.health_report) results), kind C(diagnostics)
    or C(data).
  returned: always
  type: list
  elements: dict
stopped:
  description: The statement stopped (or, in check mode, that would be).
  returned: when O(stop) is given
  type: dict
  sample: {"pid": 4242, "action": "terminate", "query": "SELECT pg_sleep(600)", "duration_s": 31}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import maintenance as mt
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError
from ansible_collections.rollcall.ops.plugins.module_utils.health import open_database
from ansible_collections.rollcall.ops.plugins.module_utils.params import DATABASE_ARGS, spec

ARGUMENT_SPEC = spec(
    DATABASE_ARGS,
    long_query_seconds=dict(type="int", default=5),
    slow_query_ms=dict(type="int", default=1000),
    thresholds=dict(type="dict"),
    data_checks=dict(type="list", elements="dict", default=[]),
    explain=dict(type="list", elements="dict", default=[]),
    explain_analyze=dict(type="bool", default=False),
    explain_timeout_s=dict(type="int", default=10),
    stop=dict(type="dict", options=dict(
        pid=dict(type="int", required=True),
        action=dict(type="str", default="cancel", choices=["cancel", "terminate"]))),
)


def explain(module, p):
    """Plans of p["explain"]'s statements (read-only: the same in check mode)."""
    if p["engine"] != "postgresql":
        module.fail_json(msg="explain is for PostgreSQL only: %s's statement digests have no parameter types to "
                             "plan them with" % p["engine"])
    results = []
    try:
        engine = open_database(p, p["docker_host"])
        for item in p["explain"]:
            entry = {"queryid": str(item.get("queryid") or ""), "query": str(item.get("query") or "")}
            try:
                entry["plan"] = engine.explain(entry["query"], p["explain_analyze"], p["explain_timeout_s"])
            except (EngineError, mt.MaintenanceError) as exc:
                entry["error"] = str(exc)
            results.append(entry)
    except EngineError as exc:
        module.fail_json(msg=str(exc))
    findings = mt.explain_findings(results, p["explain_analyze"])
    module.exit_json(changed=False, status=mt.worst([f["status"] for f in findings]), findings=findings,
                     facts={"plans": results}, checks=mt.finding_checks(findings, "diagnostics"))


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    result = dict(changed=False)
    if p["explain"]:
        explain(module, p)
    try:
        thresholds = dict(p["thresholds"] or {}, long_query_seconds=p["long_query_seconds"],
                          slow_query_ms=p["slow_query_ms"])
        mt.diagnostic_thresholds(thresholds)
        checks = [mt.check_data_spec(dict(c)) for c in p["data_checks"]]
        engine = open_database(p, p["docker_host"])
        facts = engine.diagnostics(p["long_query_seconds"], p["slow_query_ms"])
        findings = mt.judge_diagnostics(p["engine"], facts, thresholds)
        figures = []
        for check in checks:
            try:
                figures.append(engine.data_figures(check))
            except EngineError as exc:
                figures.append({"error": str(exc)})
        findings += mt.data_checks(checks, figures)
        if p["stop"]:
            pid, verb = p["stop"]["pid"], p["stop"]["action"]
            running = [q for q in facts.get("long_queries") or () if q["pid"] == pid]
            if not running:
                module.fail_json(msg="pid %d is not running a statement longer than %d s (see facts.long_queries); "
                                     "nothing was stopped" % (pid, p["long_query_seconds"]), facts=facts)
            result["stopped"] = dict(running[0], action=verb)
            if not module.check_mode:
                engine.stop_query(pid, verb)
            result["changed"] = True
    except (EngineError, mt.MaintenanceError) as exc:
        module.fail_json(msg=str(exc))
    data = findings[len(findings) - len(checks):] if checks else []
    result.update(status=mt.worst([f["status"] for f in findings]), findings=findings, facts=facts,
                  checks=mt.finding_checks(findings[:len(findings) - len(data)], "diagnostics")
                  + mt.finding_checks(data, "data"))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
