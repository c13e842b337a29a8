# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/maintenance.py (issue 15): growth of the database and the disk-full date,
the slow statements to explain."""

from ansible_collections.rollcall.ops.plugins.module_utils import maintenance


def size_growth(points, free_bytes=None):
    """``[{"at", "bytes"}]`` -> {"rate_bytes_per_day", "points", "days_to_full", "full_on"} (maintenance.growth)."""
    pairs = [(p.get("at"), p.get("bytes")) for p in points or () if isinstance(p, dict)]
    return maintenance.growth(pairs, None if free_bytes in (None, "") else float(free_bytes))


def capacity_check(points, database_bytes, free_bytes=None, warn_days=90):
    """The report's capacity check (maintenance.capacity_check) from the recorded sizes."""
    return maintenance.capacity_check(size_growth(points, free_bytes), database_bytes, float(warn_days))


def explain_candidates(slow_queries, top=maintenance.EXPLAIN_TOP):
    """The ``top`` slowest plain SELECT statements of db_diagnostics' slow_queries (maintenance.explain_candidates)."""
    return [{"queryid": q.get("queryid"), "query": q.get("query")}
            for q in maintenance.explain_candidates(slow_queries, int(top))]


def monthly_rollup(health, backups=None, incidents=None, sizes=None, days=maintenance.ROLLUP_DAYS,
                   uptime_target=maintenance.UPTIME_TARGET_PERCENT):
    """The monthly report's rollup checks (maintenance.monthly_rollup), over the last ``days`` days."""
    return maintenance.monthly_rollup(health, backups, incidents, sizes, None, int(days), float(uptime_target))


class FilterModule:
    def filters(self):
        return {"size_growth": size_growth, "capacity_check": capacity_check, "explain_candidates": explain_candidates,
                "monthly_rollup": monthly_rollup}
