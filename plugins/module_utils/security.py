# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The quarterly security audit: the rules that judge what ``security_audit`` gathered, and the report.

Every rule is a pure function from facts to findings. A finding is a dict::

    {"check": "database", "severity": "critical", "subject": "role sms",
     "message": "what is wrong", "action": "what to do about it"}

with severity ``critical`` (the playbook fails after writing the report), ``warning`` (fix it this quarter) or
``info`` (what the audit could not tell, or what it saw and is fine with). Findings never carry a secret's
value: environment variables are named, never shown; password hashes are never read.

Gathering lives in ``plugins/modules/security_audit.py`` (the database through the engine adapters' ``psql`` /
``sql`` in the db container, containers through the Docker SDK, ``/proc/net/tcp*``, ``os.lstat``, backup
manifests through ``backup.describe``); rendering uses the helpers of ``report.py``.
"""

import datetime
import json
import os
import re
import socket
import ssl
import stat
from urllib.parse import urlsplit

from . import report

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"
SEVERITIES = (CRITICAL, WARNING, INFO)
RANK = {CRITICAL: 0, WARNING: 1, INFO: 2}
CHECKS = ("database", "accounts", "tls", "containers", "sockets", "files", "backups", "log_audit", "audit")

# Accounts the engine itself needs (not judged against the matrix; still judged for what they can do remotely).
PG_BOOTSTRAP = ("postgres",)
MYSQL_BOOTSTRAP = ("root@localhost", "mariadb.sys@localhost")
# Environment variable names that hold secrets (a *_FILE variable points to a file instead: fine).
SECRET_ENV = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|SECRET|KEY|TOKEN|CREDENTIAL", re.I)
URL_WITH_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:[^/@\s]+@")
# Capabilities that amount to root on the host.
DANGEROUS_CAPS = frozenset(["ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "SYS_RAWIO", "DAC_READ_SEARCH",
                            "NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO",
                            "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN"])
TLS_OLD = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")
BACKUP_DATA = re.compile(r"\.(dump|tar|sql|bak|gz|enc|zst|xz)(\.|$)")


class SecurityError(Exception):
    """An input to the audit is wrong; the message says which and what to give instead."""


def finding(check, severity, subject, message, action):
    if severity not in SEVERITIES:
        raise SecurityError("severity %r is not one of %s" % (severity, ", ".join(SEVERITIES)))
    return {"check": check, "severity": severity, "subject": subject, "message": message, "action": action}


def could_not(check, subject, error, action):
    """A check that was asked for and could not run: an audit that cannot see is not a pass."""
    return finding(check, CRITICAL, subject, "could not be audited: %s" % error, action)


def summarize(findings):
    counts = dict((s, sum(1 for f in findings if f["severity"] == s)) for s in SEVERITIES)
    return counts


def ordered(findings):
    return sorted(findings, key=lambda f: (RANK[f["severity"]], f["check"], f["subject"]))


# ---------------------------------------------------------------------------------------------- role matrix
def expected_matrix(expected):
    """``expected_roles`` (list of {name, superuser, login}) as {name: {"superuser": bool, "login": bool}}."""
    matrix = {}
    for i, entry in enumerate(expected or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise SecurityError("expected_roles[%d] needs a name (a dict: name, superuser, login), not %r"
                                % (i, entry))
        values = {}
        for key in ("superuser", "login"):
            value = entry.get(key, False)
            if not isinstance(value, bool):
                raise SecurityError("expected_roles[%d] (%s): %s must be true or false, not %r"
                                    % (i, entry["name"], key, value))
            values[key] = value
        unknown = set(entry) - {"name", "superuser", "login"}
        if unknown:
            raise SecurityError("expected_roles[%d] (%s): unknown key(s) %s; use name, superuser, login"
                                % (i, entry["name"], ", ".join(sorted(unknown))))
        if entry["name"] in matrix:
            raise SecurityError("expected_roles names %s twice" % entry["name"])
        matrix[entry["name"]] = values
    return matrix


def _matrix_findings(kind, name, actual_super, actual_login, matrix, bootstrap):
    """A role against the matrix: more than expected is a finding; unknown roles are warnings."""
    if not matrix or name in bootstrap:
        return []
    if name not in matrix:
        return [finding("database", WARNING, "%s %s" % (kind, name), "is not in the expected role matrix",
                        "drop it if nobody needs it, or add it to the matrix (the database role's expected roles)")]
    want, out = matrix[name], []
    if actual_login and not want["login"]:
        out.append(finding("database", WARNING, "%s %s" % (kind, name), "can log in; the matrix says it should not",
                           "make it NOLOGIN (PostgreSQL) or lock the account (MariaDB: ALTER USER ... ACCOUNT LOCK)"))
    if actual_super and not want["superuser"]:
        out.append(finding("database", CRITICAL, "%s %s" % (kind, name),
                           "has superuser powers; the matrix says it should not",
                           "take them away (the database role's role matrix does it) and use the least role"))
    return out


def missing_roles(present, matrix, kind):
    return [finding("database", INFO, "%s %s" % (kind, name), "is in the expected role matrix but does not exist",
                    "run the deploy (the database role creates the roles of the matrix) or drop it from the matrix")
            for name in sorted(set(matrix) - set(present))]


# ---------------------------------------------------------------------------------------------- PostgreSQL
PG_ROLES_SQL = r"""SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolcanlogin,
       COALESCE(to_char(rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '')
  FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY rolname;
"""
# Needs a role that may read pg_authid (a superuser); without it "no password" cannot be told.
PG_NO_PASSWORD_SQL = "SELECT rolname FROM pg_authid WHERE rolcanlogin AND rolpassword IS NULL ORDER BY rolname;\n"  # noqa: S105
PG_LOG_CONNECTIONS_SQL = "SHOW log_connections;\n"


def _flag(value):
    return str(value).strip().lower() in ("t", "true", "1", "y", "yes", "on")


def parse_pg_roles(rows):
    """Rows of PG_ROLES_SQL as dicts; rows of the wrong shape raise SecurityError."""
    roles = []
    for row in rows:
        if len(row) != 8:
            raise SecurityError("unexpected row from pg_roles: %d fields, 8 expected" % len(row))
        roles.append({"name": row[0], "superuser": _flag(row[1]), "createrole": _flag(row[2]),
                      "createdb": _flag(row[3]), "bypassrls": _flag(row[4]), "replication": _flag(row[5]),
                      "login": _flag(row[6]), "valid_until": row[7] or None})
    return roles


def judge_pg_roles(roles, expected=None, bootstrap=PG_BOOTSTRAP, no_password=None, now=None):
    """Findings for PostgreSQL roles (``parse_pg_roles``) against the matrix (``expected_matrix``).

    ``no_password``: login roles without a password (from pg_authid), or None when that could not be read.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    matrix = expected or {}
    out = []
    no_expiry = []
    for role in roles:
        name, subject = role["name"], "role %s" % role["name"]
        if role["superuser"] and name not in bootstrap and not matrix.get(name, {}).get("superuser"):
            can_login = " and can log in" if role["login"] else ""
            out.append(finding("database", CRITICAL, subject, "is SUPERUSER%s" % can_login,
                               "ALTER ROLE %s NOSUPERUSER and grant only what it needs (the role matrix); daily work "
                               "must not run as a superuser" % name))
        elif not role["superuser"]:
            powers = [p.upper() for p in ("createrole", "bypassrls") if role[p]]
            if powers:
                out.append(finding("database", WARNING, subject, "has %s" % " and ".join(powers),
                                   "ALTER ROLE %s %s unless it administers roles or must bypass row security"
                                   % (name, " ".join("NO" + p for p in powers))))
        out.extend(f for f in _matrix_findings("role", name, role["superuser"], role["login"], matrix, bootstrap)
                   if not (f["severity"] == CRITICAL and any(o["subject"] == subject and o["severity"] == CRITICAL
                                                             for o in out)))
        if role["login"]:
            until = report.parse_time(role["valid_until"]) if role["valid_until"] else None  # infinity: None
            if until is None:
                no_expiry.append(name)
            elif until <= now:
                out.append(finding("database", WARNING, subject, "its password expired on %s (VALID UNTIL) but the "
                                   "role can still log in" % report.isoformat(until),
                                   "set a new password, or make the role NOLOGIN if it is not used"))
    if no_expiry:
        out.append(finding("accounts", INFO, "roles %s" % ", ".join(sorted(no_expiry)),
                           "log in with a password that never expires (no VALID UNTIL); PostgreSQL does not record "
                           "when a password was last changed, so its age cannot be told",
                           "rotate these passwords on schedule (the rotation playbook) and keep the date in its "
                           "audit log"))
    if no_password is None:
        out.append(finding("accounts", INFO, "roles", "which login roles have no password could not be told (it "
                           "needs a role that may read pg_authid)", "run the audit as a superuser once, or check "
                           "pg_hba.conf allows no trust/peer logins from the network"))
    else:
        for name in sorted(no_password):
            out.append(finding("accounts", WARNING, "role %s" % name, "can log in and has no password",
                               "set a password or make it NOLOGIN; check pg_hba.conf has no trust entries"))
    out.extend(missing_roles([r["name"] for r in roles], matrix, "role"))
    return out


def judge_pg_unused(log_connections):
    """PostgreSQL keeps no last-login time; with log_connections the server log has the logins."""
    if _flag(log_connections):
        return [finding("accounts", INFO, "unused accounts", "PostgreSQL does not record a last login per role; "
                        "log_connections is on, so the server log holds the logins",
                        "search the server log for 'connection authorized: user=' to find roles unused for months")]
    return [finding("accounts", INFO, "unused accounts", "not recorded: PostgreSQL keeps no last login per role and "
                    "log_connections is off", "turn on log_connections (and keep the logs a year) to tell unused "
                    "roles next quarter")]


# ---------------------------------------------------------------------------------------------- MariaDB
# Password hashes are compared with '' in SQL and never leave the server.
MYSQL_ACCOUNTS_SQL = """SELECT g.User, g.Host, IFNULL(JSON_VALUE(g.Priv, '$.plugin'), ''),
  IF(IFNULL(JSON_VALUE(g.Priv, '$.authentication_string'), '') = '', 1, 0),
  IF(IFNULL(JSON_VALUE(g.Priv, '$.account_locked'), 'false') IN ('true', '1'), 1, 0),
  IFNULL(JSON_VALUE(g.Priv, '$.password_last_changed'), ''),
  IF(IFNULL(JSON_VALUE(g.Priv, '$.is_role'), 'false') IN ('true', '1'), 1, 0),
  IFNULL((SELECT GROUP_CONCAT(p.PRIVILEGE_TYPE ORDER BY p.PRIVILEGE_TYPE) FROM information_schema.USER_PRIVILEGES p
          WHERE p.GRANTEE = CONCAT('''', g.User, '''@''', g.Host, '''') AND p.PRIVILEGE_TYPE <> 'USAGE'), ''),
  IFNULL((SELECT MAX(p.IS_GRANTABLE) FROM information_schema.USER_PRIVILEGES p
          WHERE p.GRANTEE = CONCAT('''', g.User, '''@''', g.Host, '''')), 'NO')
  FROM mysql.global_priv g ORDER BY g.User, g.Host;
"""


def parse_mysql_accounts(rows):
    accounts = []
    for row in rows:
        if len(row) != 9:
            raise SecurityError("unexpected row from mysql.global_priv: %d fields, 9 expected" % len(row))
        changed = row[5].strip()
        accounts.append({"user": row[0], "host": row[1], "plugin": row[2], "no_password": row[3] == "1",
                         "locked": row[4] == "1", "password_changed": int(changed) if changed.isdigit() else None,
                         "role": row[6] == "1", "privileges": [p for p in row[7].split(",") if p],
                         "grant_option": row[8].upper() == "YES"})
    return accounts


def _is_local(host):
    return host in ("localhost", "127.0.0.1", "::1")


def mysql_superuser(acc):
    """Superuser powers in MariaDB terms: SUPER, CREATE USER, or the right to pass privileges on."""
    return acc["grant_option"] or "SUPER" in acc["privileges"] or "CREATE USER" in acc["privileges"]


def judge_mysql_accounts(accounts, expected=None, bootstrap=MYSQL_BOOTSTRAP, now=None, max_password_age_days=365):
    """Findings for MariaDB accounts (``parse_mysql_accounts``); the matrix is matched on the user name."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    matrix = expected or {}
    out = []
    seen = set()
    bootstrap_users = {b.split("@", maxsplit=1)[0] for b in bootstrap}
    for acc in accounts:
        user, host = acc["user"], acc["host"]
        subject = "account '%s'@'%s'" % (user, host)
        if acc["role"]:
            continue
        seen.add(user)
        remote = not _is_local(host)
        wide = "%" in host or "_" in host
        if user == "root" and wide:
            out.append(finding("database", CRITICAL, subject, "root can log in from any host%s"
                               % (" with GRANT OPTION" if acc["grant_option"] else ""),
                               "DROP USER 'root'@'%s'; administer through root@localhost in the container and give "
                               "the app, backup and monitoring their own least accounts" % host))
        elif wide and acc["grant_option"]:
            out.append(finding("database", CRITICAL, subject, "holds global privileges WITH GRANT OPTION from any host",
                               "REVOKE GRANT OPTION ON *.* FROM '%s'@'%s' and grant only per database" % (user, host)))
        elif wide and acc["privileges"]:
            out.append(finding("database", WARNING, subject, "holds global privileges (%s) from any host"
                               % ", ".join(acc["privileges"][:6]) + (" ..." if len(acc["privileges"]) > 6 else ""),
                               "grant on the application's database only, and restrict the host"))
        if acc["no_password"] and not acc["locked"] and acc["plugin"] in ("", "mysql_native_password"):
            out.append(finding("accounts", CRITICAL if remote else WARNING, subject, "has no password",
                               "ALTER USER '%s'@'%s' IDENTIFIED BY a strong password, or ACCOUNT LOCK" % (user, host)))
        if user not in bootstrap_users:
            out.extend(_matrix_findings("account", user, mysql_superuser(acc), not acc["locked"], matrix, ()))
        if acc["password_changed"] and not acc["locked"] and max_password_age_days:
            age = (now - datetime.datetime.fromtimestamp(acc["password_changed"], datetime.timezone.utc)).days
            if age > max_password_age_days:
                out.append(finding("accounts", WARNING, subject, "password last changed %d days ago" % age,
                                   "rotate it (the password rotation playbook)"))
    out = _dedupe(out)
    out.extend(missing_roles(seen, matrix, "account"))
    return out


def _dedupe(findings):
    seen, out = set(), []
    for f in findings:
        key = (f["subject"], f["severity"], f["message"])
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def judge_mysql_unused():
    return [finding("accounts", INFO, "unused accounts", "not recorded: MariaDB keeps no last login per account by "
                    "default", "enable the server_audit plugin (CONNECT events) to tell unused accounts next quarter")]


# ---------------------------------------------------------------------------------------------- TLS
def parse_endpoint(url):
    """(scheme, host, port) of the public endpoint's URL; SecurityError when it is not http(s)://host[:port]."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SecurityError("endpoint %r must be an http:// or https:// URL with a host" % (url,))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise SecurityError("endpoint %r has a port that is not a number from 1 to 65535" % (url,)) from None
    return parts.scheme, parts.hostname, port


def probe_tls(host, port, timeout=5.0, server_name=None):
    """What the endpoint offers: {"protocol", "not_after" (aware), "verified", "verify_error"}; OSError/SSLError."""
    result = {"protocol": None, "not_after": None, "verified": True, "verify_error": None}
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                ssl.create_default_context().wrap_socket(sock, server_hostname=server_name or host) as tls:
            result["protocol"] = tls.version()
            stamp = ssl.cert_time_to_seconds(tls.getpeercert()["notAfter"])
            result["not_after"] = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)
            return result
    except ssl.SSLCertVerificationError as exc:
        result.update(verified=False, verify_error=exc.verify_message or str(exc))
    # Not trusted: look again without verifying, for the protocol and the expiry.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as sock, \
            context.wrap_socket(sock, server_hostname=server_name or host) as tls:
        result["protocol"] = tls.version()
        der = tls.getpeercert(binary_form=True)
    result["not_after"] = _der_not_after(der)
    return result


def _der_not_after(der):
    try:
        from cryptography import x509
    except ImportError:
        return None
    cert = x509.load_der_x509_certificate(der)
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def judge_tls(endpoint, probed, now=None, warn_days=30, critical_days=7, error=None):
    """Findings for the public endpoint; ``probed`` is probe_tls()'s result (None when not probed)."""
    scheme, host, port = parse_endpoint(endpoint)
    subject = "endpoint %s" % endpoint
    if scheme == "http":
        return [finding("tls", INFO, subject, "is plain http: TLS was not checked",
                        "serve the public endpoint over https (a proxy with a certificate) before the system is "
                        "reachable from outside the school")]
    if error is not None:
        return [could_not("tls", subject, error, "check that %s:%d answers TLS from this host" % (host, port))]
    now = now or datetime.datetime.now(datetime.timezone.utc)
    out = []
    protocol = probed.get("protocol")
    if protocol in TLS_OLD:
        out.append(finding("tls", CRITICAL, subject, "negotiated %s, which is broken" % protocol,
                           "allow TLS 1.2 and 1.3 only (nginx: ssl_protocols TLSv1.2 TLSv1.3)"))
    if not probed.get("verified", True):
        out.append(finding("tls", CRITICAL, subject, "presents a certificate that does not verify (%s)"
                           % probed.get("verify_error"), "install a certificate for %s from a trusted CA" % host))
    not_after = probed.get("not_after")
    if not_after is None:
        out.append(finding("tls", WARNING, subject, "certificate expiry could not be read (the Python package "
                           "cryptography is missing where the module runs)", "install cryptography and run again"))
    else:
        days = (not_after - now).total_seconds() / 86400.0
        text = "certificate expires %s (%d days)" % (report.isoformat(not_after), int(days))
        if days <= critical_days:
            out.append(finding("tls", CRITICAL, subject, text if days > 0 else "certificate expired %s"
                               % report.isoformat(not_after), "renew the certificate now"))
        elif days <= warn_days:
            out.append(finding("tls", WARNING, subject, text, "renew the certificate this month"))
        else:
            out.append(finding("tls", INFO, subject, "%s, protocol %s" % (text, protocol or "?"),
                               "nothing to do"))
    return out


# ---------------------------------------------------------------------------------------------- containers
def in_stack(name, project):
    """Containers of the stack: named ``<project>`` or ``<project>-...`` / ``<project>_...``."""
    name = name.lstrip("/")
    return name == project or name.startswith(project + "-") or name.startswith(project + "_")


def _public_host_ip(ip):
    """Anything but loopback: "" (all addresses), 0.0.0.0, ::, or a real address."""
    return not (ip.startswith("127.") or ip in ("::1", "[::1]", "localhost"))


def main_uid(inspect, top):
    """The uid of the container's main process (``State.Pid``) from ``docker top`` with ``-o uid,pid``, or None."""
    titles = [t.upper() for t in (top or {}).get("Titles") or []]
    if "UID" not in titles or "PID" not in titles:
        return None
    pid = str((inspect.get("State") or {}).get("Pid") or "")
    for row in (top or {}).get("Processes") or []:
        if len(row) == len(titles) and row[titles.index("PID")] == pid and row[titles.index("UID")].isdigit():
            return int(row[titles.index("UID")])
    return None


def judge_container(inspect, public_ports=(), uid=None):
    """Findings for one container's ``docker inspect``; ``uid``: its main process's uid (main_uid), if known."""
    name = (inspect.get("Name") or "?").lstrip("/")
    subject = "container %s" % name
    config = inspect.get("Config") or {}
    host = inspect.get("HostConfig") or {}
    out = []
    user = str(config.get("User") or "").strip()
    if user.split(":", maxsplit=1)[0] in ("", "0", "root"):
        if uid:  # the entrypoint started as root and dropped to another user
            out.append(finding("containers", INFO, subject, "starts as root; its main process runs as uid %d" % uid,
                               "nothing urgent; a USER in the image would keep even the entrypoint unprivileged"))
        else:
            out.append(finding("containers", WARNING, subject, "runs as root%s" % ("" if user else " (no USER set)"),
                               "run it as an unprivileged user (image USER or the container's user option)"))
    if host.get("Privileged"):
        out.append(finding("containers", CRITICAL, subject, "is privileged (root on the host)",
                           "remove privileged: true; add only the capabilities it needs"))
    caps = [c for c in host.get("CapAdd") or [] if c]
    if caps:
        dangerous = [c for c in caps if c.upper() in DANGEROUS_CAPS]
        out.append(finding("containers", CRITICAL if dangerous else WARNING, subject, "has added capabilities %s"
                           % ", ".join(caps), "drop them (cap_add) unless the service cannot start without them"))
    bindings = (inspect.get("NetworkSettings") or {}).get("Ports") or host.get("PortBindings") or {}
    for container_port, binds in sorted(bindings.items()):
        for bind in binds or []:
            ip, port = str(bind.get("HostIp") or ""), str(bind.get("HostPort") or "")
            if not _public_host_ip(ip):
                continue
            where = "%s:%s" % (ip or "all addresses", port)
            if port.isdigit() and int(port) in public_ports:
                out.append(finding("containers", INFO, subject, "publishes %s on %s, an expected public port"
                                   % (container_port, where), "nothing to do"))
            else:
                out.append(finding("containers", WARNING, subject, "publishes %s on %s (reachable from other machines)"
                                   % (container_port, where), "publish it on 127.0.0.1 (or a private address) "
                                   "unless it must be public; then list it in public_ports"))
    exposed = []
    for item in config.get("Env") or []:
        var, sep, value = str(item).partition("=")
        if not sep or not value or var.upper().endswith("_FILE"):
            continue
        if SECRET_ENV.search(var) or URL_WITH_PASSWORD.match(value):
            exposed.append(var)
    if exposed:
        out.append(finding("containers", WARNING, subject, "has secrets in its environment, readable by anyone who "
                           "may run docker inspect: %s" % ", ".join(sorted(exposed)),
                           "pass them as files (Docker secrets, a *_FILE variable, a 0400 mount) instead"))
    return out


# ---------------------------------------------------------------------------------------------- sockets
def _hex_to_ipv4(text):
    raw = bytes.fromhex(text)
    return socket.inet_ntop(socket.AF_INET, raw[::-1])


def _hex_to_ipv6(text):
    raw = bytes.fromhex(text)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def parse_proc_net_tcp(text, ipv6=False):
    """Listening sockets (state 0A) of /proc/net/tcp or tcp6 as [(address, port)]; bad lines are skipped."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A":
            continue
        address, _sep, port = fields[1].rpartition(":")
        try:
            ip = _hex_to_ipv6(address) if ipv6 else _hex_to_ipv4(address)
            found.append((ip, int(port, 16)))
        except (ValueError, OSError):
            continue
    return sorted(set(found))


def is_loopback(ip):
    return ip.startswith("127.") or ip == "::1" or ip.startswith("::ffff:127.")


def judge_sockets(listening, public_ports=()):
    """One finding per port listening on a non-loopback address (expected public ports: info)."""
    ports = {}
    for ip, port in listening:
        if not is_loopback(ip):
            ports.setdefault(port, set()).add(ip)
    out = []
    for port in sorted(ports):
        addresses = ", ".join(sorted(ports[port]))
        subject = "port %d" % port
        if port in public_ports:
            out.append(finding("sockets", INFO, subject, "listens on %s, an expected public port" % addresses,
                               "nothing to do"))
        else:
            out.append(finding("sockets", WARNING, subject, "listens on %s (not loopback)" % addresses,
                               "bind the service to 127.0.0.1 or firewall the port, unless it must be reachable; "
                               "then list it in public_ports"))
    return out


# ---------------------------------------------------------------------------------------------- files
def file_kind(name):
    """backup (data of a backup), manifest, other: how much a readable file gives away."""
    if name.endswith(".manifest.json") or name.endswith(".verify.json"):
        return "manifest"
    if BACKUP_DATA.search(name):
        return "backup"
    return "other"


def judge_file_modes(entries):
    """``entries``: [{"path", "mode" (st_mode), "kind": backup/key/manifest/other/directory}]."""
    out = []
    for entry in entries:
        mode, kind, path = entry["mode"], entry["kind"], entry["path"]
        perms = stat.S_IMODE(mode)
        world, group = bool(perms & stat.S_IROTH), bool(perms & stat.S_IRGRP)
        text = "mode %04o" % perms
        subject = "%s %s" % ("directory" if kind == "directory" else "file", path)
        if kind == "directory":
            if perms & (stat.S_IROTH | stat.S_IXOTH | stat.S_IWOTH):
                out.append(finding("files", WARNING, subject, "%s: others may list or enter it" % text,
                                   "chmod 0700 %s" % path))
        elif kind in ("backup", "key") and (world or group):
            out.append(finding("files", CRITICAL, subject, "%s: %s-readable %s" % (
                text, "world" if world else "group", "backup data" if kind == "backup" else "key"),
                "chmod 0600 %s (and find out who could have read it)" % path))
        elif world:
            out.append(finding("files", WARNING, subject, "%s: world-readable" % text, "chmod 0600 %s" % path))
        if perms & stat.S_IWOTH and kind != "directory":
            out.append(finding("files", CRITICAL, subject, "%s: world-writable" % text, "chmod 0600 %s" % path))
    return out


def scan_secrets(directory):
    """The files of a directory of generated secrets (the demo inventory's rollcall_secrets_dir) and its
    subdirectories, each a key (a password, the backup key, an old key), not following links; none when it does not
    exist (nothing was generated on this host)."""
    entries = []
    for top, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                entries.append({"path": path, "mode": st.st_mode, "kind": "key"})
    return entries


def scan_files(backup_directory=None, key_files=()):
    """What judge_file_modes needs: the backup directory, the files in it (not following links), the key files."""
    entries, missing = [], []
    if backup_directory:
        st = os.lstat(backup_directory)
        entries.append({"path": backup_directory, "mode": st.st_mode, "kind": "directory"})
        for name in sorted(os.listdir(backup_directory)):
            path = os.path.join(backup_directory, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                entries.append({"path": path, "mode": st.st_mode, "kind": file_kind(name)})
    for path in key_files or ():
        try:
            entries.append({"path": path, "mode": os.stat(path).st_mode, "kind": "key"})
        except FileNotFoundError:
            missing.append(path)
    return entries, missing


def file_findings(backup_directory=None, key_files=(), secrets_directory=None):
    """The modes of the backup directory, its files, the key files and the files of ``secrets_directory``. A backup
    directory that does not exist yet (no backup was made on this host) has nothing to audit: a warning that says
    so, not an audit that failed."""
    absent = bool(backup_directory) and not os.path.lexists(backup_directory)
    entries, missing = scan_files(None if absent else backup_directory, key_files)
    entries += scan_secrets(secrets_directory) if secrets_directory else []
    out = judge_file_modes(entries)
    if absent:
        out.append(finding("files", WARNING, "backup directory %s" % backup_directory,
                           "does not exist: no backup was made on this host yet, so there is nothing to audit",
                           "run playbooks/backup.yml (it creates the directory, owner only)"))
    out += [finding("files", WARNING, "file %s" % path, "key file is missing", "check rollcall_backup_key_file")
            for path in missing]
    return out


# ---------------------------------------------------------------------------------------------- backups
def judge_encryption(items, environment):
    """``items`` from backup.describe(): an unencrypted backup is critical in production, a warning elsewhere."""
    production = (environment or "production") == "production"
    complete = [i for i in items if "error" not in i]
    plain = [i["name"] for i in complete if not i.get("encrypted")]
    if not complete:
        return [finding("backups", INFO, "backups", "no complete backup to look at", "nothing to do here (the health "
                        "check says whether backups are missing)")]
    if not plain:
        return [finding("backups", INFO, "backups", "all %d backups are encrypted" % len(complete), "nothing to do")]
    shown = ", ".join(plain[:5]) + (" and %d more" % (len(plain) - 5) if len(plain) > 5 else "")
    return [finding("backups", CRITICAL if production else WARNING, "backups",
                    "%d of %d backups are not encrypted (%s)%s" % (len(plain), len(complete), shown,
                                                                   " in production" if production else ""),
                    "set rollcall_backup_key (vault) so new backups are encrypted, then re-encrypt or delete "
                    "the plain ones")]


# ---------------------------------------------------------------------------------------------- log audit
def judge_log_audit(result):
    """The weekly access-log audit (``log_audit``'s result) folded in: a summary, a warning for attacks."""
    if not isinstance(result, dict) or not result:
        return []
    if result.get("failed") or "requests" not in result:
        return [finding("log_audit", WARNING, "access log", "the access-log audit did not run: %s"
                        % (result.get("msg") or "no result"), "run playbooks/audit.yml and read its message")]
    source = result.get("source") or "access log"
    window = result.get("window") or {}
    sqli = (result.get("sqli") or {}).get("count", 0)
    text = "%d requests %s to %s: %d 401/403, %d 429, %d 5xx, %d SQL-injection attempts" % (
        result.get("requests", 0), window.get("since", "?"), window.get("until", "?"),
        result.get("auth_failures", 0), result.get("rate_limited", 0), result.get("server_errors", 0), sqli)
    out = [finding("log_audit", INFO, source, text, "details: the weekly audit report (playbooks/audit.yml)")]
    if sqli:
        clients = ", ".join(str(c.get("client")) for c in (result.get("sqli") or {}).get("top_clients", [])[:3])
        out.append(finding("log_audit", WARNING, source, "%d requests matched SQL-injection patterns (top clients: "
                           "%s)" % (sqli, clients or "?"), "block the clients at the proxy or firewall and check "
                           "the app's answers to them"))
    return out


# ---------------------------------------------------------------------------------------------- report
def document(results, title=None, generated_at=None, actor=None, secrets=()):
    """The report: per host its findings (worst first), overall status (critical / warning / ok) and counts."""
    generated_at = generated_at or report.utcnow()
    hosts = []
    for i, entry in enumerate(report.redact(list(results or []), secrets)):
        if not isinstance(entry, dict):
            entry = {"msg": "not a security_audit result"}
        host = str(entry.get("host") or "host-%d" % (i + 1))
        findings = [f for f in entry.get("findings") or [] if isinstance(f, dict) and f.get("severity") in RANK]
        if entry.get("failed") or entry.get("unreachable") or "findings" not in entry:
            findings.append(could_not("audit", host, entry.get("msg") or "no result from security_audit",
                                      "run the audit again and read the task's message"))
        findings = ordered(findings)
        hosts.append({"host": host, "findings": findings, "counts": summarize(findings),
                      "checked": entry.get("checked") or []})
    counts = summarize([f for h in hosts for f in h["findings"]])
    status = report.CRITICAL if counts[CRITICAL] else report.WARNING if counts[WARNING] else report.OK
    hosts.sort(key=lambda h: (-counts_rank(h["counts"]), h["host"]))
    failing = ["%s: %s %s %s (%s)" % (h["host"], f["severity"], f["subject"], f["message"], f["action"])
               for h in hosts for f in h["findings"] if f["severity"] != INFO]
    return {"kind": "security", "title": report.redact(title or "Rollcall security audit", secrets),
            "generated_at": report.isoformat(generated_at), "run_by": actor, "status": status,
            "critical": status == report.CRITICAL, "counts": counts, "failing": failing, "hosts": hosts}


def counts_rank(counts):
    return 2 if counts[CRITICAL] else 1 if counts[WARNING] else 0


def render_json(doc):
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def render_markdown(doc):
    c = doc["counts"]
    out = ["# %s" % report.md_cell(doc["title"]), "",
           "Status **%s**: %d critical, %d warning, %d info. Generated %s%s." % (
               doc["status"].upper(), c[CRITICAL], c[WARNING], c[INFO], report.md_cell(doc["generated_at"]),
               " by %s" % report.md_cell(doc["run_by"]) if doc.get("run_by") else "")]
    for h in doc["hosts"]:
        out += ["", "## %s" % report.md_cell(h["host"]), ""]
        rows = [[f["severity"], f["check"], f["subject"], f["message"], f["action"]] for f in h["findings"]]
        out.append(report.md_table(["severity", "check", "subject", "finding", "what to do"], rows) if rows
                   else "No findings.")
    return "\n".join(out) + "\n"


_CLASS = {CRITICAL: "st-critical", WARNING: "st-warning", INFO: "st-ok"}


def render_html(doc):
    c = doc["counts"]
    parts = ['<h1>%s</h1><p class="meta">Generated %s%s</p>' % (
        report.esc(doc["title"]), report.esc(doc["generated_at"]),
        " by %s" % report.esc(doc["run_by"]) if doc.get("run_by") else ""),
        '<p><span class="overall st-%s">%s</span></p><p class="counts"><span>%d critical</span><span>%d warning'
        '</span><span>%d info</span></p>' % (report.esc(doc["status"]), report.esc(doc["status"].upper()),
                                             c[CRITICAL], c[WARNING], c[INFO])]
    for h in doc["hosts"]:
        rows = [['<span class="badge %s">%s</span>' % (_CLASS[f["severity"]], report.esc(f["severity"].upper())),
                 f["check"], f["subject"], f["message"], f["action"]] for f in h["findings"]]
        table = report.html_table(["severity", "check", "subject", "finding", "what to do"], rows, raw=(0,),
                                  row_classes=[_CLASS[f["severity"]] for f in h["findings"]]) if rows else \
            "<p>No findings.</p>"
        parts.append('<section class="card"><h2>%s</h2>%s</section>' % (report.esc(h["host"]), table))
    return report.html_page(doc["title"], "\n".join(parts), doc["generated_at"])


RENDERERS = {"json": render_json, "md": render_markdown, "html": render_html}
