# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Patching decisions (issue 13), pure: what an apt upgrade would change, whether it needs a reboot, whether a host
may be patched now, and how to go back. No apt, no Docker, no Ansible here; the patching module and role (not
built yet) feed these functions what the host says.

- ``parse_simulation``: the ``Inst``/``Remv`` lines of ``apt-get -s upgrade`` (or ``dist-upgrade``) as changes
  {package, from, to, origins, security, action}.
- ``select``: all or security-only, minus a hold list (held packages are reported, not changed).
- ``needs_reboot``: ``/var/run/reboot-required`` or a change to the kernel, libc or the init system.
- ``precheck``: the stops before touching a host (unhealthy, no recent verified backup, not enough disk, lock held).
- ``rollback_plan``: from the versions recorded before and after, what to install again (and what to remove).
"""

import re

# Inst NAME [OLD] (NEW ORIGIN[, ORIGIN...] [ARCH]) [...]   -- [OLD] missing for a new package
_INST = re.compile(r"^Inst (?P<name>\S+)(?: \[(?P<old>[^\]]+)\])? "
                   r"\((?P<new>\S+) (?P<origins>.*?) \[(?P<arch>[^\]]+)\]\)")
_REMV = re.compile(r"^Remv (?P<name>\S+)(?: \[(?P<old>[^\]]+)\])?")
# Packages whose new version only takes effect after a reboot (the running kernel, libc everyone has mapped, PID 1).
REBOOT_PACKAGES = re.compile(r"^(linux-image-\S+|linux-headers-\S+|libc6|libc-bin|systemd|systemd-sysv|dbus|"
                             r"libssl3|openssl|intel-microcode|amd64-microcode)$")
MIB = 1024 * 1024


class PatchError(Exception):
    """Input these functions cannot use; the message says what."""


def is_security(origins):
    """An origin list from apt's simulation names the security archive (``Debian-Security:12/stable-security``)."""
    return any("security" in origin.lower() for origin in origins)


def parse_simulation(text):
    """The changes ``apt-get -s upgrade`` would make, in its order. Lines other than Inst/Remv are ignored."""
    changes = []
    for line in (text or "").splitlines():
        line = line.strip()
        match = _INST.match(line)
        if match:
            origins = [o.strip() for o in match.group("origins").split(",") if o.strip()]
            changes.append({"package": match.group("name"), "from": match.group("old"), "to": match.group("new"),
                            "origins": origins, "security": is_security(origins),
                            "action": "upgrade" if match.group("old") else "install"})
            continue
        match = _REMV.match(line)
        if match:
            changes.append({"package": match.group("name"), "from": match.group("old"), "to": None, "origins": [],
                            "security": False, "action": "remove"})
    return changes


def select(changes, security_only=False, holds=()):
    """(to_apply, held, skipped): held = on the hold list; skipped = not security when only security is asked."""
    hold_patterns = [re.compile("^%s$" % re.escape(h).replace(r"\*", ".*")) for h in holds or ()]
    apply, held, skipped = [], [], []
    for change in changes:
        if any(p.match(change["package"]) for p in hold_patterns):
            held.append(change)
        elif security_only and not change["security"]:
            skipped.append(change)
        else:
            apply.append(change)
    return apply, held, skipped


def needs_reboot(changes, reboot_required=False, reboot_packages=()):
    """(bool, why): the host asks for it (``/var/run/reboot-required``, with its package list), or a change touches
    the kernel, libc or the init system."""
    if reboot_required:
        listed = ", ".join(sorted(set(reboot_packages))) or "no package named"
        return True, "the host asks for a reboot (/var/run/reboot-required: %s)" % listed
    touched = sorted({c["package"] for c in changes if REBOOT_PACKAGES.match(c["package"])})
    if touched:
        return True, "the upgrade changes %s, which the running system keeps loaded until a reboot" % ", ".join(touched)
    return False, "no change needs a reboot"


def precheck(host, health, backup_age_s, max_backup_age_s, free_bytes, needed_bytes, lock_holder=None,
             is_db=False):
    """The stops before patching ``host``: a list of {check, ok, detail}; the host may be patched when every one is
    ok. ``health``: the health check's overall status (ok, warning, critical). ``backup_age_s``: age of the newest
    verified backup of the host's databases, None when there is none (db hosts only). ``lock_holder``: who holds
    the deploy lock, None when nobody does."""
    if max_backup_age_s is None or max_backup_age_s <= 0:
        raise PatchError("the backup age threshold must be a positive number of seconds, not %r" % (max_backup_age_s,))
    healthy = health in ("ok", "warning")
    advice = "" if healthy else "; fix the host first (playbooks/health.yml)"
    checks = [{"check": "health", "ok": healthy, "detail": "the health check says %s%s" % (health, advice)}]
    if is_db:
        if backup_age_s is None:
            checks.append({"check": "backup", "ok": False, "detail": "no verified backup of its databases; take one "
                           "first (playbooks/backup.yml), or let patching take it"})
        else:
            fresh = backup_age_s <= max_backup_age_s
            checks.append({"check": "backup", "ok": fresh, "detail": "newest verified backup is %s old%s" % (
                _age(backup_age_s), "" if fresh else ", older than %s: take one first" % _age(max_backup_age_s))})
    enough = free_bytes >= needed_bytes
    checks.append({"check": "disk", "ok": enough, "detail": "%d MiB free, %d MiB needed%s" % (
        free_bytes // MIB, needed_bytes // MIB, "" if enough else ": free space on %s first" % host)})
    checks.append({"check": "lock", "ok": lock_holder is None,
                   "detail": "the deploy lock is free" if lock_holder is None else
                   "the deploy lock is held by %s; wait for it to finish (patching takes the same lock)" % lock_holder})
    return checks


def rollback_plan(before, after):
    """What puts a host's packages back: {"install": {package: version}, "remove": [package]} from the versions
    recorded before ({package: version}) and after the upgrade. Packages the upgrade installed are removed;
    packages it removed are installed again at their old version."""
    before, after = dict(before or {}), dict(after or {})
    install = {name: version for name, version in sorted(before.items()) if after.get(name) != version}
    remove = sorted(name for name in after if name not in before)
    return {"install": install, "remove": remove}


def parse_installed(text):
    """{package: version} from ``dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n'``; only packages
    that are installed (status ``ii`` or a half-configured ``i?``) count."""
    installed = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2].startswith("i"):
            installed[parts[0].split(":")[0]] = parts[1]
    return installed


def apt_targets(changes):
    """``name=version`` for ansible.builtin.apt, upgrades and new packages (removals are apt's own business)."""
    return ["%s=%s" % (c["package"], c["to"]) for c in changes if c["action"] in ("upgrade", "install")]


def summary(apply, held, skipped, reboot):
    """One line for the output and the report."""
    security = sum(1 for c in apply if c["security"])
    line = "%d package(s) to change (%d security)" % (len(apply), security)
    if held:
        line += ", %d held (%s)" % (len(held), ", ".join(c["package"] for c in held[:5]))
    if skipped:
        line += ", %d not security (left for a full run)" % len(skipped)
    return line + ("; reboot needed: %s" % reboot[1] if reboot[0] else "; no reboot needed")


def _age(seconds):
    seconds = int(seconds)
    if seconds >= 2 * 86400:
        return "%d days" % (seconds // 86400)
    if seconds >= 2 * 3600:
        return "%d hours" % (seconds // 3600)
    return "%d minutes" % max(seconds // 60, 0)
