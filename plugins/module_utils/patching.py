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

from ansible_collections.rollcall.ops.plugins.module_utils import report as reportlib

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
             is_db=False, backup_planned=False, controller=False, controller_allowed=False, check_mode=False):
    """The stops before patching ``host``: a list of {check, ok, detail}; the host may be patched when every one is
    ok. ``health``: the health check's overall status (ok, warning, critical). ``backup_age_s``: age of the newest
    verified backup of the host's databases, None when there is none (db hosts only). ``lock_holder``: who holds
    the deploy lock, None when nobody does. ``backup_planned``: a db host without a fresh backup is no stop when
    patching takes one before changing anything (check mode reports that it would). ``controller``: the host is the
    machine Ansible runs on (a local connection, as in the demo inventory): a real run would upgrade the
    controller's own packages, which needs ``controller_allowed``; check mode only says so."""
    if max_backup_age_s is None or max_backup_age_s <= 0:
        raise PatchError("the backup age threshold must be a positive number of seconds, not %r" % (max_backup_age_s,))
    healthy = health in ("ok", "warning")
    advice = "" if healthy else "; fix the host first (playbooks/health.yml)"
    checks = [{"check": "health", "ok": healthy, "detail": "the health check says %s%s" % (health, advice)}]
    if is_db:
        fresh = backup_age_s is not None and backup_age_s <= max_backup_age_s
        if not fresh and backup_planned:
            checks.append({"check": "backup", "ok": True, "detail": "%s: patching takes one (and verifies it) first" % (
                "no verified backup of its databases" if backup_age_s is None else
                "newest verified backup is %s old, older than %s" % (_age(backup_age_s), _age(max_backup_age_s)))})
        elif backup_age_s is None:
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
    if controller:
        allowed = controller_allowed or check_mode
        checks.append({"check": "controller", "ok": allowed, "detail": (
            "%s is the machine Ansible runs on (a local connection): a real run upgrades this machine's own packages%s"
            % (host, "" if controller_allowed else
               "; to mean it, run with -e rollcall_patching_controller=true" if not check_mode else
               " and needs -e rollcall_patching_controller=true"))})
    return checks


def rollback_plan(before, after):
    """What puts a host's packages back: {"install": {package: version}, "remove": [package]} from the versions
    recorded before ({package: version}) and after the upgrade. Packages the upgrade installed are removed;
    packages it removed are installed again at their old version."""
    before, after = dict(before or {}), dict(after or {})
    install = {name: version for name, version in sorted(before.items()) if after.get(name) != version}
    remove = sorted(name for name in after if name not in before)
    return {"install": install, "remove": remove}


def stops(checks):
    """The failed pre-checks of ``precheck`` as one line ("" when the host may be patched)."""
    return "; ".join("%s: %s" % (c["check"], c["detail"]) for c in checks if not c["ok"])


def should_reboot(policy, needed, why):
    """(bool, why) after the upgrade: ``policy`` auto (when the host or the upgrade needs it), never (report it,
    leave the reboot to a maintenance window) or always."""
    if policy == "always":
        return True, "the reboot policy is always" + ("" if needed else " (none was needed)")
    if policy == "never":
        return False, ("needed (%s) but the reboot policy is never: reboot in a maintenance window" % why
                       if needed else "no reboot needed")
    if policy == "auto":
        return bool(needed), why
    raise PatchError("the reboot policy must be auto, never or always, not %r" % (policy,))


def rollback_targets(plan):
    """``name=version`` to give ``ansible.builtin.apt`` (with allow_downgrade) to go back, from ``rollback_plan``."""
    return ["%s=%s" % (name, version) for name, version in sorted((plan or {}).get("install", {}).items())]


def host_entry(host, plan=None, record=None, reboot=None, health_before=None, health_after=None, outcome="planned",
               error=None, rolled_back=None, images=None, images_refreshed=None, pool=None, engine=None,
               database=None, proxy=None):
    """One host's part of the run report: what the plan said, what changed, reboot, health before/after; the
    images whose base has updates (``images``: role -> image_refresh plan) and the refreshed app image; time out
    of the load balancer's pool (``pool_entry``), the Docker engine (``engine_entry``); the database engine's
    update (``database``: image and engine version before and after, the data checks, whether the old image was
    put back); the proxy's refresh (``proxy``: image before and after, the upstream it kept serving, whether the
    old image was put back)."""
    plan = plan or {}
    record = record or {}
    # apt_plan record's result names them changed_packages (its "changed" is Ansible's flag); patching.json "changed"
    changed = record.get("changed_packages", record.get("changed"))
    if not isinstance(changed, dict):
        changed = {}
    return {
        "host": host, "outcome": outcome, "summary": plan.get("summary", ""),
        "planned": [{k: c.get(k) for k in ("package", "from", "to", "security")} for c in plan.get("changes", [])],
        "held": [c.get("package") for c in plan.get("held", [])],
        "changed": {name: {"from": (record.get("before") or plan.get("installed") or {}).get(name), "to": version}
                    for name, version in sorted(changed.items())},
        "reboot": reboot or {"done": False, "why": (plan.get("reboot") or {}).get("why", "")},
        "health_before": health_before, "health_after": health_after,
        "rolled_back": rolled_back, "error": error,
        "images": [{"role": role, "image": (p or {}).get("image"), "pending": (p or {}).get("pending", 0),
                    "security": (p or {}).get("security", 0)} for role, p in sorted((images or {}).items())],
        "image_refreshed": (images_refreshed or {}).get("image"),
        "database": {k: (database or {}).get(k) for k in ("image_before", "image_after", "version_before",
                                                          "version_after", "checks", "restored")}
        if database else None,
        "proxy": {k: (proxy or {}).get(k) for k in ("image_before", "image_after", "upstream", "restored")}
        if proxy else None,
        "pool": pool or {"lb": None, "drained": False, "back": False, "out_s": None, "note": ""},
        "engine": engine or {"upgraded": False, "packages": [], "containers": 0, "back_s": None, "missing": [],
                             "note": ""},
    }


def image_lines(entry):
    """The images part of a host's report: one line per image looked at, and the refreshed one."""
    lines = ["%s %s: %s" % (i["role"], i["image"], ("%d package update%s pending (%d security)" % (
        i["pending"], "" if i["pending"] == 1 else "s", i["security"])) if i["pending"] else "base up to date")
        for i in entry.get("images") or []]
    if entry.get("image_refreshed"):
        lines.append("refreshed and released: %s" % entry["image_refreshed"])
    db = entry.get("database")
    if db:
        lines.append("database: %s (engine %s) -> %s (engine %s)%s%s" % (
            db["image_before"], db["version_before"] or "?", db["image_after"] or "-", db["version_after"] or "?",
            ("; " + db["checks"]) if db["checks"] else "",
            "; the old image was put back" if db["restored"] else ""))
    proxy = entry.get("proxy")
    if proxy:
        lines.append("proxy: %s -> %s%s%s" % (
            proxy["image_before"], proxy["image_after"] or "-",
            (" (serving %s)" % proxy["upstream"]) if proxy["upstream"] else "",
            "; the old image was put back" if proxy["restored"] else ""))
    return lines


OUTCOMES = ("failed", "rolled_back", "patched", "unchanged", "planned", "not_reached")


def run_report(entries, check_mode=False, actor=None, at=None):
    """The report of one run over hosts' ``host_entry``: status failed when any host failed, else ok."""
    entries = sorted(entries or [], key=lambda e: e["host"])
    failed = [e["host"] for e in entries if e["outcome"] in ("failed", "rolled_back")]
    counts = {outcome: sum(1 for e in entries if e["outcome"] == outcome) for outcome in OUTCOMES}
    return {"at": at, "actor": actor, "check_mode": bool(check_mode), "status": "failed" if failed else "ok",
            "failed_hosts": failed, "counts": {k: v for k, v in counts.items() if v}, "hosts": entries}


def _cell(value):
    return str(value if value is not None else "-").replace("|", "\\|").replace("\n", " ")


def markdown(report):
    """The run report as Markdown: one table of hosts, then each host's changes."""
    title = "Rollcall patching" + (" (check mode: nothing was changed)" if report.get("check_mode") else "")
    lines = ["# %s" % title, "", "- at: %s" % _cell(report.get("at")), "- by: %s" % _cell(report.get("actor")),
             "- status: **%s**%s" % (report["status"], (" (failed: %s)" % ", ".join(report["failed_hosts"]))
                                     if report["failed_hosts"] else ""), "",
             "| host | outcome | packages changed | reboot | health before | health after | out of pool |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in report["hosts"]:
        lines.append("| %s | %s | %d | %s | %s | %s | %s |" % (
            _cell(e["host"]), _cell(e["outcome"]), len(e["changed"]), "yes" if e["reboot"].get("done") else "no",
            _cell(e["health_before"]), _cell(e["health_after"]), _cell(pool_cell(e.get("pool")))))
    for e in report["hosts"]:
        lines += ["", "## %s" % e["host"], "", e["summary"] or "no plan"]
        if e["error"]:
            lines.append("")
            lines.append("Error: %s" % _cell(e["error"]))
        rows = e["changed"] or {c["package"]: {"from": c["from"], "to": c["to"]} for c in e["planned"]}
        if rows:
            lines += ["", "| package | from | to |", "| --- | --- | --- |"]
            lines += ["| %s | %s | %s |" % (_cell(n), _cell(v["from"]), _cell(v["to"]))
                      for n, v in sorted(rows.items())]
        if e["rolled_back"]:
            lines += ["", "Rolled back to: %s" % ", ".join(e["rolled_back"])]
        if image_lines(e):
            lines += ["", "Images:", ""] + ["- %s" % _cell(line) for line in image_lines(e)]
        lines += ["", "Reboot: %s" % _cell(e["reboot"].get("why"))]
        if (e.get("pool") or {}).get("note"):
            lines += ["", "Load balancer: %s" % _cell(e["pool"]["note"])]
        if (e.get("engine") or {}).get("upgraded"):
            lines += ["", "Docker engine: %s" % _cell(e["engine"]["note"])]
    return "\n".join(lines) + "\n"


def failure_reason(lines, fallback="the upgrade failed", limit=600):
    """Why an apt upgrade failed, in dpkg's and apt's own words: the line before each ``dpkg: error processing``
    (the failing maintainer script's last words), the ``dpkg: error`` / ``error exit status`` lines and apt's
    ``E:`` lines; ``fallback`` when there are none. ``lines``: apt's stdout and stderr lines."""
    lines = [line.strip() for line in lines or [] if line and line.strip()]
    why = []
    for index, line in enumerate(lines):
        if line.startswith("dpkg: error processing") and index > 0:
            why.append(lines[index - 1])
        if re.search(r"^dpkg: error|error exit status|^E: ", line):
            why.append(line)
    text = " / ".join(why) if why else str(fallback)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def html(report):
    """The run report as one self-contained HTML page (the health report's style: module_utils/report.py)."""
    esc = reportlib.esc
    title = "Rollcall patching" + (" (check mode: nothing was changed)" if report.get("check_mode") else "")
    status = "ok" if report["status"] == "ok" else "critical"
    failed = (" &middot; failed: %s" % esc(", ".join(report["failed_hosts"]))) if report["failed_hosts"] else ""
    when = (reportlib.badge(status), esc(report.get("at") or "-"), esc(report.get("actor") or "-"), failed)
    parts = ["<h1>%s</h1>" % esc(title), "<p>%s at %s by %s%s</p>" % when,
             reportlib.html_table(
                 ["host", "outcome", "packages changed", "reboot", "health before", "health after", "out of pool"],
                 [[e["host"], e["outcome"], str(len(e["changed"])), "yes" if e["reboot"].get("done") else "no",
                   e["health_before"] or "-", e["health_after"] or "-", pool_cell(e.get("pool"))]
                  for e in report["hosts"]], numeric=(2,),
                 row_classes=["st-critical" if e["outcome"] in ("failed", "rolled_back") else ""
                              for e in report["hosts"]])]
    for e in report["hosts"]:
        parts.append('<section class="card"><h2>%s</h2><p>%s</p>' % (esc(e["host"]), esc(e["summary"] or "no plan")))
        if e["error"]:
            parts.append("<p><strong>Error:</strong> %s</p>" % esc(e["error"]))
        rows = e["changed"] or {c["package"]: {"from": c["from"], "to": c["to"]} for c in e["planned"]}
        if rows:
            parts.append(reportlib.html_table(["package", "from", "to"], [
                [name, v["from"] or "-", v["to"] or "-"] for name, v in sorted(rows.items())]))
        if e["rolled_back"]:
            parts.append("<p>Rolled back to: %s</p>" % esc(", ".join(e["rolled_back"])))
        if image_lines(e):
            parts.append("<p>Images:</p><ul>%s</ul>" % "".join("<li>%s</li>" % esc(line) for line in image_lines(e)))
        parts.append("<p>Reboot: %s</p>" % esc(e["reboot"].get("why") or "-"))
        if (e.get("pool") or {}).get("note"):
            parts.append("<p>Load balancer: %s</p>" % esc(e["pool"]["note"]))
        if (e.get("engine") or {}).get("upgraded"):
            parts.append("<p>Docker engine: %s</p>" % esc(e["engine"]["note"]))
        parts.append("</section>")
    return reportlib.html_page(title, "\n".join(parts), generated_at=report.get("at"))


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


# The load balancer (issue 13 item 3): app hosts leave its pool before their packages change and come back only
# after the health gate passed. A host that fails stays out (fail closed).
LB_TYPES = ("none", "haproxy")
LB_SOCKET = "/run/haproxy/admin.sock"


def pool_plan(lb, host, is_app, changes, inventory_hosts=(), server=None):
    """What to tell the load balancer about ``host`` before patching it: {drain, type, lb_host, socket, backend,
    server, timeout_s, why, readd, errors}. ``lb``: the ``rollcall_lb`` settings ({type: none|haproxy, host: an
    inventory host, socket, backend, server, timeout_s}); ``changes``: how many packages the plan changes;
    ``server``: this host's name in the backend (the ``rollcall_lb_server`` hostvar), else ``lb.server``, else
    ``host``. Only app hosts with something to change are drained; ``errors`` are settings that stop the run."""
    lb = dict(lb or {})
    kind = str(lb.get("type") or "none")
    server = str(server or lb.get("server") or host)
    out = {"drain": False, "type": kind, "lb_host": lb.get("host"), "socket": lb.get("socket") or LB_SOCKET,
           "backend": lb.get("backend"), "server": server, "timeout_s": lb.get("timeout_s", 120), "why": "",
           "readd": "", "errors": []}
    if kind not in LB_TYPES:
        out["errors"].append("rollcall_lb.type must be one of %s, not %r" % (", ".join(LB_TYPES), kind))
    elif kind == "haproxy":
        if not out["lb_host"] or out["lb_host"] not in inventory_hosts:
            out["errors"].append("rollcall_lb.host must name the inventory host that runs HAProxy, not %r"
                                 % (out["lb_host"],))
        if not out["backend"]:
            out["errors"].append("rollcall_lb.backend must name the HAProxy backend of the app servers")
        try:
            out["timeout_s"] = int(out["timeout_s"])
            if out["timeout_s"] <= 0:
                raise ValueError
        except (TypeError, ValueError):
            out["errors"].append("rollcall_lb.timeout_s must be a positive number of seconds, not %r"
                                 % (lb.get("timeout_s"),))
    if out["errors"]:
        out["why"] = "the load balancer settings are wrong"
        return out
    if not is_app:
        out["why"] = "not an app host: the load balancer sends it no traffic"
    elif not changes:
        out["why"] = "nothing to change: it stays in the pool"
    elif kind == "none":
        out["why"] = "no load balancer was told (rollcall_lb.type is none): the host serves while it is patched"
    else:
        out["drain"] = True
        out["why"] = "drained from HAProxy backend %s (server %s, on %s) before its packages change" % (
            out["backend"], server, out["lb_host"])
        out["readd"] = ("ansible %s -m community.general.haproxy -a 'state=enabled backend=%s host=%s socket=%s "
                        "wait=true'" % (out["lb_host"], out["backend"], server, out["socket"]))
    return out


def pool_entry(plan, drained_at=None, back_at=None, now=None):
    """The report's view of one host's time out of the pool: {lb, drained, back, out_s, note}. ``drained_at`` /
    ``back_at``: epoch seconds when the drain started and when the load balancer had it UP again (None when that
    did not happen); ``now``: when the run stopped, for a host that is still out."""
    plan = plan or {}
    entry = {"lb": plan.get("type", "none"), "drained": drained_at is not None, "back": back_at is not None,
             "out_s": None, "note": plan.get("why", "")}
    if drained_at is None:
        return entry
    end = back_at if back_at is not None else now
    entry["out_s"] = round(max(float(end) - float(drained_at), 0.0), 1) if end is not None else None
    if back_at is None:
        entry["note"] = ("still out of the pool (fail closed: no traffic to a host that did not pass the health "
                         "gate); after you checked it, re-add it: %s" % plan.get("readd", ""))
    else:
        entry["note"] = "out of the pool for %s s, back after the health gate passed" % entry["out_s"]
    return entry


def pool_cell(pool):
    """The report's "out of pool" cell: seconds, "still out", or "-" when the host was not drained."""
    pool = pool or {}
    if not pool.get("drained"):
        return "-"
    seconds = "%s s" % pool["out_s"] if pool.get("out_s") is not None else "?"
    return seconds if pool.get("back") else "still out (%s)" % seconds


# The Docker engine (issue 13 item 4): an upgrade of the engine's packages restarts every container. Before it,
# each running container of the project must have a restart policy that brings it back; after it, the engine must
# answer and the same containers run again before the health gate.
ENGINE_PACKAGES = ("docker.io", "docker-ce", "docker-ce-cli", "docker-ce-rootless-extras", "containerd",
                   "containerd.io", "runc", "moby-engine", "moby-containerd", "moby-runc")
RESTARTING_POLICIES = ("always", "unless-stopped")


def engine_plan(changes, engine_packages=ENGINE_PACKAGES, is_db=False, backup_ok=True):
    """Does this upgrade touch the Docker engine: {upgrade, packages, why, errors}. ``changes``: the plan's
    changes ({package, ...}); ``engine_packages``: names ('*' matches any characters, as the hold list).
    ``backup_ok``: a db host's backup pre-check passed (a verified backup recent enough, or taken first); an
    engine upgrade restarts the database, so without one it is an error."""
    patterns = [_glob(str(p)) for p in engine_packages or ()]
    touched = sorted({c["package"] for c in changes or [] if any(p.match(c["package"]) for p in patterns)})
    out = {"upgrade": bool(touched), "packages": touched, "errors": [],
           "why": ("the upgrade changes %s: the Docker engine restarts, and every container with it" % ", ".join(
               touched)) if touched else "the Docker engine is not upgraded"}
    if touched and is_db and not backup_ok:
        out["errors"].append("an engine upgrade restarts the database, and there is no verified backup recent "
                             "enough: take one first (playbooks/backup.yml)")
    return out


def _glob(pattern):
    return re.compile("^%s$" % ".*".join(re.escape(part) for part in pattern.split("*")))


def _name(container):
    """A container's name from Docker's list (``Names``) or inspect (``Name``) data, or our own ``name``."""
    if container.get("name"):
        return container["name"]
    names = container.get("Names") or [container.get("Name") or ""]
    return (names[0] or "").lstrip("/")


def project_containers(containers, project, names=()):
    """The names of the project's containers among ``containers`` (Docker's container list: ``Names``,
    ``Labels``): labelled ``rollcall.project`` with ``project``, or named as the roles name them (``names``: the
    database container has no label)."""
    names = set(names or ())
    return sorted(_name(c) for c in containers or [] if _name(c) in names
                  or (c.get("Labels") or {}).get("rollcall.project") == project)


def engine_precheck(containers):
    """The running containers (Docker's inspect data: ``Name``, ``State.Running``,
    ``HostConfig.RestartPolicy.Name``) that an engine restart would leave stopped: one line per container, empty
    when every one comes back."""
    stops = []
    for c in containers or []:
        policy = ((c.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"
        if (c.get("State") or {}).get("Running") and policy not in RESTARTING_POLICIES:
            stops.append("%s (restart policy %s): set it to unless-stopped (or always), or stop it first" % (
                _name(c), policy))
    return stops


def containers_back(before, running):
    """The containers that ran before the engine upgrade (``before``: names) and do not run now (``running``:
    names, or Docker's list of running containers)."""
    running = {r if isinstance(r, str) else _name(r) for r in running or ()}
    return sorted(name for name in before or () if name not in running)


def engine_entry(plan, containers=(), seconds=None, missing=()):
    """The report's view of the engine: {upgraded, packages, containers, back_s, missing, note}."""
    plan = plan or {}
    entry = {"upgraded": bool(plan.get("upgrade")), "packages": list(plan.get("packages") or []),
             "containers": len(containers or ()), "back_s": seconds, "missing": sorted(missing or ()), "note": ""}
    if not entry["upgraded"]:
        entry["note"] = "engine not upgraded"
    elif entry["missing"]:
        entry["note"] = "engine upgraded; not running again: %s" % ", ".join(entry["missing"])
    elif seconds is None:
        entry["note"] = "engine upgrade planned (%s)" % ", ".join(entry["packages"])
    else:
        entry["note"] = "engine upgraded, %d container(s) back in %s s" % (entry["containers"], seconds)
    return entry
