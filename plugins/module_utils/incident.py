# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``incident.yml -e restart=true`` restarts, from a health check's result. Pure.

The database comes first: while it is down, the app's HTTP checks fail because of it, and restarting the app then
only adds downtime (its requests fail until it is up again, and it still cannot reach the database). So the app is
restarted for failing HTTP checks only when the database is not failing; ``incident.yml`` asks again after the
database is back (``done`` = what it restarted), and restarts the app only if it still fails then. A container
whose own check is critical (exited, restarting, unhealthy) is restarted in either round. Nothing is restarted
twice, and only containers that exist; ``not_restartable`` names the failing ones that do not (removed by hand, or
never made), which a restart cannot bring back and ``deploy.yml`` recreates.
"""


def restart_plan(checks, present, db_container, app_container, done=(), db_down_elsewhere=False):
    """The containers to restart now, the database first: a list of names, empty when nothing helps.

    ``db_down_elsewhere``: the database is being restarted on another host (an app host of a fleet has no database
    check of its own); the app's failing requests then wait for the second round too."""
    critical = [c for c in checks or [] if c.get("status") == "critical"]
    present, done, out = set(present or []), set(done or []), []

    def add(name):
        if name and name in present and name not in done and name not in out:
            out.append(name)

    db_failing = any(c.get("kind") == "database" or (c.get("kind") == "container" and c.get("name") == db_container)
                     for c in critical)
    if db_failing:
        add(db_container)
    for check in critical:
        if check.get("kind") == "container":
            add(check.get("name"))
    if not (db_failing or db_down_elsewhere) and any(c.get("kind") == "http" for c in critical):
        add(app_container)
    return out


def not_restartable(checks, present):
    """The stack's containers whose own check is critical and that do not exist on this host: a restart cannot
    make them (``deploy.yml`` does: the app from the release history, the database on its data volume)."""
    present, out = set(present or []), []
    for check in checks or []:
        name = check.get("name")
        if check.get("kind") == "container" and check.get("status") == "critical" and name and name not in present \
                and name not in out:
            out.append(name)
    return out
