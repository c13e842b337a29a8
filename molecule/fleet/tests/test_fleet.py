"""testinfra checks of the fleet's hosts after the journey (molecule/fleet, verify): SSH, keys, backups, containers.

Runs with Molecule's inventory (connection=ansible: each host over SSH as Ansible reaches it).
"""

import json

import pytest

testinfra_hosts = ["all"]

APP, DB, BACKUP = "rc-f-app", "rc-f-db", "rc-f-backup"


def name(host):
    return host.backend.get_hostname()


def is_app(host):
    return name(host).startswith(APP)


def private_address(host):
    return host.ansible.get_variables()["rollcall_private_address"]


def inspect(host, container):
    result = host.run("docker inspect %s" % container)
    assert result.rc == 0, "%s has no container %s: %s" % (name(host), container, result.stderr)
    return json.loads(result.stdout)[0]


def sshd_settings(host, match=None):
    command = "sshd -T" + (" -C %s" % match if match else "")
    result = host.run(command)
    assert result.rc == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


def test_sshd_takes_keys_only_and_root_by_key_only(host):
    settings = sshd_settings(host)
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["permitemptypasswords"] == "no"
    assert settings["permitrootlogin"] == "without-password"  # prohibit-password, as sshd -T spells it
    authorized = host.file("/root/.ssh/authorized_keys")
    assert authorized.mode == 0o600 and authorized.user == "root"


@pytest.mark.parametrize("account,root", [("rollcall-files", "/srv/rollcall/share"),
                                          ("rollcall-backup", "/srv/rollcall/offsite")])
def test_the_file_accounts_can_only_sftp_in_their_chroot(host, account, root):
    keeps = {"rollcall-files": DB, "rollcall-backup": BACKUP}[account]
    if name(host) != keeps:
        assert not host.user(account).exists, "%s should exist on %s only" % (account, keeps)
        return
    settings = sshd_settings(host, "user=%s,host=x,addr=192.0.2.1" % account)
    assert settings["forcecommand"] == "internal-sftp"
    assert settings["chrootdirectory"] == root
    assert settings["allowtcpforwarding"] == "no"
    assert settings["authorizedkeysfile"] == "/etc/ssh/rollcall-keys/%u"
    chroot = host.file(root)
    assert chroot.user == "root" and chroot.mode == 0o755  # sshd refuses a chroot anyone else can write
    keys = host.file("/etc/ssh/rollcall-keys/%s" % account)
    assert keys.mode == 0o600
    assert all(line.startswith("restrict ") for line in keys.content_string.splitlines() if line.strip())
    assert host.user(account).shell == "/usr/sbin/nologin"


def test_backups_are_owner_only_on_the_db_host_and_off_host(host):
    where = {DB: ("/var/backups/rollcall", "root"), BACKUP: ("/srv/rollcall/offsite/backups", "rollcall-backup")}
    if name(host) not in where:
        assert not host.file("/var/backups/rollcall").exists
        return
    directory, owner = where[name(host)]
    assert host.file(directory).mode == 0o700
    listing = host.run("find %s -maxdepth 1 -type f -printf '%%m %%u %%f\\n'" % directory)
    files = [line.split(" ", 2) for line in listing.stdout.splitlines()]
    data = [f for f in files if not f[2].endswith(".verify.json")]
    if name(host) == BACKUP:  # the db host lost its dumps at the end of the journey (db_host_lost.yml)
        assert any(f[2].endswith(".uploads.tar.enc") for f in data), files
    assert any(f[2].endswith(".dump.enc") for f in data), files
    for mode, user, filename in data:
        assert (mode, user) == ("600", owner), "%s is %s %s on %s" % (filename, mode, user, name(host))


def test_keys_of_the_fleet_are_owner_only(host):
    keys = {DB: ["/root/.ssh/rollcall_offsite"], BACKUP: []}.get(name(host), ["/root/.ssh/rollcall_files"])
    for path in keys:
        key = host.file(path)
        assert key.exists and key.mode == 0o600 and key.user == "root", path
        assert host.file(path + ".pub").exists


def test_containers_run_with_restart_policies(host):
    expected = {DB: ["sms-db"], BACKUP: []}.get(name(host), ["sms-app", "sms-proxy"])
    running = host.run("docker ps --format '{{.Names}}'").stdout.split()
    for container in expected:
        assert container in running, "%s is not running on %s (%s)" % (container, name(host), running)
        assert inspect(host, container)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    if not is_app(host):
        assert not [c for c in running if c.startswith("sms-app")], running


def test_the_database_listens_on_the_private_address_only(host):
    if name(host) != DB:
        assert not host.socket("tcp://0.0.0.0:5432").is_listening
        return
    assert host.socket("tcp://%s:5432" % private_address(host)).is_listening
    assert not host.socket("tcp://0.0.0.0:5432").is_listening
    assert not host.socket("tcp://:::5432").is_listening
    published = inspect(host, "sms-db")["HostConfig"]["PortBindings"]["5432/tcp"]
    assert [p["HostIp"] for p in published] == [private_address(host)]


def test_the_app_runs_as_a_non_root_user_and_listens_privately(host):
    if not is_app(host):
        pytest.skip("no app on %s" % name(host))
    uid = host.run("docker exec sms-app id -u")
    assert uid.rc == 0 and uid.stdout.strip() not in ("", "0"), uid.stdout
    assert inspect(host, "sms-app")["Config"]["User"] not in ("", "root", "0")
    assert host.socket("tcp://%s:8080" % private_address(host)).is_listening
    assert not host.socket("tcp://0.0.0.0:8080").is_listening


def test_app_hosts_mount_the_shared_uploads(host):
    if not is_app(host):
        assert not host.mount_point("/srv/rollcall/uploads").exists
        return
    mount = host.mount_point("/srv/rollcall/uploads")
    assert mount.exists and mount.filesystem == "fuse.sshfs"
    assert mount.device.startswith("rollcall-files@")
    assert "/srv/rollcall/uploads" in host.file("/etc/fstab").content_string


def test_the_db_host_archives_wal_to_the_backup_hosts_repository(host):
    if name(host) == BACKUP:
        repos = host.file("/srv/rollcall/offsite/pitr")
        assert repos.is_directory and repos.mode == 0o700 and repos.user == "rollcall-backup"
        return
    if name(host) != DB:
        assert not host.mount_point("/srv/rollcall/offsite-pitr").exists
        return
    mount = host.mount_point("/srv/rollcall/offsite-pitr")
    assert mount.exists and mount.filesystem == "fuse.sshfs" and mount.device.startswith("rollcall-backup@")
    assert "/srv/rollcall/offsite-pitr" in host.file("/etc/fstab").content_string
    binds = [m for m in inspect(host, "sms-db")["Mounts"] if m["Destination"] == "/var/lib/pgbackrest-offsite"]
    # the stack rebuilt after the db host lost its disk archives to new repositories (db_host_lost.yml)
    assert [b["Source"] for b in binds] == ["/srv/rollcall/offsite-pitr/sms-2"]
    conf = host.file("/var/lib/rollcall/sms/pgbackrest/pgbackrest.conf")
    assert conf.mode == 0o600 and "repo2-path=/var/lib/pgbackrest-offsite" in conf.content_string
