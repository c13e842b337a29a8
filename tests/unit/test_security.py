"""plugins/module_utils/security.py: one test per rule of the quarterly security audit, and its report."""

import datetime
import json
import os
import stat

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import security
from ansible_collections.rollcall.ops.plugins.module_utils.security import CRITICAL, INFO, WARNING, SecurityError

UTC = datetime.UTC
NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def severities(findings, subject=None):
    return sorted(f["severity"] for f in findings if subject is None or f["subject"] == subject)


def about(findings, text):
    return [f for f in findings if text in f["subject"] or text in f["message"]]


# ---------------------------------------------------------------------------------------------- finding, matrix
def test_every_finding_says_what_to_do_and_bad_severity_is_refused():
    f = security.finding("files", WARNING, "file x", "mode 0644", "chmod 0600 x")
    assert set(f) == {"check", "severity", "subject", "message", "action"}
    with pytest.raises(SecurityError, match="severity"):
        security.finding("files", "bad", "x", "y", "z")


def test_expected_matrix_reads_the_role_list():
    matrix = security.expected_matrix([{"name": "sms_app", "login": True}, {"name": "owner", "superuser": False}])
    assert matrix == {"sms_app": {"superuser": False, "login": True}, "owner": {"superuser": False, "login": False}}


@pytest.mark.parametrize("bad, message", [
    ([{"superuser": True}], "needs a name"),
    (["sms"], "needs a name"),
    ([{"name": "a", "login": "yes"}], "login must be true or false"),
    ([{"name": "a", "super": True}], "unknown key"),
    ([{"name": "a"}, {"name": "a"}], "twice"),
])
def test_expected_matrix_refuses_bad_entries(bad, message):
    with pytest.raises(SecurityError, match=message):
        security.expected_matrix(bad)


# ---------------------------------------------------------------------------------------------- PostgreSQL
def pg_row(name, superuser="f", createrole="f", bypassrls="f", login="t", valid_until=""):
    return [name, superuser, createrole, "f", bypassrls, "f", login, valid_until]


def test_parse_pg_roles_and_bad_rows():
    (role,) = security.parse_pg_roles([pg_row("sms", superuser="t", valid_until="2027-01-01T00:00:00Z")])
    assert role["superuser"] and role["login"] and not role["createrole"] and role["valid_until"]
    with pytest.raises(SecurityError, match="8 expected"):
        security.parse_pg_roles([["sms", "t"]])


def judge_pg(rows, expected=None, no_password=(), **kwargs):
    matrix = security.expected_matrix(expected) if expected is not None else None
    return security.judge_pg_roles(security.parse_pg_roles(rows), matrix, no_password=no_password, now=NOW,
                                   **kwargs)


def test_pg_superuser_other_than_postgres_is_critical_and_named():
    out = judge_pg([pg_row("postgres", superuser="t", createrole="t", bypassrls="t"), pg_row("sms", superuser="t")])
    crit = [f for f in out if f["severity"] == CRITICAL]
    assert [f["subject"] for f in crit] == ["role sms"]
    assert "SUPERUSER" in crit[0]["message"] and "NOSUPERUSER" in crit[0]["action"]


def test_pg_superuser_allowed_by_the_matrix_is_no_finding():
    out = judge_pg([pg_row("dba", superuser="t")], expected=[{"name": "dba", "superuser": True, "login": True}])
    assert not [f for f in out if f["severity"] != INFO]


def test_pg_createrole_and_bypassrls_are_warnings():
    out = judge_pg([pg_row("admin", createrole="t", bypassrls="t")])
    (f,) = [f for f in out if f["check"] == "database"]
    assert f["severity"] == WARNING and "CREATEROLE and BYPASSRLS" in f["message"]


def test_pg_role_not_in_the_matrix_is_a_warning_and_more_than_expected_is_a_finding():
    expected = [{"name": "sms_app", "login": True}, {"name": "sms_owner", "login": False}, {"name": "gone"}]
    out = judge_pg([pg_row("postgres", superuser="t"), pg_row("sms_app"), pg_row("sms_owner"), pg_row("stray")],
                   expected=expected)
    assert severities(out, "role stray") == [WARNING] and "not in the expected role matrix" in \
        about(out, "stray")[0]["message"]
    assert severities(out, "role sms_owner") == [WARNING] and "can log in" in about(out, "sms_owner")[0]["message"]
    assert severities(out, "role sms_app") == []
    assert severities(out, "role gone") == [INFO]
    assert severities(out, "role postgres") == []  # bootstrap: not compared


def test_pg_superuser_against_the_matrix_is_one_critical_not_two():
    out = judge_pg([pg_row("sms_app", superuser="t")], expected=[{"name": "sms_app", "login": True}])
    assert severities(out, "role sms_app") == [CRITICAL]


def test_pg_password_age_is_said_to_be_unrecorded_and_expired_passwords_warn():
    out = judge_pg([pg_row("a"), pg_row("b", valid_until="2026-01-01T00:00:00Z"),
                    pg_row("c", valid_until="2030-01-01T00:00:00Z"), pg_row("nologin", login="f")])
    (age,) = about(out, "does not record")
    assert age["severity"] == INFO and age["subject"] == "roles a"
    assert severities(out, "role b") == [WARNING] and "expired" in about(out, "role b")[0]["message"]
    assert severities(out, "role c") == []


def test_pg_no_password_known_warns_and_unknown_says_so():
    out = judge_pg([pg_row("sms")], no_password=["sms"])
    assert [f["severity"] for f in about(out, "no password")] == [WARNING]
    out = judge_pg([pg_row("sms")], no_password=None)
    (f,) = about(out, "could not be told")
    assert f["severity"] == INFO


def test_pg_unused_accounts_are_not_recorded():
    (off,) = security.judge_pg_unused("off")
    (on,) = security.judge_pg_unused("on")
    assert off["severity"] == on["severity"] == INFO
    assert "not recorded" in off["message"] and "log_connections is on" in on["message"]


# ---------------------------------------------------------------------------------------------- MariaDB
ALL = "ALTER,CREATE,CREATE USER,DELETE,DROP,INSERT,SELECT,SUPER,UPDATE"


def maria_row(user, host, no_password="0", locked="0", changed="1796160244", privs="", grantable="NO",
              plugin="mysql_native_password", role="0"):
    return [user, host, plugin, no_password, locked, changed, role, privs, grantable]


def judge_maria(rows, expected=None, **kwargs):
    matrix = security.expected_matrix(expected) if expected is not None else None
    return security.judge_mysql_accounts(security.parse_mysql_accounts(rows), matrix, now=NOW, **kwargs)


def test_parse_mysql_accounts_and_bad_rows():
    (acc,) = security.parse_mysql_accounts([maria_row("root", "%", privs=ALL, grantable="YES")])
    assert acc["grant_option"] and "SUPER" in acc["privileges"] and acc["password_changed"] == 1796160244
    with pytest.raises(SecurityError, match="9 expected"):
        security.parse_mysql_accounts([["root"]])


def test_root_from_any_host_is_critical_root_localhost_is_not():
    out = judge_maria([maria_row("root", "%", privs=ALL, grantable="YES"),
                       maria_row("root", "localhost", privs=ALL, grantable="YES"),
                       maria_row("mariadb.sys", "localhost", no_password="1", locked="1")])
    assert severities(out, "account 'root'@'%'") == [CRITICAL]
    assert "GRANT OPTION" in about(out, "'root'@'%'")[0]["message"]
    assert severities(out, "account 'root'@'localhost'") == []
    assert severities(out, "account 'mariadb.sys'@'localhost'") == []  # locked, no password: fine


def test_any_host_with_grant_option_is_critical_and_global_privileges_warn():
    out = judge_maria([maria_row("ops", "%", privs="SELECT", grantable="YES"),
                       maria_row("report", "10.0.%", privs="SELECT,SHOW DATABASES"),
                       maria_row("local", "localhost", privs="SELECT")])
    assert severities(out, "account 'ops'@'%'") == [CRITICAL]
    assert severities(out, "account 'report'@'10.0.%'") == [WARNING]
    assert severities(out, "account 'local'@'localhost'") == []


def test_accounts_without_a_password_critical_remote_warning_local():
    out = judge_maria([maria_row("anon", "%", no_password="1"), maria_row("cli", "localhost", no_password="1"),
                       maria_row("sock", "localhost", no_password="1", plugin="unix_socket")])
    assert [f["severity"] for f in about(out, "no password")] == [CRITICAL, WARNING]


def test_maria_matrix_more_than_expected_and_unknown_accounts():
    expected = [{"name": "sms_app", "login": True}, {"name": "sms_backup", "login": True}, {"name": "missing"}]
    out = judge_maria([maria_row("sms_app", "%", privs="SUPER"), maria_row("sms_backup", "%"),
                       maria_row("stray", "%")], expected=expected)
    assert CRITICAL in severities(out, "account sms_app")
    assert severities(out, "account sms_backup") == []
    assert severities(out, "account stray") == [WARNING]
    assert severities(out, "account missing") == [INFO]


def test_maria_password_age():
    old = str(int((NOW - datetime.timedelta(days=400)).timestamp()))
    out = judge_maria([maria_row("old", "localhost", changed=old), maria_row("new", "localhost")])
    assert [f["subject"] for f in about(out, "last changed")] == ["account 'old'@'localhost'"]
    assert not about(judge_maria([maria_row("old", "localhost", changed=old)], max_password_age_days=0),
                     "last changed")


def test_maria_unused_accounts_are_not_recorded():
    (f,) = security.judge_mysql_unused()
    assert f["severity"] == INFO and "not recorded" in f["message"]


# ---------------------------------------------------------------------------------------------- TLS
def test_parse_endpoint():
    assert security.parse_endpoint("https://sms.example.org/") == ("https", "sms.example.org", 443)
    assert security.parse_endpoint("http://127.0.0.1:8080/health") == ("http", "127.0.0.1", 8080)
    for bad in ("ftp://x", "sms.example.org", "https://x:99999/"):
        with pytest.raises(SecurityError):
            security.parse_endpoint(bad)


def test_plain_http_is_skipped_with_an_info_finding():
    (f,) = security.judge_tls("http://127.0.0.1:8080", None)
    assert f["severity"] == INFO and "not checked" in f["message"]


def tls(days, protocol="TLSv1.3", verified=True):
    return {"protocol": protocol, "not_after": NOW + datetime.timedelta(days=days), "verified": verified,
            "verify_error": None if verified else "self-signed certificate"}


@pytest.mark.parametrize("probed, expected", [
    (tls(200), [INFO]), (tls(20), [WARNING]), (tls(3), [CRITICAL]), (tls(-1), [CRITICAL]),
    (tls(200, protocol="TLSv1.1"), [CRITICAL, INFO]), (tls(200, verified=False), [CRITICAL, INFO]),
    ({"protocol": "TLSv1.3", "not_after": None}, [WARNING]),
])
def test_tls_expiry_protocol_and_trust(probed, expected):
    assert severities(security.judge_tls("https://sms.example.org", probed, now=NOW)) == sorted(expected)


def test_tls_unreachable_is_critical():
    (f,) = security.judge_tls("https://sms.example.org", None, error="connection refused")
    assert f["severity"] == CRITICAL and "connection refused" in f["message"]


# ---------------------------------------------------------------------------------------------- containers
def inspect(name="/rollcall-db", user="postgres", privileged=False, caps=None, ports=None, env=None):
    return {"Name": name, "Config": {"User": user, "Env": env or []},
            "HostConfig": {"Privileged": privileged, "CapAdd": caps},
            "NetworkSettings": {"Ports": ports or {}}}


def test_in_stack():
    assert security.in_stack("/rollcall-app", "rollcall") and security.in_stack("rollcall", "rollcall")
    assert security.in_stack("rollcall_proxy", "rollcall")
    assert not security.in_stack("rollcallx-app", "rollcall") and not security.in_stack("other", "rollcall")


def test_a_clean_container_has_no_finding():
    assert security.judge_container(inspect(ports={"5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5432"}],
                                                   "80/tcp": None}, env=["PATH=/usr/bin", "PGDATA=/x"])) == []


@pytest.mark.parametrize("user", ["", "0", "root", "0:0", "root:root"])
def test_root_container_is_a_warning(user):
    (f,) = security.judge_container(inspect(user=user))
    assert f["severity"] == WARNING and "root" in f["message"]


def test_privileged_is_critical_and_capabilities_by_danger():
    assert severities(security.judge_container(inspect(privileged=True))) == [CRITICAL]
    assert severities(security.judge_container(inspect(caps=["NET_BIND_SERVICE"]))) == [WARNING]
    assert severities(security.judge_container(inspect(caps=["SYS_ADMIN"]))) == [CRITICAL]


def test_ports_published_on_all_addresses_warn_unless_expected():
    ports = {"5432/tcp": [{"HostIp": "0.0.0.0", "HostPort": "15432"}, {"HostIp": "::", "HostPort": "15432"}],
             "443/tcp": [{"HostIp": "", "HostPort": "443"}]}
    out = security.judge_container(inspect(ports=ports), public_ports=[443])
    assert severities(out) == [INFO, WARNING, WARNING]
    assert any("0.0.0.0:15432" in f["message"] for f in out)


def test_secrets_in_the_environment_are_named_never_shown():
    env = ["POSTGRES_PASSWORD=hunter2-value", "SECRET_KEY=abcdefgh-value", "API_TOKEN=tok-value",
           "DATABASE_URL=postgresql://sms:pw-value@db/sms", "PASSWORD_FILE=/run/secrets/pw", "EMPTY_KEY=",
           "PLAIN_URL=postgresql://db/sms", "LANG=C"]
    (f,) = security.judge_container(inspect(env=env))
    assert f["severity"] == WARNING
    for name in ("POSTGRES_PASSWORD", "SECRET_KEY", "API_TOKEN", "DATABASE_URL"):
        assert name in f["message"]
    for hidden in ("PASSWORD_FILE", "EMPTY_KEY", "PLAIN_URL", "LANG"):
        assert hidden not in f["message"]
    assert "value" not in json.dumps(f)


# ---------------------------------------------------------------------------------------------- sockets
PROC_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0A00000A:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
   3: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
   garbage line
"""
PROC_TCP6 = """  sl  local_address                         remote_address                        st tx_queue
   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000
   2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000
"""


def test_parse_proc_net_tcp_finds_listeners_only():
    assert security.parse_proc_net_tcp(PROC_TCP) == [("0.0.0.0", 22), ("10.0.0.10", 5432), ("127.0.0.1", 8080)]
    assert security.parse_proc_net_tcp(PROC_TCP6, ipv6=True) == [("::", 443), ("::1", 631),
                                                                  ("::ffff:127.0.0.1", 80)]


def test_sockets_on_public_addresses_warn_loopback_is_fine():
    listening = security.parse_proc_net_tcp(PROC_TCP) + security.parse_proc_net_tcp(PROC_TCP6, ipv6=True)
    out = security.judge_sockets(listening, public_ports=[443])
    assert {f["subject"]: f["severity"] for f in out} == {"port 22": WARNING, "port 443": INFO, "port 5432": WARNING}


# ---------------------------------------------------------------------------------------------- files
def entry(path, mode, kind):
    return {"path": path, "mode": stat.S_IFREG | mode if kind != "directory" else stat.S_IFDIR | mode, "kind": kind}


def test_file_kind():
    assert security.file_kind("postgresql-sms-20261201T000000Z-full.dump.gz.enc") == "backup"
    assert security.file_kind("postgresql-sms-20261201T000000Z-full.files.tar") == "backup"
    assert security.file_kind("x.manifest.json") == "manifest"
    assert security.file_kind("notes.txt") == "other"


@pytest.mark.parametrize("mode, kind, expected", [
    (0o600, "backup", []), (0o644, "backup", [CRITICAL]), (0o640, "backup", [CRITICAL]),
    (0o640, "key", [CRITICAL]), (0o400, "key", []), (0o644, "manifest", [WARNING]), (0o640, "manifest", []),
    (0o666, "other", [CRITICAL, WARNING]), (0o700, "directory", []), (0o755, "directory", [WARNING]),
])
def test_file_modes(mode, kind, expected):
    assert severities(security.judge_file_modes([entry("/b/x", mode, kind)])) == sorted(expected)


def test_scan_files_reads_modes_without_following_links(tmp_path):
    backups = tmp_path / "b"
    backups.mkdir(mode=0o700)
    (backups / "pg.dump").write_text("x")
    os.chmod(backups / "pg.dump", 0o644)
    (backups / "link.dump").symlink_to("/etc/passwd")
    key = tmp_path / "key"
    key.write_text("k")
    os.chmod(key, 0o600)
    entries, missing = security.scan_files(str(backups), [str(key), str(tmp_path / "nokey")])
    kinds = {os.path.basename(e["path"]): (e["kind"], stat.S_IMODE(e["mode"])) for e in entries}
    assert kinds == {"b": ("directory", 0o700), "pg.dump": ("backup", 0o644), "key": ("key", 0o600)}
    assert missing == [str(tmp_path / "nokey")]
    assert severities(security.judge_file_modes(entries)) == [CRITICAL]


def test_a_backup_directory_not_made_yet_is_a_warning_that_says_what_to_run(tmp_path):
    """Found on a fresh demo: security_audit.yml before the first backup failed critical, 'could not be audited'."""
    found = security.file_findings(str(tmp_path / "none"), [str(tmp_path / "nokey")])
    assert severities(found) == [WARNING, WARNING]
    assert "no backup was made on this host yet" in found[0]["message"] and "backup.yml" in found[0]["action"]
    assert found[1]["message"] == "key file is missing"
    (tmp_path / "b").mkdir(mode=0o755)
    assert severities(security.file_findings(str(tmp_path / "b"))) == [WARNING]  # world-readable directory


def test_the_generated_secrets_are_judged_as_keys(tmp_path):
    """Found on the demo: .secrets/local/backup_key made world-readable by hand (a copy, an editor) went unnoticed:
    the audit looked at rollcall_backup_key_file only, which the demo inventory does not use."""
    secrets = tmp_path / "secrets"
    (secrets / "backup_old_keys").mkdir(parents=True, mode=0o700)
    for name, mode in (("backup_key", 0o644), ("db_password", 0o600), ("backup_old_keys/backup_key.1", 0o640)):
        (secrets / name).write_text("s")
        os.chmod(secrets / name, mode)
    (secrets / "link").symlink_to("/etc/passwd")
    found = security.file_findings(secrets_directory=str(secrets))
    assert [(f["severity"], f["subject"]) for f in found] == [
        (CRITICAL, "file %s" % (secrets / "backup_key")),
        (CRITICAL, "file %s" % (secrets / "backup_old_keys" / "backup_key.1"))], found
    assert "world-readable key" in found[0]["message"] and "group-readable key" in found[1]["message"]
    assert security.file_findings(secrets_directory=str(tmp_path / "none")) == [], "nothing generated: nothing said"


# ---------------------------------------------------------------------------------------------- backups
def test_unencrypted_backup_is_critical_in_production_warning_elsewhere():
    items = [{"name": "a", "encrypted": True}, {"name": "b", "encrypted": False}, {"name": "bad", "error": "x"}]
    (prod,) = security.judge_encryption(items, "production")
    (demo,) = security.judge_encryption(items, "demo")
    assert prod["severity"] == CRITICAL and "1 of 2" in prod["message"] and "b" in prod["message"]
    assert demo["severity"] == WARNING
    assert severities(security.judge_encryption(items, None)) == [CRITICAL]  # unset means production


def test_encrypted_or_no_backups_are_info():
    assert severities(security.judge_encryption([{"name": "a", "encrypted": True}], "production")) == [INFO]
    assert severities(security.judge_encryption([], "production")) == [INFO]


# ---------------------------------------------------------------------------------------------- log audit
def test_log_audit_is_folded_in_as_a_summary_and_attacks_warn():
    result = {"requests": 100, "auth_failures": 3, "rate_limited": 1, "server_errors": 0, "source": "container:app",
              "window": {"since": "s", "until": "u"}, "sqli": {"count": 2, "top_clients": [{"client": "192.0.2.66"}]}}
    out = security.judge_log_audit(result)
    assert severities(out) == [INFO, WARNING]
    assert "100 requests" in out[0]["message"] and "192.0.2.66" in out[1]["message"]
    assert severities(security.judge_log_audit(dict(result, sqli={"count": 0}))) == [INFO]
    assert severities(security.judge_log_audit({"failed": True, "msg": "container x does not exist"})) == [WARNING]
    assert security.judge_log_audit(None) == []


# ---------------------------------------------------------------------------------------------- report
SECRET = "Sup3r-s3cret-value"


def test_document_orders_counts_and_redacts():
    results = [
        {"host": "web1", "findings": [security.finding("sockets", WARNING, "port 22", "listens", "bind")],
         "checked": ["sockets"]},
        {"host": "db1", "findings": [security.finding("database", INFO, "roles", "x", "y"),
                                     security.finding("database", CRITICAL, "role sms", "SUPERUSER %s" % SECRET,
                                                      "fix")]},
        {"host": "db2", "failed": True, "msg": "unreachable"},
    ]
    doc = security.document(results, generated_at=NOW, actor="alice", secrets=[SECRET])
    assert doc["status"] == "critical" and doc["critical"]
    assert doc["counts"] == {CRITICAL: 2, WARNING: 1, INFO: 1}
    assert [h["host"] for h in doc["hosts"]] == ["db1", "db2", "web1"]
    assert doc["hosts"][0]["findings"][0]["severity"] == CRITICAL
    assert SECRET not in json.dumps(doc)
    assert any("db2" in line and "could not be audited" in line for line in doc["failing"])
    ok = security.document([{"host": "h", "findings": [security.finding("tls", INFO, "e", "http", "-")]}])
    assert ok["status"] == "ok" and not ok["critical"]


def test_renderers_escape_and_show_every_finding():
    doc = security.document([{"host": "db<1>", "findings": [
        security.finding("database", CRITICAL, "role <script>", "is | SUPERUSER", "ALTER ROLE")]}], generated_at=NOW)
    page = security.render_html(doc)
    assert "<script>" not in page and "&lt;script&gt;" in page and "CRITICAL" in page
    md = security.render_markdown(doc)
    assert "\\|" in md and "db&lt;1&gt;" in md
    assert json.loads(security.render_json(doc))["counts"][CRITICAL] == 1


def test_main_uid_reads_the_main_process_and_an_entrypoint_that_drops_root_is_info():
    state = dict(inspect(user=""), State={"Pid": 588, "Running": True})
    top = {"Titles": ["UID", "PID"], "Processes": [["0", "27572"], ["999", "588"]]}
    assert security.main_uid(state, top) == 999
    assert security.main_uid(state, {"Titles": ["UID", "PID"], "Processes": [["0", "1"]]}) is None
    assert security.main_uid(state, {"Titles": ["USER", "PID"], "Processes": [["root", "588"]]}) is None
    (f,) = security.judge_container(state, uid=999)
    assert f["severity"] == INFO and "uid 999" in f["message"]
    assert severities(security.judge_container(state, uid=0)) == [WARNING]
