#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: security_audit
short_description: Gather and judge the security facts of one host (the quarterly security audit)
version_added: "0.5.0"
description:
  - Looks at one host and returns findings, each with a severity (C(critical), C(warning), C(info)), what was
    found and what to do. Nothing is changed. The rules are in C(plugins/module_utils/security.py); the report of
    all hosts is written by M(rollcall.ops.security_report).
  - B(database) (O(database)) - PostgreSQL roles from C(pg_roles) (superusers other than the bootstrap roles,
    CREATEROLE, BYPASSRLS, login roles without C(VALID UNTIL), expired passwords, login roles without a password
    when C(pg_authid) can be read); MariaDB accounts from C(mysql.global_priv) and
    C(information_schema.USER_PRIVILEGES) (C(root@'%') is critical, global privileges or GRANT OPTION from any
    host, accounts without a password, password age from C(password_last_changed)); both compared with
    O(expected_roles). Password hashes are never read out of the server. Unused accounts are reported as
    "not recorded" (neither engine keeps a last login by default).
  - B(containers) (O(project)) - every container named O(project) or C(<project>-...) - running as root,
    privileged, added capabilities, ports published on non-loopback addresses, secrets in the environment (the
    variable is named, its value never read into the result).
  - B(sockets) (O(sockets)) - TCP ports listening on non-loopback addresses, from C(/proc/net/tcp) and C(tcp6).
  - B(files) (O(backup_directory), O(key_files)) - modes of the backup directory, the backups in it and the key
    files (group- or world-readable backup data or keys are critical).
  - B(backups) (O(backup_directory)) - backups that are not encrypted, from their manifests (critical when
    O(environment) is C(production)).
  - B(tls) (O(endpoint)) - for an https endpoint the negotiated protocol, whether the certificate verifies and
    its expiry; a plain http endpoint gives an info finding.
  - B(log_audit) (O(log_audit)) - the result of M(rollcall.ops.log_audit) folded in as a summary.
  - A check that was asked for and could not run is a critical finding saying why.
author:
  - Rollcall contributors (@rollcall)
options:
  docker_host:
    description:
      - The Docker engine to ask, for example V(unix:///var/run/docker.sock); the environment's default when
        omitted.
    type: str
  project:
    description:
      - Audit the containers of this stack (named O(project) or starting with C(<project>-) or C(<project>_)).
        Without it no container is looked at.
    type: str
  public_ports:
    description:
      - Ports that are meant to be reachable from other machines (the public endpoint's 80/443); published or
        listening there is an info finding instead of a warning.
    type: list
    elements: int
    default: []
  database:
    description:
      - The database server to audit, reached as the backup modules reach it (tools run in O(database.container)).
    type: dict
    suboptions:
      engine:
        description: The engine (MariaDB is V(mysql)).
        type: str
        required: true
        choices: [postgresql, mysql]
      container:
        description: Run psql / mariadb in this container.
        type: str
      database:
        description: The database to connect to.
        type: str
        required: true
      host:
        description: Server host as seen from where the tools run.
        type: str
      port:
        description: Server port.
        type: int
      user:
        description: The account to log in with (MariaDB needs one that may read C(mysql.global_priv)).
        type: str
      password:
        description: Its password.
        type: str
  expected_roles:
    description:
      - The role matrix - one entry per role or account the stack should have. A role with more than the matrix
        allows is a finding (superuser where not expected is critical, login where not expected a warning); a
        role that is not in the matrix is a warning. Empty - roles are not compared (superusers are still judged).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The role (PostgreSQL) or user (MariaDB, any host).
        type: str
        required: true
      superuser:
        description: Whether it may be a superuser (MariaDB - SUPER, CREATE USER or GRANT OPTION globally).
        type: bool
        default: false
      login:
        description: Whether it may log in.
        type: bool
        default: false
  bootstrap_roles:
    description:
      - Accounts the engine itself needs, left out of the matrix comparison - PostgreSQL role names (default
        V(postgres)), MariaDB C(user@host) (default V(root@localhost) and V(mariadb.sys@localhost)).
    type: list
    elements: str
  max_password_age_days:
    description:
      - A MariaDB password older than this is a warning (PostgreSQL does not record password age).
    type: int
    default: 365
  endpoint:
    description:
      - The public endpoint's URL (V(https://sms.example.org/)); https is checked, http gives an info finding.
    type: str
  tls_warn_days:
    description: A certificate expiring within this many days is a warning.
    type: int
    default: 30
  tls_critical_days:
    description: A certificate expiring within this many days (or expired) is critical.
    type: int
    default: 7
  timeout:
    description: Seconds to wait for the endpoint.
    type: float
    default: 5
  sockets:
    description: Look for TCP ports listening on non-loopback addresses of this host.
    type: bool
    default: true
  proc_net:
    description: Where C(tcp) and C(tcp6) are read from.
    type: path
    default: /proc/net
  backup_directory:
    description: The backup directory (file modes, encryption of the backups in it).
    type: path
  key_files:
    description: Key files whose modes are checked (the backup key file, when the key is kept in a file).
    type: list
    elements: path
    default: []
  secrets_directory:
    description:
      - A directory of generated secrets on this host (the demo inventory's C(rollcall_secrets_dir), where the
        password lookup keeps the backup key, the database passwords and the app's key). Every file in it and its
        subdirectories is judged as a key file (readable by group or others is critical).
      - Nothing is said when it does not exist.
    type: path
  environment:
    description:
      - The environment (C(rollcall_environment)); in V(production) an unencrypted backup is critical.
    type: str
    default: production
  log_audit:
    description:
      - The registered result of M(rollcall.ops.log_audit) on this host, folded into the findings.
    type: dict
notes:
  - Supports check mode; it changes nothing in any mode.
  - Containers need the Python package C(docker) (Docker SDK) where the module runs; the database tools run in
    the database container.
"""

EXAMPLES = r"""
- name: Audit this host
  rollcall.ops.security_audit:
    project: rollcall
    database:
      engine: postgresql
      container: rollcall-db
      database: sms
      user: sms
      password: "{{ rollcall_db_password }}"
    expected_roles:
      - {name: sms_owner, superuser: false, login: true}
      - {name: sms_app, superuser: false, login: true}
    endpoint: https://sms.example.org/
    backup_directory: /var/backups/rollcall
    environment: production
  register: security
"""

RETURN = r"""
findings:
  description: What was found, worst first - C(check), C(severity) (critical, warning, info), C(subject),
    C(message), C(action) (what to do).
  returned: always
  type: list
  elements: dict
  sample: [{"check": "database", "severity": "critical", "subject": "role sms", "message": "is SUPERUSER and can
           log in", "action": "ALTER ROLE sms NOSUPERUSER and grant only what it needs"}]
counts:
  description: Findings per severity.
  returned: always
  type: dict
  sample: {"critical": 1, "warning": 3, "info": 4}
critical:
  description: Whether any finding is critical.
  returned: always
  type: bool
checked:
  description: The checks that ran (database, accounts, containers, sockets, files, backups, tls, log_audit).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import backup, security
from ansible_collections.rollcall.ops.plugins.module_utils.docker import client as docker_client


def database_findings(params, matrix, bootstrap, max_age):
    engine = backup.open_engine(backup.target_from_params(dict(params, jobs=1)))
    if engine.name == "postgresql":
        roles = security.parse_pg_roles(engine.psql(security.PG_ROLES_SQL, what="reading pg_roles"))
        try:
            no_password = [r[0] for r in engine.psql(security.PG_NO_PASSWORD_SQL, what="reading pg_authid")]
        except backup.EngineError:
            no_password = None  # not allowed to read pg_authid: said as an info finding
        log_connections = engine.psql(security.PG_LOG_CONNECTIONS_SQL, what="reading log_connections")[0][0]
        return (security.judge_pg_roles(roles, matrix, bootstrap or security.PG_BOOTSTRAP, no_password)
                + security.judge_pg_unused(log_connections))
    accounts = security.parse_mysql_accounts(engine.sql(security.MYSQL_ACCOUNTS_SQL,
                                                        what="reading mysql.global_priv"))
    return (security.judge_mysql_accounts(accounts, matrix, bootstrap or security.MYSQL_BOOTSTRAP,
                                          max_password_age_days=max_age) + security.judge_mysql_unused())


def container_findings(docker_host, project, public_ports):
    api = docker_client(docker_host).api
    out = []
    for summary in api.containers(all=True):
        names = [n.lstrip("/") for n in summary.get("Names") or []]
        if any(security.in_stack(n, project) for n in names):
            inspect = api.inspect_container(summary["Id"])
            uid = None
            if (inspect.get("State") or {}).get("Running"):
                uid = security.main_uid(inspect, api.top(summary["Id"], ps_args="-o uid,pid"))
            out.extend(security.judge_container(inspect, public_ports, uid))
    return out


def socket_findings(proc_net, public_ports):
    listening = []
    for name, ipv6 in (("tcp", False), ("tcp6", True)):
        path = os.path.join(proc_net, name)
        if name == "tcp6" and not os.path.exists(path):
            continue  # IPv6 disabled
        with open(path, encoding="ascii", errors="replace") as handle:
            listening += security.parse_proc_net_tcp(handle.read(), ipv6=ipv6)
    return security.judge_sockets(listening, public_ports)


def tls_findings(p):
    scheme, host, port = security.parse_endpoint(p["endpoint"])
    if scheme == "http":
        return security.judge_tls(p["endpoint"], None)
    try:
        probed = security.probe_tls(host, port, timeout=p["timeout"])
    except (OSError, ValueError) as exc:
        return security.judge_tls(p["endpoint"], None, error=str(exc) or type(exc).__name__)
    return security.judge_tls(p["endpoint"], probed, warn_days=p["tls_warn_days"],
                              critical_days=p["tls_critical_days"])


def run_checks(p, matrix):
    """[(check, callable)] for what the options ask; each check's failure becomes a finding."""
    jobs = []
    if p["database"]:
        jobs.append(("database", "database %s %s" % (p["database"]["engine"], p["database"]["database"]),
                     "check the database settings and that the server runs",
                     lambda: database_findings(dict(p["database"], docker_host=p["docker_host"]), matrix,
                                               p["bootstrap_roles"], p["max_password_age_days"])))
    if p["project"]:
        jobs.append(("containers", "containers %s" % p["project"], "check that the Docker engine runs",
                     lambda: container_findings(p["docker_host"], p["project"], p["public_ports"])))
    if p["sockets"]:
        jobs.append(("sockets", "listening sockets", "check that %s/tcp can be read" % p["proc_net"],
                     lambda: socket_findings(p["proc_net"], p["public_ports"])))
    if p["backup_directory"] or p["key_files"] or p["secrets_directory"]:
        jobs.append(("files", "backup directory %s" % (p["backup_directory"] or "-"),
                     "check the directory exists and can be read by the audit's user",
                     lambda: security.file_findings(p["backup_directory"], p["key_files"], p["secrets_directory"])))
    if p["backup_directory"]:
        jobs.append(("backups", "backups in %s" % p["backup_directory"], "check the backup manifests",
                     lambda: security.judge_encryption(backup.describe(p["backup_directory"]), p["environment"])
                     if os.path.isdir(p["backup_directory"]) else []))  # none yet: the files check says so
    if p["endpoint"]:
        jobs.append(("tls", "endpoint %s" % p["endpoint"], "check the endpoint", lambda: tls_findings(p)))
    if p["log_audit"] is not None:
        jobs.append(("log_audit", "access log", "run playbooks/audit.yml",
                     lambda: security.judge_log_audit(p["log_audit"])))
    findings, checked = [], []
    for check, subject, action, job in jobs:
        checked.append(check)
        try:
            findings.extend(job())
        except Exception as exc:  # noqa: BLE001 - EngineError, RunnerError, OSError, the SDK's: all said
            findings.append(security.could_not(check, subject, str(exc) or type(exc).__name__, action))
    return security.ordered(findings), checked


def main():
    module = AnsibleModule(
        argument_spec=dict(
            docker_host=dict(type="str"),
            project=dict(type="str"),
            public_ports=dict(type="list", elements="int", default=[]),
            database=dict(type="dict", options=dict(
                engine=dict(type="str", required=True, choices=["postgresql", "mysql"]),
                container=dict(type="str"),
                database=dict(type="str", required=True),
                host=dict(type="str"),
                port=dict(type="int"),
                user=dict(type="str"),
                password=dict(type="str", no_log=True),
            )),
            expected_roles=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                superuser=dict(type="bool", default=False),
                login=dict(type="bool", default=False),
            )),
            bootstrap_roles=dict(type="list", elements="str"),
            max_password_age_days=dict(type="int", default=365, no_log=False),
            endpoint=dict(type="str"),
            tls_warn_days=dict(type="int", default=30),
            tls_critical_days=dict(type="int", default=7),
            timeout=dict(type="float", default=5.0),
            sockets=dict(type="bool", default=True),
            proc_net=dict(type="path", default="/proc/net"),
            backup_directory=dict(type="path"),
            key_files=dict(type="list", elements="path", default=[], no_log=False),
            secrets_directory=dict(type="path", no_log=False),
            environment=dict(type="str", default="production"),
            log_audit=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["tls_critical_days"] < 0 or p["tls_warn_days"] < p["tls_critical_days"]:
        module.fail_json(msg="tls_warn_days must be at least tls_critical_days, and both 0 or more")
    if p["max_password_age_days"] < 0:
        module.fail_json(msg="max_password_age_days must be 0 (no limit) or more")
    try:
        matrix = security.expected_matrix(p["expected_roles"])
        if p["endpoint"]:
            security.parse_endpoint(p["endpoint"])
    except security.SecurityError as exc:
        module.fail_json(msg=str(exc))
    findings, checked = run_checks(p, matrix)
    counts = security.summarize(findings)
    module.exit_json(changed=False, findings=findings, counts=counts, critical=bool(counts[security.CRITICAL]),
                     checked=checked)


if __name__ == "__main__":
    main()
