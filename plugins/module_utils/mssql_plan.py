# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the playbooks will do to a SQL Server database, decided and written out without a server (issue 17).

Pure: the inventory's settings in, the plan out (the decisions and the exact T-SQL the modules will send), so
``ansible-playbook playbooks/backup.yml --check`` prints the plan for SQL Server on a machine that cannot reach
one, and every branch is unit-tested (tests/unit/test_mssql_plan.py). ``plugins/modules/mssql_plan.py`` is the
thin wrapper the roles call; the T-SQL itself comes from ``engines/mssql.py``, the same functions the backup
flows use.
"""

from .engines import mssql
from .engines.base import OLD_SUFFIX, SCRATCH_SUFFIX

ACTIONS = ("backup", "verify", "restore", "health")
TYPES = ("full", "differential")
LEVELS = ("checksum", "native", "restore")
PLACEHOLDER = "<id>"

# Express edition, as the plan says it (docs/sqlserver.md).
EXPRESS_NOTES = (
    "Express edition is fine: Rollcall never asks SQL Server for WITH COMPRESSION (Express has none); "
    "rollcall_backup_compression=gzip compresses on the managed host instead",
    "no SQL Server Agent is needed: the schedules (nightly full, differentials in between) are AWX's "
    "(roles/awx_config)",
    "health.yml warns when the data files near Express's 10 GB per-database limit",
)


class PlanError(Exception):
    """The settings cannot work; the message names the inventory variable and what to set."""


def problems(settings):
    """Every inventory setting a SQL Server run needs but lacks, as messages naming the variable."""
    found = []
    if not settings.get("host"):
        found.append("rollcall_mssql_host is empty: the SQL Server's address as reached from the db host "
                     "(127.0.0.1 when the db host is the server itself)")
    if not settings.get("server_directory"):
        found.append("rollcall_mssql_backup_dir is not set: the directory where the SQL Server service writes and "
                     "reads backup files, as the server sees it (e.g. D:\\Backup\\Rollcall or /var/opt/mssql/backup)")
    if not settings.get("user") or not settings.get("password"):
        found.append("rollcall_mssql_user and rollcall_mssql_password must be set (vault): a login that may back "
                     "up, restore, create and drop databases (dbcreator and db_owner, or sysadmin)")
    database = settings.get("database") or ""
    try:
        mssql.quote_name(database)
        if not database:
            raise mssql.EngineError("empty")
    except mssql.EngineError:
        found.append("rollcall_db_name %r is not a SQL Server database name" % database)
    return found


def require(settings):
    found = problems(settings)
    if found:
        raise PlanError("Nothing was changed: " + "; ".join(found) + " (docs/sqlserver.md)")


def backup_type(requested, parent):
    """(type, reason) of this run's backup: ``requested`` (full/differential), ``parent`` the name of the full
    backup a differential would build on (None: there is none in the backup directory)."""
    if requested not in TYPES:
        raise PlanError("rollcall_backup_type must be full or differential, not %r" % (requested,))
    if requested == "full":
        return "full", "a full backup: the base of the differentials until the next full one"
    if parent is None:
        return "full", ("a differential was asked for, but there is no full backup to build it on in the backup "
                        "directory: this run takes a full backup instead (the chain starts here)")
    return "differential", "the changes since the full backup %s (restored on top of it)" % parent


def where(settings):
    return "%s:%s" % (settings.get("host"), settings.get("port") or 1433)


def reading(settings):
    """How the managed host reads what the server writes."""
    server, local = settings["server_directory"], settings.get("local_directory") or settings["server_directory"]
    if local == server:
        return "the server writes %s, which is this host's own directory (the db host is the server)" % server
    return "the server writes %s, read here as %s (a share of the same directory)" % (server, local)


def backup_plan(settings, kind, reason, verify_level, keep, compression="none", encrypted=False):
    """The steps of backup.yml for SQL Server, with the T-SQL."""
    require(settings)
    database = settings["database"]
    path = mssql.server_join(settings["server_directory"], "rollcall-backup-%s.bak" % PLACEHOLDER)
    steps = [
        "connect to SQL Server at %s as %s with pymssql (from the db host)" % (where(settings), settings["user"]),
        "%s backup of %s: %s" % (kind, database, reason),
        mssql.backup_sql(database, path, kind),
        "RESTORE HEADERONLY: check it is a %s backup of %s and record its LSNs in the manifest" % (kind, database),
        "count the rows of every table; %s; stream the file into %s (%s, %s), then delete it"
        % (reading(settings), settings["directory"], "gzip" if compression == "gzip" else "no compression",
           "encrypted and signed" if encrypted else "not encrypted"),
    ]
    steps += verify_steps(settings, verify_level, "the new backup")
    steps.append("retention in %s: keep the last %s, %s daily, %s weekly, %s monthly; a full backup that a kept "
                 "differential builds on is always kept; nothing is deleted when the new backup failed verification"
                 % (settings["directory"], keep.get("last"), keep.get("daily"), keep.get("weekly"),
                    keep.get("monthly")))
    return steps


def verify_steps(settings, level, what):
    if level not in LEVELS:
        raise PlanError("rollcall_backup_verify_level must be checksum, native or restore, not %r" % (level,))
    database = settings["database"]
    path = mssql.server_join(settings["server_directory"], "rollcall-verify-%s.bak" % PLACEHOLDER)
    steps = ["verify %s (and the full backup under a differential): manifest, signature, sha256 of every file"
             % what]
    if level in ("native", "restore"):
        steps += ["copy it where the server reads it, then %s" % mssql.verifyonly_sql(path),
                  "RESTORE HEADERONLY: LSNs as in the manifest; a differential's base LSN is its full backup's "
                  "checkpoint LSN"]
    if level == "restore":
        scratch = database + SCRATCH_SUFFIX
        steps += ["test restore into the scratch database %s (full WITH NORECOVERY, then the differential WITH "
                  "RECOVERY; every file MOVEd to a new name)" % scratch,
                  "row counts equal the manifest; DBCC CHECKDB (%s) WITH NO_INFOMSGS; drop %s"
                  % (mssql.quote_name(scratch), mssql.quote_name(scratch))]
    return steps


def verify_plan(settings, level, name=None):
    require(settings)
    return (["connect to SQL Server at %s as %s with pymssql" % (where(settings), settings["user"])]
            + verify_steps(settings, level, "backup %s" % name if name else "the newest backup of %s in %s"
                           % (settings["database"], settings["directory"])))


def restore_plan(settings, name=None):
    """The three stages of restore.yml for SQL Server, then the post-restore validation."""
    require(settings)
    database = settings["database"]
    scratch, old = database + SCRATCH_SUFFIX, database + OLD_SUFFIX
    safety = mssql.server_join(settings["server_directory"], "rollcall-backup-%s.bak" % PLACEHOLDER)
    what = "backup %s" % name if name else "the newest backup of %s in %s" % (database, settings["directory"])
    return [
        "connect to SQL Server at %s as %s with pymssql" % (where(settings), settings["user"]),
        "note the grants and role memberships of %s as they are now" % database,
        "stage 1, verify %s: manifest, signature, every file's size, the key, the differential chain" % what,
        "stage 2, test restore into %s with the checksum checked as it streams; row counts equal the manifest; "
        "DBCC CHECKDB (%s) WITH NO_INFOMSGS" % (scratch, mssql.quote_name(scratch)),
        "stage 3, production restore: COPY_ONLY safety backup of the live database (the differential chain stays "
        "as it is): %s" % mssql.backup_sql(database, safety, "full", copy_only=True),
        "swap: ALTER DATABASE %s SET SINGLE_USER WITH ROLLBACK IMMEDIATE; rename it to %s, %s to %s; "
        "MULTI_USER; drop %s (on failure the old database goes back)"
        % (mssql.quote_name(database), old, scratch, database, old),
        "validate %s: row counts equal the backup's, DBCC CHECKCONSTRAINTS WITH ALL_CONSTRAINTS finds nothing, no "
        "constraint disabled or untrusted, no database user without its login; grants compared with before"
        % database,
    ]


def health_plan(settings):
    require(settings)
    return ["connect to SQL Server at %s as %s with pymssql" % (where(settings), settings["user"]),
            "database %s: state (ONLINE, MULTI_USER, read-write), connections and long requests, blocking "
            "(sys.dm_exec_requests), log space (sys.dm_db_log_space_usage)" % settings["database"],
            "newest backups in msdb history next to Rollcall's own; a full backup taken outside Rollcall is a "
            "warning (it becomes the differential base)",
            "edition: on Express, the data files against the 10 GB limit"]


def plan(action, settings, **options):
    """(steps, facts) for ``action``; PlanError when the settings cannot work."""
    if action not in ACTIONS:
        raise PlanError("action must be one of %s, not %r" % (", ".join(ACTIONS), action))
    facts = {}
    if action == "backup":
        kind, reason = backup_type(options.get("type") or "full", options.get("parent"))
        facts.update(type=kind, reason=reason, parent=options.get("parent") if kind == "differential" else None)
        steps = backup_plan(settings, kind, reason, options.get("verify_level") or "restore",
                            options.get("keep") or {}, options.get("compression") or "none",
                            bool(options.get("encrypted")))
    elif action == "verify":
        steps = verify_plan(settings, options.get("verify_level") or "restore", options.get("name"))
    elif action == "restore":
        steps = restore_plan(settings, options.get("name"))
    else:
        steps = health_plan(settings)
    return steps + ["SQL Server notes: " + "; ".join(EXPRESS_NOTES)], facts
