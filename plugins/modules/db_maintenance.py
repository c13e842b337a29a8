#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: db_maintenance
short_description: Vacuum, analyze, reindex, optimize, check and compact a database where its figures say so
version_added: "0.9.0"
description:
  - Reads the database's own figures, plans the maintenance they call for against O(thresholds), and (not in
    check mode) carries it out one statement at a time, each under a lock timeout and within the run's time
    budget, so maintenance never stalls the application.
  - V(postgresql) C(VACUUM (ANALYZE)) of tables whose dead tuples are over C(dead_tuple_percent) (and at least
    C(dead_tuples_min)); C(REINDEX INDEX CONCURRENTLY) of btree indexes whose estimated bloat is over
    C(index_bloat_percent) (never a plain C(REINDEX), which blocks writes); C(DROP INDEX CONCURRENTLY) of invalid
    C(*_ccnew) indexes an interrupted concurrent reindex left; C(pg_stat_reset()) with O(reset_stats). Every
    statement after C(SET lock_timeout) and C(SET statement_timeout).
  - V(mysql) (MariaDB, MySQL) C(CHECK TABLE) (read-only; findings reported), C(OPTIMIZE TABLE) of tables whose
    free space (C(data_free)) is over C(fragmentation_percent) (InnoDB rebuilds the table online), C(ANALYZE TABLE)
    of the others (O(analyze)). Every statement after C(SET SESSION lock_wait_timeout, innodb_lock_wait_timeout,
    max_statement_time).
  - V(sqlite) C(PRAGMA integrity_check) (read-only), C(PRAGMA optimize), C(PRAGMA wal_checkpoint(TRUNCATE)) when the
    WAL has pages, and compaction over C(free_page_percent), either C(VACUUM) in place (safe with the app's open
    connections), or C(VACUUM INTO) a copy, checked, then swapped in (O(compact=into_swap), only with the app
    stopped, since an open connection keeps writing to the old file). The busy timeout is the lock timeout.
  - V(mssql) C(DBCC CHECKDB), index C(REORGANIZE) over C(reorganize_percent) (5) and C(REBUILD) over
    C(rebuild_percent) (30) for indexes of at least C(mssql_min_pages) pages, C(UPDATE STATISTICS) of the other
    tables, after C(SET LOCK_TIMEOUT); RV(script) is the whole T-SQL. Not tested against a real server.
  - RV(ignore:changed) is true only when an action that changes something ran (read-only checks never count; a
    MariaDB C(ANALYZE TABLE) counts only when InnoDB's persistent statistics changed, where the login may read
    them);
    nothing over a threshold means no action and RV(ignore:changed=false).
  - Check mode reads the figures and returns the plan (RV(actions) with outcome C(planned)); it changes nothing.
extends_documentation_fragment:
  - rollcall.ops.database
author:
  - Rollcall contributors (@rollcall)
options:
  thresholds:
    description:
      - Overrides of the thresholds (numbers), any of C(dead_tuple_percent) (10), C(dead_tuples_min) (1000),
        C(index_bloat_percent) (30), C(index_bloat_min_bytes) (1 MiB), C(fragmentation_percent) (20),
        C(fragmentation_min_bytes) (10 MiB), C(free_page_percent) (20), C(free_pages_min) (100),
        C(reorganize_percent) (5), C(rebuild_percent) (30), C(mssql_min_pages) (1000), C(lock_timeout_s) (5),
        C(statement_timeout_s) (900), C(time_budget_s) (3600, no statement starts after it).
    type: dict
  reset_stats:
    description:
      - V(postgresql) only. Reset the database's statistics counters (C(pg_stat_reset()), and
        C(pg_stat_statements_reset()) where that extension is installed) after the other actions.
    type: bool
    default: false
  probe_url:
    description:
      - An http(s) URL of the app (from where this module runs, e.g. V(http://127.0.0.1:8080/health/ready)), GET
        every O(probe_interval_s) seconds while the maintenance runs; RV(probe) has its latency (p50, p95, max) and
        failed requests, and RV(checks) a check C(app latency during maintenance) (a failed request is a
        warning). Not in check mode.
    type: str
  probe_interval_s:
    description:
      - Seconds between two requests of O(probe_url).
    type: float
    default: 0.1
  analyze:
    description:
      - V(mysql), V(mssql). Update the statistics of the tables that are not rebuilt.
    type: bool
    default: true
  check:
    description:
      - Run the engine's consistency check (C(CHECK TABLE), C(PRAGMA integrity_check), C(DBCC CHECKDB)).
    type: bool
    default: true
  compact:
    description:
      - V(sqlite) only. How a file over the free-page threshold is compacted (see the description).
    type: str
    choices: [in_place, into_swap]
    default: in_place
  online:
    description:
      - V(mssql) only. C(REBUILD WITH (ONLINE = ON)) with a low-priority lock wait (Enterprise and Developer
        editions); otherwise C(ONLINE = OFF).
    type: bool
    default: false
  only:
    description:
      - Keep only the actions of these kinds (a cadence, for example V(vacuum_analyze) monthly and
        V(reindex_concurrently) mid-month). Default is every kind.
    type: list
    elements: str
    choices: [vacuum_analyze, reindex_concurrently, drop_invalid_index, reset_stats, check_table, optimize_table,
              analyze_table, integrity_check, optimize, wal_checkpoint, vacuum, vacuum_into_swap, checkdb, reorganize,
              rebuild, update_statistics]
  fail_on_error:
    description:
      - Fail the task when an action failed (a lock timeout, the time bound) or a check found a problem. With
        V(false) the outcome is reported in RV(actions) and RV(failures) and the play goes on.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Monthly maintenance of the SMS database (dead tuples, bloated indexes)
  rollcall.ops.db_maintenance:
    engine: postgresql
    container: sms-db
    user: sms
    password: "{{ rollcall_db_password }}"
    database: sms
    thresholds:
      lock_timeout_s: 3
      time_budget_s: 1800

- name: Mid-month reindex, with the app's latency measured while it runs
  rollcall.ops.db_maintenance:
    engine: postgresql
    container: sms-db
    user: sms_owner
    password: "{{ owner_password }}"
    database: sms
    only: [reindex_concurrently, drop_invalid_index]
    probe_url: http://127.0.0.1:8080/health/ready

- name: What would maintenance do on MariaDB (nothing changes)
  rollcall.ops.db_maintenance:
    engine: mysql
    container: sms-db
    password: "{{ rollcall_db_root_password }}"
    database: sms
  check_mode: true
"""

RETURN = r"""
actions:
  description: The planned actions, in order, with what became of each.
  returned: always
  type: list
  elements: dict
  contains:
    engine:
      description: The engine.
      type: str
    action:
      description: C(vacuum_analyze), C(reindex_concurrently), C(drop_invalid_index), C(reset_stats),
        C(check_table), C(optimize_table), C(analyze_table), C(integrity_check), C(optimize), C(wal_checkpoint),
        C(vacuum), C(vacuum_into_swap), C(checkdb), C(reorganize), C(rebuild), C(update_statistics).
      type: str
    object:
      description: The table, index, database or file.
      type: str
    reason:
      description: Why, with the figure and its threshold.
      type: str
    sql:
      description: The statement.
      type: str
    outcome:
      description: C(planned) (check mode), C(done), C(problem) (a check found something), C(failed), C(skipped)
        (the time budget was spent).
      type: str
    detail:
      description: What the server said.
      type: str
    seconds:
      description: How long it took.
      type: float
  sample:
    - engine: postgresql
      action: vacuum_analyze
      object: public.attendance
      reason: "52000 dead tuples, 34.2 % of 152000 rows (threshold 10 %, at least 1000)"
      sql: VACUUM (ANALYZE) "public"."attendance";
      outcome: done
      detail: ""
      seconds: 1.4
counts:
  description: Actions per outcome.
  returned: always
  type: dict
  sample: {"done": 2, "failed": 0}
failures:
  description: One line per failed action or check problem, naming the object.
  returned: always
  type: list
  elements: str
checks:
  description: RV(actions) in the report's shape (M(rollcall.ops.health_report) results), one per action.
  returned: always
  type: list
  elements: dict
probe:
  description: What O(probe_url) answered while the maintenance ran.
  returned: when O(probe_url) is given and not in check mode
  type: dict
  sample: {"url": "http://127.0.0.1:8080/health/ready", "requests": 412, "failed": 0, "errors": [],
           "p50_ms": 4.1, "p95_ms": 11.8, "max_ms": 40.2}
script:
  description: V(mssql) only. The whole T-SQL batch of the plan.
  returned: when engine is mssql
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import maintenance as mt
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError
from ansible_collections.rollcall.ops.plugins.module_utils.engines.upkeep import run_plan
from ansible_collections.rollcall.ops.plugins.module_utils.health import open_database
from ansible_collections.rollcall.ops.plugins.module_utils.params import DATABASE_ARGS, spec
from ansible_collections.rollcall.ops.plugins.module_utils.probe import Probe

ARGUMENT_SPEC = spec(
    DATABASE_ARGS,
    thresholds=dict(type="dict"),
    reset_stats=dict(type="bool", default=False),
    analyze=dict(type="bool", default=True),
    check=dict(type="bool", default=True),
    compact=dict(type="str", default="in_place", choices=["in_place", "into_swap"]),
    online=dict(type="bool", default=False),
    only=dict(type="list", elements="str", choices=list(mt.ACTION_KINDS)),
    fail_on_error=dict(type="bool", default=True),
    probe_url=dict(type="str"),
    probe_interval_s=dict(type="float", default=0.1),
)


def run(engine, actions, thresholds, only):
    run_plan(engine, actions, thresholds)
    if any(a["action"] == "vacuum_analyze" and a["outcome"] == "done" for a in actions):
        # VACUUM updates the indexes' tuple counts: their bloat is only known now
        later = mt.reindex_after_vacuum(actions, engine.maintenance_stats(), thresholds, only)
        actions += run_plan(engine, later, thresholds)
    return actions


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    summary = None
    try:
        thresholds = mt.merge_thresholds(p["thresholds"])
        engine = open_database(p, p["docker_host"])
        stats = engine.maintenance_stats()
        actions = mt.plan(p["engine"], stats, thresholds, {
            "reset_stats": p["reset_stats"], "analyze": p["analyze"], "check": p["check"], "compact": p["compact"],
            "online": p["online"], "only": p["only"]})
        if module.check_mode:
            for act in actions:
                act["outcome"] = "planned"
        elif p["probe_url"]:
            with Probe(p["probe_url"], p["probe_interval_s"]) as probe:
                actions = run(engine, actions, thresholds, p["only"])
            summary = mt.latency_summary(probe.samples, p["probe_url"])
        else:
            actions = run(engine, actions, thresholds, p["only"])
    except (EngineError, mt.MaintenanceError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    counts, failures = mt.summary(actions)
    changed = mt.would_change(actions) if module.check_mode else mt.changes(actions)
    result = dict(changed=changed, actions=actions, counts=counts, failures=failures,
                  checks=mt.action_checks(actions, "maintenance %s" % (p.get("database") or p.get("path"))))
    if summary is not None:
        result["probe"] = summary
        result["checks"].append(mt.probe_check(summary))
    if p["engine"] == "mssql":
        result["script"] = mt.mssql_script(actions, thresholds["lock_timeout_s"])
    if failures and p["fail_on_error"]:
        module.fail_json(msg="maintenance of %s: %d failed: %s" % (p.get("database") or p.get("path"), len(failures),
                                                                   "; ".join(failures)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
