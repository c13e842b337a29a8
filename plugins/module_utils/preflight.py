# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every playbook checks on each target host before anything changes (roles/preflight): the settings and the
answers given with -e, after inputs.py has read them by their kind. One message per problem, all of them at once.

``problems(playbook, given, host)``: ``playbook`` is the playbook being checked (``preflight_for``: deploy,
rollback, restore, ...); ``given`` the answers read by ``inputs.read_inputs`` (a blank or refused one is left out,
so the defaults below apply); ``host`` what the rules need to know of the target host and the inventory (see
``HOST_FIELDS``), never a secret itself - only the lengths of the secret key and the database password.

Pure Python (stdlib only), unit-tested per rule in tests/unit/test_preflight.py; used through the filter
``rollcall.ops.preflight_problems`` (plugins/filter/survey.py). These were Jinja expressions in the role's assert
once: rendered on every host in a worker of its own, they cost more than the rest of the preflight.
"""

import re

ENGINES = ("postgresql", "mariadb", "sqlite", "mssql")
# SQL Server is the school's own server (docs/sqlserver.md): Rollcall backs it up, verifies, restores and checks it,
# and deploys nothing to it.
MSSQL_PLAYBOOKS = ("backup", "verify_backup", "restore", "health", "rotate_backup_key", "any")
RESERVED_PROJECTS = ("reports", "incidents")  # names kept for reports and incident bundles
PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DB_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
VERSION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
WINDOW_RE = re.compile(r"^\s*[0-9]+(\.[0-9]+)?\s*(s|m|min|h|d|w)\s*$|^now$"
                       r"|^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+)?(Z|[+-][0-9:]+)?$")
# The answers with a fixed set of values (AWX surveys offer them as choices: tests/unit/test_awx_config.py).
CHOICES = {
    "rollcall_db_engine": ENGINES,
    "rollcall_backup_verify_level": ("checksum", "native", "restore"),
    "rollcall_backup_type": ("full", "differential"),
    "rollcall_backup_compression": ("none", "gzip"),
    "drill_data": ("seed", "live"),
    "restore_from": ("local", "offsite"),
    "cadence": ("weekly", "monthly", "midmonth"),
    "rollcall_pitr_backup_type": ("auto", "full", "diff", "incr"),
    "rollcall_pitr_compress_type": ("none", "gz", "lz4", "zst", "bz2"),
}
# The input that names the backup a playbook acts on; given the other one's, it would take its newest backup.
NAME_INPUTS = {"restore": "restore_backup_name", "verify_backup": "backup_name"}
OWNER = dict((name, playbook) for playbook, name in NAME_INPUTS.items())
SECRET_KEY_MIN = 48
DB_PASSWORD_MIN = 12
# Playbooks that create the app container (they need its secret key) and the database container (its password).
NEEDS_SECRET_KEY = ("deploy", "rollback", "rotate_secret_key", "rotate_db_passwords")
NEEDS_DB_PASSWORD = ("deploy", "rotate_db_passwords")

# What ``host`` holds (roles/preflight tasks/main.yml fills it in).
HOST_FIELDS = {
    "name": "inventory_hostname",
    "app": "in the app group",
    "db": "in the db group",
    "db_hosts": "how many hosts the db group has",
    "inventory_hosts": "the app and db hosts of the inventory",
    "secret_key_length": "length of rollcall_secret_key",
    "db_password_length": "length of rollcall_db_password",
    "db_host_set": "rollcall_db_host is defined",
    "mssql_login_set": "rollcall_mssql_backup_dir, rollcall_mssql_user and rollcall_mssql_password all set",
    "offsite_host": "rollcall_backup_offsite_host",
    "pitr": "rollcall_pitr is true (inventory or -e)",
    "serials": "the batch sizes given (SERIALS: name -> value), as Ansible has them",
    "paths": "the host paths given (PATHS: name -> value)",
}
# Paths on the managed hosts. A relative one is resolved against wherever a task happens to run: -e
# rollcall_backup_dir=bk wrote a verified backup into the controller's playbooks/bk, unseen by every later run.
PATHS = ("rollcall_state_dir", "rollcall_backup_dir", "rollcall_report_dir", "rollcall_incident_dir",
         "rollcall_pitr_repo", "rollcall_pitr_offsite_repo", "rollcall_pitr_offsite_mount", "rollcall_backup_key_file",
         "rollcall_backup_old_key_files", "rollcall_mssql_local_dir", "rollcall_maintenance_disk_path",
         "rollcall_drill_backup_dir")
# Batch sizes of the rolling plays (Ansible's serial). Ansible runs every host in one batch for 0 or a negative
# number, so a typo there released, rolled back or patched the whole fleet at once, with nothing left serving.
SERIALS = {
    "rollcall_serial": "deploys and secret rotations go in batches of it (default 50%), so that the other hosts "
                       "keep serving",
    "rollcall_rollback_serial": "rollbacks go in batches of it (default 100%)",
    "rollcall_patching_serial": "hosts are patched and restarted this many at a time (default 1)",
}
SERIAL_RE = re.compile(r"^([0-9]+)(%?)$")  # as Ansible reads it: no spaces
# Playbooks for which rollcall_pitr: true means something (they turn it on, back up, recover or ship the log).
PITR_PLAYBOOKS = ("deploy", "backup", "restore", "archive_log", "dr_drill")
PITR_ENGINES = ("postgresql", "mariadb")


def _matches(pattern, value):
    return pattern.match(str(value)) is not None


def _entries(value):
    """A setting that may be one value or a list of them, as a list."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _batch_ok(value):
    """A number of hosts of at least 1 or a percentage from 1% to 100%, as Ansible's serial takes them."""
    if isinstance(value, bool):
        return False
    found = SERIAL_RE.match(str(value))
    if not found:
        return False
    number = int(found.group(1))
    return 1 <= number <= 100 if found.group(2) else number >= 1


def serial_problem(name, value):
    """Why ``value`` is not a batch size for ``name`` (one of SERIALS), or None. A list (a canary, then batches:
    [1, "50%"]) is checked entry by entry."""
    entries = _entries(value)
    if entries and all(_batch_ok(entry) for entry in entries):
        return None
    return ("%s '%s' must be a number of hosts of at least 1, a percentage from 1%% to 100%% (like 50%%), or a list of "
            "them; %s (Ansible would take every host at once for 0)" % (name, value, SERIALS[name]))


def problems(playbook, given, host):
    """Every problem with the settings and answers of one target host, in a fixed order (empty: go ahead)."""
    given = given or {}
    host = host or {}
    engine = given.get("rollcall_db_engine", "postgresql")
    db_name = given.get("rollcall_db_name", "sms")
    project = given.get("rollcall_project", "rollcall")
    production = given.get("rollcall_environment", "production") == "production"
    to = given.get("to", "")
    confirm = given.get("confirm", "")
    on_app, on_db = bool(host.get("app")), bool(host.get("db"))
    backup_type = given.get("rollcall_backup_type", "full")
    restore_from = given.get("restore_from", "local")
    out = []

    def bad(condition, msg):
        if condition:
            out.append(msg)

    bad(not _matches(PROJECT_RE, project) or project in RESERVED_PROJECTS,
        "rollcall_project '%s' must be 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit (it "
        "names containers, networks and volumes), and not %s (names kept for reports and incident bundles)"
        % (project, " or ".join(RESERVED_PROJECTS)))
    bad(engine not in CHOICES["rollcall_db_engine"],
        "rollcall_db_engine '%s' must be one of %s" % (engine, ", ".join(ENGINES)))
    bad(not _matches(IDENTIFIER_RE, db_name),
        "rollcall_db_name '%s' must be a plain identifier (letters, digits, underscore)" % db_name)
    bad(not _matches(DB_USER_RE, given.get("rollcall_db_user", "sms")),
        "rollcall_db_user '%s' must be a plain identifier of at most 32 characters" % given.get("rollcall_db_user", ""))
    bad(not _matches(VERSION_RE, given.get("rollcall_app_version", "1.0.0")),
        "rollcall_app_version '%s' is not an image tag (like 1.1.0: letters, digits, '.', '_', '-')"
        % given.get("rollcall_app_version", ""))
    bad(given.get("rollcall_backup_verify_level", "restore") not in CHOICES["rollcall_backup_verify_level"],
        "rollcall_backup_verify_level '%s' must be checksum, native or restore"
        % given.get("rollcall_backup_verify_level", ""))
    bad(backup_type not in CHOICES["rollcall_backup_type"],
        "rollcall_backup_type '%s' must be full or differential" % given.get("rollcall_backup_type", ""))
    bad(backup_type == "differential" and engine != "mssql",
        "rollcall_backup_type 'differential' is for SQL Server (rollcall_db_engine mssql); %s backups are always full"
        % engine)
    bad(engine == "mssql" and playbook not in MSSQL_PLAYBOOKS,
        "rollcall_db_engine mssql is the school's own SQL Server: Rollcall backs it up, verifies, restores and checks "
        "it (backup.yml, verify_backup.yml, restore.yml, health.yml) but does not run %s.yml on it "
        "(docs/sqlserver.md)" % playbook)
    bad(engine == "mssql" and on_db and not host.get("mssql_login_set"),
        "rollcall_db_engine mssql needs rollcall_mssql_backup_dir (where the SQL Server service writes backup files, "
        "as the server sees it), rollcall_mssql_user and rollcall_mssql_password (vault) in the inventory "
        "(docs/sqlserver.md)")
    bad(given.get("rollcall_backup_compression", "none") not in CHOICES["rollcall_backup_compression"],
        "rollcall_backup_compression '%s' must be none or gzip" % given.get("rollcall_backup_compression", ""))
    bad(playbook in NEEDS_SECRET_KEY and on_app and int(host.get("secret_key_length") or 0) < SECRET_KEY_MIN,
        "rollcall_secret_key is missing or shorter than %d characters; set it in the inventory (vault) to a random "
        "string of at least %d characters (python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
        % (SECRET_KEY_MIN, SECRET_KEY_MIN))
    bad(playbook in NEEDS_DB_PASSWORD and on_db and engine != "sqlite"
        and int(host.get("db_password_length") or 0) < DB_PASSWORD_MIN,
        "rollcall_db_password is missing or shorter than %d characters; set it in the inventory (vault)"
        % DB_PASSWORD_MIN)
    bad(playbook == "deploy" and on_app and engine != "sqlite" and not host.get("db_host_set")
        and int(host.get("db_hosts") or 0) == 0,
        "the inventory has no db host and rollcall_db_host is not set, so the app would have no %s database; add a "
        "host to the db group or set rollcall_db_host" % engine)
    # Answers given with -e; an empty one (-e to=) counts as not given.
    bad("rollcall_report_host" in given and given["rollcall_report_host"] not in (host.get("inventory_hosts") or []),
        "rollcall_report_host '%s' is not an app or db host of this inventory (reports and incident bundles are "
        "written there)" % given.get("rollcall_report_host", ""))
    bad(playbook == "rollback" and to not in ("", "previous") and not _matches(VERSION_RE, to),
        "-e to='%s' must be 'previous' or a kept version (like 1.0.0); leave it out to pick the newest kept one" % to)
    for name in ("restore_backup_name", "backup_name"):  # restore.yml's and verify_backup.yml's
        bad("/" in str(given.get(name, "")) or given.get(name, "x") in (".", ".."),
            "-e %s='%s' must be a backup name as backup_info lists it (no directory part)"
            % (name, given.get(name, "")))
        # the other playbook's name for it would be ignored, and the newest backup taken instead of the one named
        wanted = NAME_INPUTS.get(playbook)
        bad(wanted not in (None, name) and len(str(given.get(name, ""))) > 0,
            "-e %s names the backup for %s.yml; %s.yml's is -e %s (as given, it would take the newest backup, not "
            "this one): run again with -e %s=%s" % (name, OWNER[name], playbook, wanted, wanted, given.get(name, "")))
    bad(given.get("drill_data", "seed") not in CHOICES["drill_data"],
        "-e drill_data='%s' must be seed (the scratch stack starts from seed data) or live (a copy of the live "
        "stack's newest verified backup)" % given.get("drill_data", ""))
    bad(restore_from not in CHOICES["restore_from"],
        "-e restore_from='%s' must be local (the db host's backups) or offsite (the backup host's copies)"
        % given.get("restore_from", ""))
    bad(restore_from == "offsite" and not str(host.get("offsite_host") or ""),
        "-e restore_from=offsite needs rollcall_backup_offsite_host (the backup host that holds the copies) in the "
        "inventory")
    # Point-in-time recovery: PostgreSQL (pgBackRest) and MariaDB (binary log). On SQLite and SQL Server the setting
    # was ignored without a word (a deploy said nothing, a restore -e to_time said to turn it on).
    to_time_given = len(str(given.get("to_time", ""))) > 0
    bad(engine in ENGINES and engine not in PITR_ENGINES and playbook in PITR_PLAYBOOKS
        and (host.get("pitr") or to_time_given),
        "%s: point-in-time recovery is for PostgreSQL (pgBackRest) and MariaDB (binary log) stacks; this one runs %s, "
        "whose backups are %s (run backup.yml more often for a smaller loss window; docs/pitr.md). %s"
        % ("-e to_time" if to_time_given else "rollcall_pitr: true", engine,
           "copies of the file" if engine == "sqlite" else "full and differential backups",
           "Restore a backup by name instead (-e restore_backup_name=NAME)" if to_time_given
           else "Leave rollcall_pitr out (or false) for this stack"))
    bad(given.get("rollcall_pitr_backup_type", "auto") not in CHOICES["rollcall_pitr_backup_type"],
        "rollcall_pitr_backup_type '%s' must be auto (full when none is recent, else differential), full, diff or incr"
        % given.get("rollcall_pitr_backup_type", ""))
    bad(given.get("rollcall_pitr_compress_type", "lz4") not in CHOICES["rollcall_pitr_compress_type"],
        "rollcall_pitr_compress_type '%s' must be one of %s (pgBackRest's)"
        % (given.get("rollcall_pitr_compress_type", ""), ", ".join(CHOICES["rollcall_pitr_compress_type"])))
    for name, value in sorted((host.get("paths") or {}).items()):
        relative = [v for v in _entries(value) if not str(v).startswith("/")]
        bad(name in PATHS and len(relative) > 0,
            "%s '%s' must be an absolute path (like /var/backups/rollcall): a relative one is taken from wherever a "
            "task runs (the playbook's directory on the controller, the login's home on a host), so what is written "
            "there is lost to every later run" % (name, relative[0] if relative else ""))
    for name, value in sorted((host.get("serials") or {}).items()):
        problem = serial_problem(name, value) if name in SERIALS else None
        bad(problem is not None, problem)
    since = given.get("audit_since", "")
    bad(playbook == "audit" and len(str(since)) > 0 and not _matches(WINDOW_RE, since),
        "-e audit_since='%s' must be a duration like 7d, 24h, 90m or an ISO 8601 time" % since)
    cadence = given.get("cadence", "")
    bad(playbook == "maintenance" and len(str(cadence)) > 0 and cadence not in CHOICES["cadence"],
        "-e cadence='%s' must be weekly (checks, changes nothing), monthly (vacuum, analyze, optimize over the "
        "thresholds) or midmonth (concurrent reindex, statistics reset)" % cadence)
    # A confirmation names the database it allows to be replaced: one that names another (a staging name typed
    # against the production inventory, a survey's stale answer) refuses in every environment.
    restore_backup = bool(given.get("restore_backup", False))
    replaces = (playbook == "restore" and on_db) or (playbook == "rollback" and restore_backup)
    confirmed = len(str(confirm)) > 0
    wrong = confirmed and str(confirm) != db_name
    bad(replaces and wrong,
        "-e confirm='%s' does not name the database this run may replace (%s, rollcall_db_name); run again "
        "with -e confirm=%s%s"
        % (confirm, db_name, db_name, "" if production else ", or without confirm (not needed outside production)"))
    bad(playbook == "restore" and on_db and production and not confirmed,
        "this replaces the production database %s; run again with -e confirm=%s to go ahead" % (db_name, db_name))
    bad(playbook == "rollback" and restore_backup and production and not confirmed,
        "-e restore_backup=true may replace the production database %s; add -e confirm=%s to allow it"
        % (db_name, db_name))
    # An answer given that is not yes (no, a database name, a survey's false) says "do not", in every environment;
    # outside production a teardown without confirm went ahead, and so did one with -e confirm=no.
    bad(playbook == "teardown" and confirmed and confirm != "yes",
        "-e confirm='%s' is not yes: nothing was removed. Run again with -e confirm=yes to remove %s%s"
        % (confirm, project, "" if production else ", or without confirm (not needed outside production unless "
           "teardown_volumes=true)"))
    bad(playbook == "teardown" and bool(given.get("teardown_volumes", False)) and not confirmed,
        "teardown_volumes=true deletes the database and uploads of %s; add -e confirm=yes (a survey's yes or true is "
        "the same answer)" % project)
    return out
