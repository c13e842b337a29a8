#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
---
module: health_check
short_description: Wait for an application health endpoint, and check everything else on a host in one task
version_added: "0.1.0"
description:
  - With O(url), requests an HTTP health endpoint (such as the SMS app's C(/health)) from the managed host until it
    answers 2xx with a healthy status document, or until O(wait_timeout) seconds have passed (the deploy health
    gate). Fails with the reason (no answer, HTTP status, the failing sub-checks the application reports) when the
    endpoint does not become healthy and O(fail_unhealthy=true), so a deploy stops at its gate with something a
    person can act on.
  - With any of O(containers), O(endpoints), O(database), O(disk_paths), O(memory), O(cpu), O(backup_directory),
    O(logs), O(tls), O(deploy_lock), also gathers those checks (concurrently) and judges each V(ok), V(warning)
    or V(critical) against O(thresholds), with a one-line reason. A check that could not run is V(critical) with
    the reason (C(could not reach ...)), never silently V(ok).
  - Only fails because something is unhealthy when O(fail_on) (or O(fail_unhealthy) for the O(url) gate) says so;
    always fails on bad arguments.
  - Passwords given to the module, and anything that looks like a secret (C(SECRET_KEY=...), the password in a
    database URL, the secret values in an inspected container's environment) never appear in the result; they
    are replaced by C(***).
  - Only reads; it never changes anything, so it runs in check mode too and always reports RV(ignore:changed=false).
author:
  - Rollcall contributors (@rollcall)
options:
  url:
    description:
      - The health endpoint to wait for (the deploy gate), for example V(http://127.0.0.1:8080/health).
      - At least one of O(url), O(containers), O(endpoints), O(database), O(disk_paths), O(memory), O(cpu),
        O(backup_directory), O(logs), O(tls) or O(deploy_lock) is required.
    type: str
  expect_version:
    description:
      - With O(url), healthy also means the document's C(version) is this one; another version counts as not
        healthy yet, with the version that answered in the reason. A deploy's check after switching the proxy to a
        new release (nginx's old workers may answer for a moment after its reload).
    type: str
  wait_timeout:
    description:
      - Seconds to keep probing O(url) until it is healthy. V(0) probes exactly once.
    type: float
    default: 60
  interval:
    description:
      - Seconds between two probes of O(url).
    type: float
    default: 1
  request_timeout:
    description:
      - Seconds one HTTP request (O(url), O(endpoints)) may take before it counts as no answer.
    type: float
    default: 5
  validate_certs:
    description:
      - Verify TLS certificates for C(https) URLs (O(url), O(endpoints)).
    type: bool
    default: true
  fail_unhealthy:
    description:
      - Fail the task when O(url) is not healthy in time. With V(false) the result reports RV(status=critical)
        and the play goes on.
    type: bool
    default: true
  fail_on:
    description:
      - Fail the task when the overall RV(status) is at least this bad. V(never) reports and carries on.
    type: str
    choices: [never, critical, warning]
    default: never
  containers:
    description:
      - Names of containers that must be running. Each is a check of kind C(container), through the Docker SDK.
      - Missing or stopped (exited, created, paused, dead) is V(critical); running but C(unhealthy) is V(critical);
        C(restarting), a health check still C(starting), or restarts (C(RestartCount)) at or above
        C(container_restarts) is V(warning), with the count.
    type: list
    elements: str
  docker_host:
    description:
      - The Docker engine for O(containers), O(logs) and a database in a container, for example
        V(unix:///var/run/docker.sock). Default is the environment (C(DOCKER_HOST)) or the local socket.
    type: str
  endpoints:
    description:
      - HTTP endpoints to sample (GET). Each is a check of kind C(http) with the latency percentiles (nearest rank)
        and the error rate over its samples, rated by C(latency_p95_ms) and C(error_rate_percent).
      - A sample is an error when nothing answered or the status is not in O(endpoints[].expect_status).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The check's name in the result. Default is the URL.
        type: str
      url:
        description:
          - The URL, C(http://) or C(https://).
        type: str
        required: true
      samples:
        description:
          - How many requests to make, one after the other.
        type: int
        default: 5
      expect_status:
        description:
          - HTTP statuses that count as success. Default is any 2xx.
        type: list
        elements: int
  database:
    description:
      - A database to check (kind C(database)) through the same engine adapters and runners as the backup modules
        (tools run by C(docker exec) in O(database.container), else on the managed host). It reports whether the
        server answers, client connections against the server's limit (rated by C(connections_percent)), and
        statements running longer than O(database.long_query_seconds) (pid, duration, first 80 characters of the
        statement text, never bind parameters; their count is rated by C(long_queries)).
      - SQLite has no server; its check opens the file read-only (no integrity check).
    type: dict
    suboptions:
      engine:
        description:
          - The database engine.
        type: str
        required: true
        choices: [postgresql, mysql, sqlite, mssql]
      container:
        description:
          - Run the client tools in this container (the database's own). Not used for V(mssql).
        type: str
      host:
        description:
          - Server address as seen from where the tools run.
        type: str
        default: 127.0.0.1
      port:
        description:
          - Server port. Default is the engine's (5432, 3306, 1433).
        type: int
      user:
        description:
          - Login user. Default V(postgres) for PostgreSQL, V(root) for MySQL.
        type: str
      password:
        description:
          - Login password; passed through the tool's environment, never on a command line, never in the result.
        type: str
      database:
        description:
          - Database to connect to (PostgreSQL default V(postgres); required for V(mssql)).
        type: str
      path:
        description:
          - The database file, for V(sqlite) (on the host, or inside O(database.container)).
        type: path
      long_query_seconds:
        description:
          - Statements running at least this many seconds are listed.
        type: int
        default: 60
      server_directory:
        description:
          - V(mssql) only. Where Rollcall's backups are written, as the server sees it; a full backup in C(msdb)
            history written anywhere else is a warning (it becomes the differential base).
          - With V(mssql), a second check C(sqlserver <database>) (kind C(database)) reports the database's
            state, transaction log use (C(log_used_percent)), blocked sessions (C(blocked_sessions)), the newest
            backups in C(msdb) history next to Rollcall's, and on Express the data files against the 10 GB limit
            (C(express_size_percent)), saying there is no SQL Server Agent.
        type: str
      binlog_repo:
        description:
          - V(mysql) only, with point-in-time recovery (C(rollcall_pitr)). The binary log archive (the
            repository C(playbooks/archive_log.yml) ships to) on this host. The database check then also says how
            old the oldest change is that the archive does not hold yet (C(binlog_unshipped_minutes), metric
            C(binlog_unshipped_s)), read from the server's index and the heads of its log files in the container
            (as C(mysql); no privilege beyond reading server variables).
        type: path
      binlog_required:
        description:
          - With O(database.binlog_repo), a server writing no binary log is a warning (point-in-time recovery is
            on for the stack but a restore to a time would have nothing to replay). Otherwise it is not checked.
        type: bool
        default: false
  disk_paths:
    description:
      - Paths whose file system usage is checked (kind C(disk), C(used_percent) as C(df) shows it), rated by
        C(disk_used_percent).
    type: list
    elements: path
  memory:
    description:
      - Check memory use (kind C(memory)), C(MemTotal - MemAvailable) of C(/proc/meminfo), rated by
        C(memory_used_percent).
    type: bool
    default: false
  cpu:
    description:
      - Check CPU use (kind C(cpu)), the busy share of C(/proc/stat) sampled over one second, rated by
        C(cpu_used_percent).
    type: bool
    default: false
  backup_directory:
    description:
      - A backup directory of M(rollcall.ops.db_backup) (kind C(backup)), the age of the newest backup and of the
        newest verified one (as M(rollcall.ops.backup_info) lists them), rated by C(backup_age_hours) and
        C(verified_backup_age_hours). No backup at all is V(critical); the newest backup's last verification
        failed is V(critical); no verified backup is V(warning).
    type: path
  backup_engine:
    description:
      - Only backups of this engine count in O(backup_directory) (V(mariadb) is V(mysql), as manifests record it).
    type: str
    choices: [postgresql, mysql, mariadb, sqlite, mssql]
  backup_database:
    description:
      - Only backups of this database count in O(backup_directory).
    type: str
  backup_project:
    description:
      - Only backups of this stack (C(rollcall_project)) and backups that record no project count in
        O(backup_directory), for a backup directory several stacks share.
    type: str
  backup_keys:
    description:
      - The backup key and key ring the inventory gives now, as M(rollcall.ops.db_backup) takes them. When given,
        the newest backup in O(backup_directory) made with a key must have been made with one of them; otherwise
        the next backup would refuse and no restore could read it (a deleted or regenerated key file, a wrong vault
        or credential), which is V(critical), with what to do. Only key ids are compared.
      - An empty dictionary is no key at all (a stack without encryption), and then encrypted backups are V(critical).
    type: dict
    suboptions:
      encryption_key:
        description: The current key, as M(rollcall.ops.db_backup) takes it.
        type: str
      encryption_key_file:
        description: The current key in a file on the managed host.
        type: path
      encryption_keys:
        description: The key ring, previous keys.
        type: list
        elements: str
      encryption_key_files:
        description: The key ring, previous keys in files on the managed host.
        type: list
        elements: path
  logs:
    description:
      - Count error lines in container logs over a window (one check of kind C(logs) per container), rated by
        C(log_error_lines); up to five sample lines (secrets masked) are returned.
    type: dict
    suboptions:
      containers:
        description:
          - Containers whose logs (stdout and stderr) are read.
        type: list
        elements: str
        required: true
      since_minutes:
        description:
          - The window, in minutes back from now, whose error lines are counted and reported.
        type: int
        default: 60
      recent_minutes:
        description:
          - C(log_error_lines) judges only the error lines of the last O(logs.recent_minutes) (match it to how
            often the check runs), so an outage that is over does not stay critical for the rest of the window;
            earlier errors in the window, with none since, are a warning that says how long ago the last one was.
          - A value of O(logs.since_minutes) or more judges the whole window.
        type: int
        default: 15
      recent_after:
        description:
          - Seconds since the epoch. When later than the start of O(logs.recent_minutes), C(log_error_lines) judges
            only the error lines after it, and earlier ones are a warning - C(incident.yml) gives the time it
            restarted what was failing, so its check after the restart judges what came since.
        type: float
      since_started:
        description:
          - Containers (the stack's own) whose last start ends an outage, as O(logs.recent_after) does - when every
            one of them runs, the newest start is used when it is later. The database started again by hand, or the app
            restarted, then no longer leaves a check critical for the rest of O(logs.recent_minutes) because of the
            errors logged before; the reason says "since NAME started at HH:MM:SS UTC".
        type: list
        elements: str
      patterns:
        description:
          - Python regular expressions; a line that matches any of them counts as an error line.
          - Default is JSON lines with C(level) error, critical or fatal, or an HTTP C(status) of 500 or more (the
            app's access log), and other lines with a Python C(Traceback) or an upper-case word
            C(ERROR), C(CRITICAL), C(FATAL) or C(PANIC).
        type: list
        elements: str
  tls:
    description:
      - Certificates whose days until expiry are checked (kind C(tls)), rated by C(tls_days_left); an expired one
        is V(critical). Either O(tls[].host) (the certificate the server presents; its chain is not validated
        here) or O(tls[].path) (a PEM file, needs the Python package C(cryptography)).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The check's name in the result. Default C(tls HOST:PORT) or C(tls PATH).
        type: str
      host:
        description:
          - Server to connect to.
        type: str
      port:
        description:
          - Port on O(tls[].host).
        type: int
        default: 443
      path:
        description:
          - A PEM certificate file on the managed host (the first certificate in it counts).
        type: path
  deploy_lock:
    description:
      - The deploy lock of an app (kind C(lock)), as M(rollcall.ops.app_release) keeps it; free is V(ok), held is
        rated by how long (C(deploy_lock_minutes)) and names its holder. A deploy or patching run that died holding
        the lock blocks every later one.
    type: dict
    suboptions:
      state_dir:
        description:
          - The state directory of M(rollcall.ops.app_release).
        type: path
        required: true
      app:
        description:
          - The app (project) name.
        type: str
        required: true
  thresholds:
    description:
      - Overrides of the default thresholds, each a list V([warning, critical]); a value at or beyond a bound has
        that status (for C(tls_days_left), at or below). V(null) switches a level off. Unknown keys fail the task.
      - C(latency_p95_ms) (default V([500, 1000])) p95 latency of an endpoint in milliseconds.
      - C(error_rate_percent) (default V([2, 5])) share of failed samples of an endpoint.
      - C(connections_percent) (default V([80, 95])) client connections as a share of the server's maximum.
      - C(long_queries) (default V([1, null])) number of statements running longer than
        O(database.long_query_seconds).
      - C(disk_used_percent) (default V([80, 90])), C(memory_used_percent) (default V([85, 95])),
        C(cpu_used_percent) (default V([80, 95])).
      - C(container_restarts) (default V([1, null])) restarts of a running container.
      - C(backup_age_hours) (default V([24, null])) age of the newest backup; C(verified_backup_age_hours) (default
        V([24, null])) age of the newest verified backup.
      - C(log_error_lines) (default V([1, 50])) error lines in a container's logs over the window.
      - C(tls_days_left) (default V([30, 7])) days until a certificate expires.
      - C(log_used_percent) (default V([70, 90])) SQL Server transaction log use; C(blocked_sessions) (default
        V([1, null])) SQL Server sessions blocked by another; C(express_size_percent) (default V([80, 95])) the
        data files of a SQL Server Express database as a share of its 10 GB limit.
      - C(deploy_lock_minutes) (default V([30, 120])) minutes the deploy lock has been held.
      - C(archive_failing_minutes) (default V([0, 15])) PostgreSQL with point-in-time recovery, while WAL
        archiving fails - minutes since the last segment was archived.
      - C(binlog_unshipped_minutes) (default V([15, 60])) MariaDB with O(database.binlog_repo) - minutes since the
        oldest change the archive does not hold yet.
    type: dict
notes:
  - The HTTP, disk, memory, CPU and TLS checks use the Python standard library; containers, logs and databases in
    containers need the Python package C(docker) on the managed host; C(mssql) needs C(pymssql); PEM files need
    C(cryptography).
  - Supports check mode.
"""

EXAMPLES = r"""
- name: Wait until the SMS answers healthy (the deploy gate)
  rollcall.ops.health_check:
    url: http://127.0.0.1:8080/health
    wait_timeout: 90

- name: Wait until the proxy serves release 1.1.0 (every 0.1 s, at most 10 s)
  rollcall.ops.health_check:
    url: http://127.0.0.1:8080/health/ready
    expect_version: 1.1.0
    wait_timeout: 10
    interval: 0.1

- name: Probe once and carry on, whatever it says
  rollcall.ops.health_check:
    url: https://sms.example.edu/health/ready
    wait_timeout: 0
    fail_unhealthy: false
  register: ready

- name: Is this host healthy, and if not, why?
  rollcall.ops.health_check:
    containers: [sms-db, sms-app-1, sms-proxy]
    endpoints:
      - name: students API
        url: http://127.0.0.1:8080/api/v1/students?limit=1
        samples: 10
    database:
      engine: postgresql
      container: sms-db
      user: sms
      password: "{{ sms_db_password }}"
      database: sms
      long_query_seconds: 30
    disk_paths: [/, /var/lib/docker]
    memory: true
    cpu: true
    backup_directory: /var/backups/rollcall
    backup_database: sms
    logs:
      containers: [sms-app-1]
      since_minutes: 60
    tls:
      - host: sms.example.edu
      - path: /etc/ssl/sms/fullchain.pem
    thresholds:
      latency_p95_ms: [300, 800]
      backup_age_hours: [26, 72]
  register: health

- name: Stop the play when anything is critical
  rollcall.ops.health_check:
    containers: [sms-db]
    fail_on: critical
"""

RETURN = r"""
status:
  description:
    - The worst status of all checks (the O(url) gate included), V(ok), V(warning) or V(critical).
  returned: always
  type: str
  sample: warning
reason:
  description:
    - With O(url), what the last probe saw. Otherwise the reasons of the worst checks, or that all are ok.
  returned: always
  type: str
  sample: "http://127.0.0.1:8080/health answered 200 (healthy) in 4 ms"
checks:
  description:
    - Every check, in the order of the options (O(url) first). RV(checks[].metrics) holds numbers only, and only
      those that are known (a check that could not run has few or none).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: What was checked (container name, endpoint name, C(disk /), C(memory), ...).
      type: str
    kind:
      description: One of C(container), C(http), C(database), C(disk), C(memory), C(cpu), C(backup), C(logs), C(tls),
        C(lock).
      type: str
    status:
      description: V(ok), V(warning) or V(critical).
      type: str
    reason:
      description: One line saying why (the problems first, then what was seen).
      type: str
    metrics:
      description:
        - "Numbers: C(http): C(p50_ms), C(p95_ms), C(p99_ms), C(error_rate) (percent), C(samples);
          C(container): C(running) (0/1), C(restart_count); C(database): C(active_connections),
          C(max_connections), C(long_queries); C(disk), C(memory), C(cpu): C(used_percent); C(backup):
          C(newest_age_s), C(newest_verified_age_s); C(logs): C(error_lines), C(recent_error_lines);
          C(tls): C(days_left); C(lock): C(held_s) (0 when free)."
      type: dict
    details:
      description:
        - Lists behind the numbers, secrets masked; C(database) C(long_queries) (C(pid), C(duration_s), C(query)),
          C(logs) C(samples) (up to five lines). Empty for other kinds.
      type: dict
  sample:
    - name: sms-db
      kind: container
      status: ok
      reason: container sms-db is running (healthy), 0 restarts
      metrics: {"running": 1, "restart_count": 0}
      details: {}
summary:
  description: How many checks have each status.
  returned: always
  type: dict
  sample: {"ok": 7, "warning": 1, "critical": 0}
checked_at:
  description: When the checks ran (UTC).
  returned: always
  type: str
  sample: "2026-03-02T06:30:00Z"
http_status:
  description: The HTTP status of the last answer from O(url), or null when nothing answered.
  returned: when O(url) is given
  type: int
  sample: 200
app_status:
  description: The C(status) field of the O(url) health document, when there is one.
  returned: when O(url) is given
  type: str
  sample: healthy
app_version:
  description: The C(version) field of the O(url) health document, when there is one.
  returned: when O(url) is given
  type: str
  sample: 1.0.0
app_checks:
  description: The C(checks) object of the O(url) health document, when there is one.
  returned: when O(url) is given
  type: dict
  sample: {"database": {"status": "ok", "latency_ms": 1.2}}
latency_ms:
  description: Latency of the last request to O(url) in milliseconds.
  returned: when O(url) is given
  type: float
  sample: 3.4
attempts:
  description: How many requests were made to O(url).
  returned: when O(url) is given
  type: int
  sample: 3
"""

import threading

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import backup, health, keyring
from ansible_collections.rollcall.ops.plugins.module_utils.checks import wait_until_healthy
from ansible_collections.rollcall.ops.plugins.module_utils.docker import client as docker_client
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError
from ansible_collections.rollcall.ops.plugins.module_utils.params import KEY_ARGS, KEY_EXCLUSIVE

CHECK_OPTIONS = ("url", "containers", "endpoints", "database", "disk_paths", "memory", "cpu", "backup_directory",
                 "logs", "tls", "deploy_lock")

ARGUMENT_SPEC = dict(
    url=dict(type="str"),
    expect_version=dict(type="str"),
    wait_timeout=dict(type="float", default=60),
    interval=dict(type="float", default=1),
    request_timeout=dict(type="float", default=5),
    validate_certs=dict(type="bool", default=True),
    fail_unhealthy=dict(type="bool", default=True),
    fail_on=dict(type="str", default="never", choices=["never", "critical", "warning"]),
    containers=dict(type="list", elements="str"),
    docker_host=dict(type="str"),
    endpoints=dict(type="list", elements="dict", options=dict(
        name=dict(type="str"),
        url=dict(type="str", required=True),
        samples=dict(type="int", default=5),
        expect_status=dict(type="list", elements="int"),
    )),
    database=dict(type="dict", options=dict(
        engine=dict(type="str", required=True, choices=["postgresql", "mysql", "sqlite", "mssql"]),
        container=dict(type="str"),
        host=dict(type="str", default="127.0.0.1"),
        port=dict(type="int"),
        user=dict(type="str"),
        password=dict(type="str", no_log=True),
        database=dict(type="str"),
        path=dict(type="path"),
        long_query_seconds=dict(type="int", default=60),
        server_directory=dict(type="str"),
        binlog_repo=dict(type="path"),
        binlog_required=dict(type="bool", default=False),
    )),
    disk_paths=dict(type="list", elements="path"),
    memory=dict(type="bool", default=False),
    cpu=dict(type="bool", default=False),
    backup_directory=dict(type="path"),
    backup_engine=dict(type="str", choices=["postgresql", "mysql", "mariadb", "sqlite", "mssql"]),
    backup_database=dict(type="str"),
    backup_project=dict(type="str"),
    backup_keys=dict(type="dict", no_log=True, options=KEY_ARGS, mutually_exclusive=KEY_EXCLUSIVE),
    logs=dict(type="dict", options=dict(
        containers=dict(type="list", elements="str", required=True),
        since_minutes=dict(type="int", default=60),
        recent_minutes=dict(type="int", default=15),
        recent_after=dict(type="float"),
        since_started=dict(type="list", elements="str"),
        patterns=dict(type="list", elements="str"),
    )),
    tls=dict(type="list", elements="dict", required_one_of=[("host", "path")], mutually_exclusive=[("host", "path")],
             options=dict(name=dict(type="str"), host=dict(type="str"), port=dict(type="int", default=443),
                          path=dict(type="path"))),
    deploy_lock=dict(type="dict", options=dict(state_dir=dict(type="path", required=True),
                                               app=dict(type="str", required=True))),
    thresholds=dict(type="dict"),
)


def validate(params):
    """Problems with the arguments that the argument spec cannot express; ValueError says which."""
    if not any(params[name] for name in CHECK_OPTIONS):
        raise ValueError("nothing to check: give at least one of %s" % ", ".join(CHECK_OPTIONS))
    if params["interval"] <= 0 or params["request_timeout"] <= 0:
        raise ValueError("interval and request_timeout must be greater than 0")
    if params["expect_version"] is not None and not params["url"]:
        raise ValueError("expect_version is the version the url gate waits for: give url too")
    thresholds = health.merge_thresholds(params["thresholds"])
    for endpoint in params["endpoints"] or ():
        if not endpoint["url"].lower().startswith(("http://", "https://")):
            raise ValueError("endpoints: %s is not an http:// or https:// URL" % endpoint["url"])
        if endpoint["samples"] < 1:
            raise ValueError("endpoints: samples must be 1 or more (%s)" % endpoint["url"])
    database = params["database"]
    if database:
        if database["long_query_seconds"] < 0:
            raise ValueError("database.long_query_seconds must be 0 or more")
        try:
            health.database_target(database, params["docker_host"])
        except EngineError as exc:
            raise ValueError("database: %s" % exc) from None
    if params["logs"]:
        if params["logs"]["since_minutes"] < 1:
            raise ValueError("logs.since_minutes must be 1 or more")
        if params["logs"]["recent_minutes"] < 1:
            raise ValueError("logs.recent_minutes must be 1 or more")
        health.compile_patterns(params["logs"]["patterns"])
    for entry in params["tls"] or ():
        if entry["port"] is not None and not 0 < entry["port"] < 65536:
            raise ValueError("tls: port %s is not a TCP port" % entry["port"])
    return thresholds


def docker_api(docker_host):
    """One low-level Docker API client for every check that needs it, made on first use (or its error, again)."""
    lock, made = threading.Lock(), {}

    def get():
        with lock:
            if "api" not in made and "error" not in made:
                try:
                    made["api"] = docker_client(docker_host, timeout=30).api
                except Exception as exc:  # noqa: BLE001 - re-raised to each check, which reports it
                    made["error"] = exc
            if "error" in made:
                raise made["error"]
            return made["api"]
    return get


def jobs_for(params, thresholds, gate):
    label = health.labelled
    jobs = []
    if params["url"]:
        jobs.append(label(params["url"], "http", gate))
    api = docker_api(params["docker_host"])
    if params["containers"]:
        jobs.append(label("containers", "container", health.container_checks, params["containers"], api,
                          thresholds))
    for endpoint in params["endpoints"] or ():
        jobs.append(label(endpoint["name"] or endpoint["url"], "http", health.endpoint_check, endpoint, thresholds,
                          params["request_timeout"], params["validate_certs"]))
    if params["database"]:
        database = params["database"]
        jobs.append(label(health.database_name(database), "database", health.database_check, database,
                          thresholds, lambda p: health.open_database(p, params["docker_host"]),
                          params["docker_host"]))
        if database["engine"] == "mssql":
            jobs.append(label("sqlserver %s" % database["database"], "database", health.sqlserver_check, database,
                              thresholds, lambda p: health.open_database(p, params["docker_host"])))
    for path in params["disk_paths"] or ():
        jobs.append(label("disk %s" % path, "disk", health.disk_check, path, thresholds))
    if params["memory"]:
        jobs.append(label("memory", "memory", health.memory_check, thresholds))
    if params["cpu"]:
        jobs.append(label("cpu", "cpu", health.cpu_check, thresholds))
    if params["backup_directory"]:
        jobs.append(label("backup %s" % params["backup_directory"], "backup", health.backup_check,
                          params["backup_directory"], thresholds, backup.describe, params["backup_engine"],
                          params["backup_database"], params["backup_project"], backup_ring(params)))
    if params["logs"]:
        jobs.append(label("logs", "logs", health.log_checks, params["logs"], api, thresholds, secrets(params)))
    for entry in params["tls"] or ():
        jobs.append(label(health.tls_name(entry), "tls", health.tls_check, entry, thresholds))
    if params["deploy_lock"]:
        jobs.append(label("deploy lock %s" % params["deploy_lock"]["app"], "lock", health.deploy_lock_check,
                          params["deploy_lock"], thresholds))
    return jobs


def backup_ring(params):
    """None (the key is not checked) or what makes the key ring of ``backup_keys`` (in the check's own thread)."""
    if params["backup_keys"] is None:
        return None
    return lambda: keyring.ring_from_params(params["backup_keys"])


def secrets(params):
    database = params["database"] or {}
    return [database["password"]] if database.get("password") else []


def overall_reason(result):
    bad = [c for c in result["checks"] if c["status"] == result["status"]] if result["status"] != "ok" else []
    if not bad:
        return "all %d checks ok" % len(result["checks"])
    return "%d %s: %s" % (len(bad), result["status"], " | ".join("%s: %s" % (c["name"], c["reason"]) for c in bad[:3]))


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        thresholds = validate(params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    gate_result = {}

    def gate():
        probe, attempts = wait_until_healthy(
            params["url"],
            wait_timeout=params["wait_timeout"],
            interval=params["interval"],
            request_timeout=params["request_timeout"],
            validate_certs=params["validate_certs"],
            expect_version=params["expect_version"],
        )
        gate_result.update(probe=probe, attempts=attempts)
        return health.gate_check(probe, attempts)

    known_secrets = secrets(params) + [v for v in module.no_log_values if isinstance(v, str)]
    report = health.run(jobs_for(params, thresholds, gate), secrets=known_secrets)
    result = dict(changed=False, **report)
    result["reason"] = overall_reason(report)
    probe = gate_result.get("probe")
    if probe is not None:
        body = probe.body if isinstance(probe.body, dict) else {}
        result.update(
            reason=probe.reason(),
            http_status=probe.http_status,
            app_status=probe.app_status,
            app_version=body.get("version"),
            app_checks=body.get("checks") or {},
            latency_ms=probe.latency_ms,
            attempts=gate_result["attempts"],
        )
    result = health.redact_data(result, known_secrets)
    if probe is not None and not probe.healthy and params["fail_unhealthy"]:
        result["msg"] = "not healthy after %d attempt(s) in %.0f s: %s" % (
            gate_result["attempts"], params["wait_timeout"], result["reason"])
        module.fail_json(**result)
    severity = health.SEVERITY
    if params["fail_on"] != "never" and severity[result["status"]] >= severity[params["fail_on"]]:
        result["msg"] = "health is %s (%s): %s" % (result["status"], ", ".join(
            "%d %s" % (n, s) for s, n in result["summary"].items() if n), overall_reason(report))
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
