# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disaster-recovery drill's figures and verdict (playbooks/dr_drill.yml), pure and unit tested.

RTO: from the moment the scratch stack was destroyed to the moment its smoke tests passed on the rebuilt one.
RPO: how much committed work the recovery lost, measured by a writer that creates one record through the app every
second until the disaster: the time between the last write the app acknowledged and the newest acknowledged write
that is there after the restore. Writes are judged by id: one acknowledged before a surviving one but missing after
the restore is a hole (the recovery is not a consistent point in time) and fails the drill.
"""

import datetime
import json

from ansible_collections.rollcall.ops.plugins.module_utils import report

# The seeds' recovery targets, as they wrote them.
SEED_TARGETS = (
    {"seed": "000", "says": '"1 hour max data loss, 30 minutes max downtime"', "rto_s": 1800, "rpo_s": 3600},
    {"seed": "001", "says": '"RTO: 15 minutes / RPO: 24 hours"', "rto_s": 900, "rpo_s": 86400},
    {"seed": "002", "says": '"<= 20 minutes" / "<= 1 hour"', "rto_s": 1200, "rpo_s": 3600},
)

STATUS_ORDER = ("ok", "warning", "failed")


class DrillError(Exception):
    pass


def plan(live_project, drill_project, live_port, drill_port, live_db=None, drill_db=None):
    """Refuse a drill that would touch the live stack; returns the reasons (empty: go). ``live_db`` / ``drill_db``:
    the database address (host:port) the live and the scratch app would use, where the database is published for app
    hosts on other machines (a fleet): the same address means the scratch app would migrate, seed and write into the
    live database."""
    problems = []
    if not drill_project:
        problems.append("the drill's project name is blank")
    elif drill_project == live_project:
        problems.append("the drill's project %s is the live project: a drill destroys its stack and volumes; give "
                        "-e drill_project=<another name> (default <project>-drill)" % drill_project)
    if drill_port is not None and live_port is not None and int(drill_port) == int(live_port):
        problems.append("the drill's app port %s is the live app's port; give -e drill_app_port=<a free port>"
                        % drill_port)
    if live_db and drill_db and str(live_db).strip() == str(drill_db).strip():
        problems.append("the scratch app would use the live database at %s (a published database on a fleet): "
                        "its database needs another port (the live port + 10 by default)" % str(live_db).strip())
    return problems


def _same(a, b):
    """Equal as a person gave them: -e values are strings (8091 == "8091", False == "false")."""
    def norm(v):
        return ("true" if v else "false") if isinstance(v, bool) else str(v).strip().lower()
    return norm(a) == norm(b)


def overrides(intended, effective, live_project):
    """Refuse extra vars that override the scratch stack's settings; returns the reasons (empty: go).

    ``intended``: the settings the drill gives its scratch stack (its plays' vars), rendered; ``effective``: what the
    same names resolve to there. They differ only when an extra var (-e) names one: extra vars win over a playbook's
    own vars, so ``-e rollcall_project=LIVE`` would make the drill tear down and rebuild the live stack itself."""
    given = sorted(k for k in intended if k in effective and not _same(intended[k], effective[k]))
    if not given:
        return []
    said = ", ".join("-e %s=%s (the drill's: %s)" % (k, effective[k], intended[k]) for k in given)
    danger = ("the drill would destroy the live stack %s with its volumes" % effective["rollcall_project"]
              if "rollcall_project" in given and str(effective["rollcall_project"]) == str(live_project)
              else "the drill would run its scratch stack with them")
    return ["%s override the scratch stack's own settings (extra vars win over a playbook's): %s. Give the live "
            "stack's settings in the inventory (host or group vars) instead of -e, and name the scratch stack with "
            "-e drill_project=NAME -e drill_app_port=PORT" % (said, danger)]


def scratch_settings(uploads_host="", backup_uploads=True, offsite_host="", scratch="", pitr=False,
                     offsite_mount="/srv/rollcall/offsite-pitr"):
    """What the scratch stack runs with, where the live stack's settings would let it touch the live stack's data,
    and where it recovers from.

    - Off-host copies (``offsite_host``, the live stack's backup host): the scratch stack's copies go to a directory
      of their own there, ``drill-<scratch>`` next to the live stack's ``backups`` (the backup host's directory is
      shared by the stacks whose databases have the same name, and its retention would count the drill's backups
      against the live stack's), and so does its WAL (point-in-time recovery: ``<offsite_mount>/<scratch>``; the
      rebuilt cluster archives to ``<scratch>-rebuilt``, as a new cluster cannot archive into the lost one's
      stanza). The disaster then takes the scratch stack's backups on the db host too (a lost disk), and the
      recovery reads the backup host's copy: the dump fetched back (``restore_from: offsite``) or the WAL there.
      Without a backup host the backups stay on the db host (outside the destroyed volumes).
    - A fleet's shared uploads (``uploads_host``) are the live stack's one directory: the scratch stack's restore
      would put the drill backup's files in place of the live ones (and delete what users uploaded during the
      drill). The scratch stack keeps its uploads in a volume on each app host instead, and its backups leave them
      out (the db host runs no app container to read them from).

    Returns ``{"offsite_host", "offsite_subdir", "from_offsite", "pitr_offsite_repo", "pitr_rebuilt_offsite_repo",
    "offsite_clean", "uploads_host", "backup_uploads", "notes"}``; ``offsite_clean``: the scratch stack's directories
    on the backup host, relative to the off-host root, that a drill removes before and after it (never the live
    stack's); ``notes`` says what differs from the live stack, for the drill's plan.
    """
    notes = []
    shared = bool((uploads_host or "").strip())
    if shared:
        notes.append("uploads stay on each app host and are not backed up (the live stack's shared uploads on %s "
                     "are not touched)" % uploads_host.strip())
    host = (offsite_host or "").strip()
    if host and not (scratch or "").strip():
        raise DrillError("the scratch stack's name is blank: its copies on the backup host need a directory of "
                         "their own")
    found = {"offsite_host": host, "offsite_subdir": "backups", "from_offsite": bool(host),
             "pitr_offsite_repo": "", "pitr_rebuilt_offsite_repo": "", "offsite_clean": [], "uploads_host": "",
             "backup_uploads": bool(backup_uploads) and not shared, "notes": notes}
    if host:
        found["offsite_subdir"] = "drill-%s" % scratch.strip()
        found["offsite_clean"] = [found["offsite_subdir"], "pitr/%s" % scratch.strip(),
                                  "pitr/%s-rebuilt" % scratch.strip()]
        mount = (offsite_mount or "").rstrip("/")
        if pitr:
            found["pitr_offsite_repo"] = "%s/%s" % (mount, scratch.strip())
            found["pitr_rebuilt_offsite_repo"] = "%s/%s-rebuilt" % (mount, scratch.strip())
        notes.append("its backups%s are copied to %s into %s (apart from the live stack's), the disaster deletes "
                     "them on the db host too, and the recovery reads the backup host's copy"
                     % (" and its WAL" if pitr else "", host, found["offsite_subdir"]))
    return found


def recovery_point(writes, survived):
    """``writes``: the acknowledged writes, each ``{"id", "at"}`` (epoch seconds of the acknowledgement, the
    writer's clock); ``survived``: the ids found after the restore. Returns the figures of the recovery point."""
    acked = sorted((w for w in writes if w.get("id") is not None), key=lambda w: (float(w["at"]), int(w["id"])))
    survived = set(int(i) for i in survived)
    if not acked:
        return {"writes": 0, "survived": 0, "lost": 0, "holes": [], "last_acked_at": None,
                "recovered_to_at": None, "rpo_s": None}
    kept = [w for w in acked if int(w["id"]) in survived]
    newest = kept[-1] if kept else None
    holes = [int(w["id"]) for w in acked if newest is not None and float(w["at"]) <= float(newest["at"])
             and int(w["id"]) not in survived]
    last = acked[-1]
    rpo = float(last["at"]) - float((newest or acked[0])["at"])
    return {"writes": len(acked), "survived": len(kept), "lost": len(acked) - len(kept), "holes": holes,
            "last_acked_at": float(last["at"]), "recovered_to_at": float(newest["at"]) if newest else None,
            "rpo_s": round(max(rpo, 0.0), 3), "none_survived": newest is None}


def worst_case_rpo(mode, backup_interval_s=86400, archive_timeout_s=60):
    """The data a real disaster could lose with this set-up: the WAL archive's timeout with point-in-time
    recovery, else the time between two backups (the schedule's interval)."""
    if mode == "pitr":
        return float(archive_timeout_s)
    if mode == "dump":
        return float(backup_interval_s)
    raise DrillError("unknown recovery mode %r (dump or pitr)" % (mode,))


def recovery_source(mode, backup=None, engine="postgresql"):
    """What the drill restored, said in a sentence: ``pitr`` - PostgreSQL: the pgBackRest repository replayed to the
    end of its archived WAL; MariaDB: the archived binary log replayed onto the newest verified dump (either then
    dumped into ``backup`` and swapped in); ``dump`` - the newest verified dump ``backup``."""
    backup = backup or {}
    name = backup.get("name") or "unknown"
    if mode == "pitr" and _binlog(engine):
        return ("point-in-time recovery: the binary log archived before the disaster, replayed onto the newest "
                "verified dump (restored through the backup %s made from it)" % name)
    if mode == "pitr":
        return ("point-in-time recovery: the pgBackRest repository that survived the disaster, replayed to the end "
                "of its archived WAL (restored through the backup %s made from it)" % name)
    if mode == "dump":
        return "the newest verified dump, %s (made %s)" % (name, backup.get("finished_at") or "at an unknown time")
    raise DrillError("unknown recovery mode %r (dump or pitr)" % (mode,))


def _binlog(engine):
    return str(engine or "").lower() in ("mariadb", "mysql")


def worst_case_why(mode, engine="postgresql", backup_interval_s=86400, archive_timeout_s=60):
    """Why the set-up's worst case is what it is, in words: PostgreSQL archives its WAL at least every
    ``archive_timeout_s``; MariaDB's binary log leaves the server each time archive_log.yml runs (its schedule's
    interval, ``archive_timeout_s`` here); without point-in-time recovery, the backups' interval."""
    if mode == "pitr" and _binlog(engine):
        return ("binary log shipped every %s, as playbooks/archive_log.yml runs on its schedule"
                % report.fmt_duration(archive_timeout_s))
    if mode == "pitr":
        return "WAL archived at least every %s" % report.fmt_duration(archive_timeout_s)
    return "a backup every %s, no point-in-time recovery" % report.fmt_duration(backup_interval_s)


def judge(rto_s, rpo_s, worst_rpo_s, targets=SEED_TARGETS):
    """One row per seed target: is the measured RTO, the measured RPO and the set-up's worst case within it."""
    rows = []
    for target in targets:
        rows.append(dict(target,
                         rto_met=rto_s is not None and rto_s <= target["rto_s"],
                         rpo_met=rpo_s is not None and rpo_s <= target["rpo_s"],
                         worst_rpo_met=worst_rpo_s is not None and worst_rpo_s <= target["rpo_s"]))
    return rows


def verdict(point, rto_s, rows, checks):
    """failed: data lost inside the recovery point (holes), nothing survived, a check failed, or a measured figure
    over a target; warning: the measured figures meet every target but the set-up's worst case does not; else ok.
    Returns (status, reasons)."""
    failed, warned = [], []
    if point.get("holes"):
        failed.append("%d acknowledged writes older than the recovery point are missing (ids %s): the restore is not "
                      "a consistent point in time" % (len(point["holes"]), ", ".join(map(str, point["holes"][:10]))))
    if point.get("writes") and point.get("none_survived"):
        failed.append("none of the %d acknowledged writes survived: the restore came from before the writer started"
                      % point["writes"])
    if not point.get("writes"):
        failed.append("the writer had no write acknowledged, so the RPO was not measured")
    for check in checks:
        if not check.get("ok"):
            failed.append("check %s failed: %s" % (check.get("name"), check.get("detail", "")))
    if rto_s is None:
        failed.append("the RTO was not measured")
    for row in rows:
        if not row["rto_met"] and rto_s is not None:
            failed.append("RTO %s is over seed %s's %s" % (report.fmt_duration(rto_s), row["seed"],
                                                           report.fmt_duration(row["rto_s"])))
        if not row["rpo_met"] and point.get("rpo_s") is not None:
            failed.append("RPO %s is over seed %s's %s" % (report.fmt_duration(point["rpo_s"]), row["seed"],
                                                           report.fmt_duration(row["rpo_s"])))
        if row["rpo_met"] and not row["worst_rpo_met"]:
            warned.append("seed %s's RPO of %s is not met by this set-up in a real disaster (up to %s of writes "
                          "lost: %s)" % (row["seed"], report.fmt_duration(row["rpo_s"]),
                                         report.fmt_duration(row.get("worst_rpo_s")), row.get("worst_rpo_why", "")))
    if failed:
        return "failed", failed + warned
    if warned:
        return "warning", warned
    return "ok", []


def timeline(events, origin=None):
    """``events``: ``[{"step", "at"}]`` (epoch seconds) -> sorted, with seconds since ``origin`` (the first)."""
    items = sorted((e for e in events if e.get("at") is not None), key=lambda e: float(e["at"]))
    if not items:
        return []
    start = float(origin) if origin is not None else float(items[0]["at"])
    return [{"step": e["step"], "at": report.isoformat(_utc(e["at"])), "t_s": round(float(e["at"]) - start, 1)}
            for e in items]


def _utc(epoch):
    return datetime.datetime.fromtimestamp(float(epoch), tz=datetime.timezone.utc)


def document(project, drill_project, engine, mode, events, disaster_at, recovered_at, point, checks,
             backup_interval_s=86400, archive_timeout_s=60, backup=None, generated_at=None):
    """The drill's report as one document."""
    rto = None if disaster_at is None or recovered_at is None else round(float(recovered_at) - float(disaster_at), 1)
    worst = worst_case_rpo(mode, backup_interval_s, archive_timeout_s)
    why = worst_case_why(mode, engine, backup_interval_s, archive_timeout_s)
    rows = [dict(r, worst_rpo_s=worst, worst_rpo_why=why) for r in judge(rto, point.get("rpo_s"), worst)]
    status, reasons = verdict(point, rto, rows, checks)
    return {
        "kind": "dr_drill", "generated_at": generated_at or report.isoformat(report.utcnow()),
        "project": project, "drill_project": drill_project, "engine": engine, "mode": mode, "source": mode,
        "source_why": recovery_source(mode, backup, engine), "status": status, "reasons": reasons, "rto_s": rto,
        "rpo_s": point.get("rpo_s"),
        "worst_case_rpo_s": worst, "worst_case_rpo_why": why, "recovery_point": point, "targets": rows,
        "checks": checks, "backup": backup or {}, "timeline": timeline(events, origin=None),
    }


def _met(flag):
    return "met" if flag else "NOT met"


def render_json(doc):
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _target_rows(doc):
    return [[r["seed"], r["says"], report.fmt_duration(r["rto_s"]), _met(r["rto_met"]),
             report.fmt_duration(r["rpo_s"]), _met(r["rpo_met"]), _met(r["worst_rpo_met"])] for r in doc["targets"]]


_TARGET_HEADERS = ["seed", "the seed says", "RTO target", "measured RTO", "RPO target", "measured RPO",
                   "worst case of this set-up"]


def summary(doc):
    return ("RTO %s, RPO %s (%d of %d acknowledged writes survived; recovered from %s); a real disaster could lose "
            "up to %s (%s)"
            % (report.fmt_duration(doc["rto_s"]), report.fmt_duration(doc["rpo_s"]),
               doc["recovery_point"].get("survived", 0), doc["recovery_point"].get("writes", 0),
               doc.get("source", doc["mode"]), report.fmt_duration(doc["worst_case_rpo_s"]),
               doc["worst_case_rpo_why"]))


def render_markdown(doc):
    out = ["# Disaster-recovery drill: %s (%s, scratch project %s)" % (doc["project"], doc["engine"],
                                                                       doc["drill_project"]),
           "", "Status: **%s**. %s." % (doc["status"].upper(), summary(doc)), "",
           "Recovered from: %s." % doc.get("source_why", ""), ""]
    out.extend("- %s" % " ".join(str(r).split()) for r in doc["reasons"])
    out.extend(["", "## Against the seeds' targets", "", report.md_table(_TARGET_HEADERS, _target_rows(doc)),
                "", "## Checks after the recovery", "",
                report.md_table(["check", "result", "detail"],
                                [[c["name"], "ok" if c.get("ok") else "FAILED", c.get("detail", "")]
                                 for c in doc["checks"]]),
                "", "## Timeline", "",
                report.md_table(["t (s)", "step", "at (UTC)"],
                                [[report.fmt_number(e["t_s"]), e["step"], e["at"]] for e in doc["timeline"]]), ""])
    return "\n".join(out)


def render_html(doc):
    status = {"ok": "ok", "warning": "warning", "failed": "critical"}[doc["status"]]
    intro = (report.badge(status), report.esc(summary(doc)), report.esc(doc["engine"]),
             report.esc(doc["drill_project"]))
    body = ["<h1>Disaster-recovery drill: %s</h1>" % report.esc(doc["project"]),
            "<p>%s %s. Engine %s, scratch project %s.</p>" % intro,
            "<p>Recovered from: %s.</p>" % report.esc(doc.get("source_why", ""))]
    if doc["reasons"]:
        body.append("<ul>%s</ul>" % "".join("<li>%s</li>" % report.esc(r) for r in doc["reasons"]))
    body.append("<h2>Against the seeds' targets</h2>" + report.html_table(_TARGET_HEADERS, _target_rows(doc)))
    body.append("<h2>Checks after the recovery</h2>" + report.html_table(
        ["check", "result", "detail"],
        [[c["name"], "ok" if c.get("ok") else "FAILED", c.get("detail", "")] for c in doc["checks"]]))
    steps = doc["timeline"]
    if steps:
        body.append(report.svg_bars([(e["step"], [e["t_s"]]) for e in steps], ["seconds since the drill began"],
                                    unit="s", title="Timeline"))
    body.append("<h2>Timeline</h2>" + report.html_table(
        ["t (s)", "step", "at (UTC)"], [[report.fmt_number(e["t_s"]), e["step"], e["at"]] for e in steps],
        numeric=(0,)))
    return report.html_page("DR drill %s" % doc["project"], "\n".join(body), doc["generated_at"])


def render_prometheus(doc):
    """rollcall_dr_drill.prom: the last drill's figures (Prometheus textfile)."""
    labels = 'project="%s",engine="%s"' % (
        report.prom_label_value(doc["project"]), report.prom_label_value(doc["engine"]))
    lines = []
    for name, help_text, value in (
            ("rollcall_dr_drill_rto_seconds", "RTO measured by the last disaster-recovery drill.", doc["rto_s"]),
            ("rollcall_dr_drill_rpo_seconds", "RPO measured by the last disaster-recovery drill.", doc["rpo_s"]),
            ("rollcall_dr_drill_ok", "1 when the last disaster-recovery drill passed (ok or warning).",
             0 if doc["status"] == "failed" else 1)):
        lines.extend(["# HELP %s %s" % (name, help_text), "# TYPE %s gauge" % name,
                      "%s{%s} %s" % (name, labels, report.prom_value(float("nan") if value is None else value))])
    return "\n".join(lines) + "\n"


RENDERERS = {"json": render_json, "md": render_markdown, "html": render_html}
