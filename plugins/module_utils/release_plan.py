# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a deploy, rollback, roll-forward or restore will do, decided in one place, before anything changes.

``plan()`` is pure: it takes what the role has read (the live release, the kept releases, the target, the
database's schema revision, a backup's manifest facts, the blockers the newer image reported for a downgrade)
and returns an ordered list of steps, or a refusal with its reason and the command to run instead. The role
(roles/sms_app, roles/backup/tasks/restore.yml) only carries the steps out; playbooks print the plan in check
mode.

Steps, in the order they are carried out:

``restore``    restore the named backup (roles/backup: verify, test restore, safety backup, swap; app stopped)
``backup``     a verified backup before the schema changes; ``app_version`` is the release serving the data
``migrate``    take the schema up (or, for a restore, forward) to ``to`` with ``image``, in a one-off container,
               while the live release keeps serving (old code runs on a newer schema)
``start``      start ``version`` (``image``) next to the live release
``gate``       wait until it answers /health/ready
``switch``     send traffic to it (graceful proxy reload), drain and stop the old release
``record``     record the release in the history
``downgrade``  take the schema down to ``to`` with ``image`` (the newer release's, which carries the
               downgrade), after every host runs the older release

Schema revisions are compared in the order given by ``revisions`` (oldest first) when known; otherwise
revisions made only of digits (``0001``, ``0002``: the SMS's numbering) compare as numbers, and anything else
cannot be ordered, which refuses (set ``rollcall_schema_revisions``). ``None`` is an empty database.
"""

KINDS = ("deploy", "rollback", "restore")


class PlanError(ValueError):
    """The inputs cannot be planned with (a caller's mistake, not a refusal)."""


def order(a, b, revisions=None):
    """-1, 0 or 1 as schema revision ``a`` is older than, equal to or newer than ``b``; None when unknown."""
    if a == b:
        return 0
    if a is None:
        return -1
    if b is None:
        return 1
    if revisions:
        if a in revisions and b in revisions:
            return -1 if revisions.index(a) < revisions.index(b) else 1
        return None
    if str(a).isdigit() and str(b).isdigit():
        return -1 if int(a) < int(b) else 1
    return None


def _rev(revision):
    return revision if revision is not None else "none (empty database)"


def _release(entry):
    return {"version": entry.get("version"), "image": entry.get("image"),
            "schema_revision": entry.get("schema_revision")}


def _result(kind, action, steps=(), summary="", reason=None, command=None, **extra):
    steps = list(steps)
    result = {"kind": kind, "action": action, "steps": steps, "do": [step["step"] for step in steps],
              "summary": summary, "reason": reason, "command": command}
    for step in steps:
        result[step["step"]] = step
    result.update(extra)
    return result


def _refuse(kind, reason, command, **extra):
    text = "%s. Nothing was changed." % reason.rstrip(".")
    if command:
        text += " " + command
    return _result(kind, "refuse", summary=text, reason=reason, command=command, **extra)


def _unordered(kind, a, b, **extra):
    return _refuse(kind, "Cannot tell whether schema revision %s is older or newer than %s." % (_rev(a), _rev(b)),
                   "Set rollcall_schema_revisions to the app's revisions, oldest first, and run again.", **extra)


def _kept_on(kept, revision):
    """Kept releases whose schema revision is ``revision``, newest first."""
    return [entry for entry in kept if entry.get("schema_revision") == revision]


def _newer_image(live, kept, db_revision):
    """The image of the release that made ``db_revision`` (it carries the downgrade): a kept release on that
    revision, else the live one."""
    if live and live.get("schema_revision") == db_revision and live.get("image"):
        return live["image"]
    on = _kept_on(kept, db_revision)
    if on and on[0].get("image"):
        return on[0]["image"]
    return (live or {}).get("image")


def _release_steps(target):
    return [{"step": "start", "version": target["version"], "image": target["image"]}, {"step": "gate"},
            {"step": "switch"}, {"step": "record", "version": target["version"],
                                 "schema_revision": target["schema_revision"]}]


def _backup_step(live, enabled, db_revision, reason):
    if not enabled or db_revision is None:
        return []
    return [{"step": "backup", "app_version": (live or {}).get("version"), "reason": reason}]


def _migrate_step(image, db_revision, to):
    return {"step": "migrate", "image": image, "from": db_revision, "to": to}


def plan(kind, target=None, live=None, db_revision=None, kept=(), backup=None, blockers=(), revisions=None,
         pre_deploy_backup=True, up_to_date=False, allow_restore=False, switched=False):
    """The ordered steps of a ``kind`` (deploy, rollback, restore) from what is live to ``target``.

    ``live``: the live release (version, image, schema_revision it runs on) or None when nothing runs.
    ``target``: the release to go to (version, image, schema_revision it needs); for a restore, the live one.
    ``db_revision``: the database's schema revision now (None: empty). ``kept``: kept releases, newest first.
    ``backup``: for a restore (or a rollback allowed to restore), the backup's name, schema_revision and
    app_version. ``blockers``: why the schema cannot go down from ``db_revision`` to the target's revision
    (asked of the newer image). ``up_to_date``: the live container is the target with the same settings.
    ``switched``: traffic already went back to the target's warm standby on some host (a rollback switches
    first, docs/decisions/rollback-switch-first.md); a downgrade that cannot be done then keeps the schema and
    the code stays back, instead of a refusal.
    """
    if kind not in KINDS:
        raise PlanError("kind must be one of %s, not %r" % (", ".join(KINDS), kind))
    kept = [_release(entry) for entry in kept or []]
    live = _release(live) if live else None
    if kind == "restore":
        return _plan_restore(live, kept, backup, revisions, db_revision)
    if not target or not target.get("version") or not target.get("image"):
        raise PlanError("target must name the release (version and image) to go to")
    target = _release(target)
    if kind == "deploy":
        return _plan_deploy(target, live, db_revision, kept, revisions, pre_deploy_backup, up_to_date)
    result = _plan_rollback(target, live, db_revision, kept, backup, list(blockers or []), revisions,
                            pre_deploy_backup, up_to_date, allow_restore, switched)
    if allow_restore and result["action"] != "refuse" and "restore" not in result["do"] \
            and not result.get("schema_kept"):
        result["summary"] += " " + _restore_not_used(backup)
    return result


def _restore_not_used(backup):
    """What a rollback asked to restore (-e restore_backup=true) says when the schema gets where it must without
    the backup: nothing is restored, and the data written since the deploy stays."""
    name = (backup or {}).get("name")
    return ("-e restore_backup=true was not needed: the schema gets there without a restore, so no backup is "
            "restored and the data written since that deploy stays (playbooks/restore.yml -e "
            "restore_backup_name=%s brings back the data of before it)." % (name or "NAME"))


def _plan_deploy(target, live, db_revision, kept, revisions, backup_enabled, up_to_date):
    need = target["schema_revision"]
    schema = {"from": db_revision, "to": need}
    where = order(db_revision, need, revisions)
    if where is None:
        return _unordered("deploy", db_revision, need, schema=schema)
    version = target["version"]
    if where > 0 and up_to_date:
        # Serving already, on a newer schema a failed release's migration left (old code runs on newer schemas).
        return _result("deploy", "none", summary="%s is live on schema %s (it needs %s; a later release's migration "
                       "stayed): nothing to do." % (version, _rev(db_revision), _rev(need)), schema=schema)
    if where > 0:
        kept_target = [entry for entry in kept if entry["version"] == version]
        command = ("To go back to %s, run playbooks/rollback.yml -e to=%s: it starts %s on the newer schema, "
                   "switches, and then takes the schema down with the newer release's image." % (
                       version, version, version)) if kept_target else (
            "Deploy a release that runs on schema %s, or restore a backup made under %s "
            "(playbooks/restore.yml -e restore_backup_name=NAME; list them with playbooks/verify_backup.yml)."
            % (db_revision, version))
        if live and live.get("version") and live["version"] != version:
            # A deploy meant to change a setting only (-e rollcall_pitr=true) after a newer release was deployed
            # with -e rollcall_app_version: the inventory's version is the older one.
            command += (" Or, to keep %s and change only other settings, run with -e rollcall_app_version=%s (or "
                        "set rollcall_app_version: %s in the inventory)." % (live["version"], live["version"],
                                                                             live["version"]))
        return _refuse("deploy", "%s needs schema %s, but the database is at %s, newer; a deploy never takes the "
                       "schema down." % (version, need, db_revision), command, schema=schema)
    steps = []
    if where < 0:
        steps += _backup_step(live, backup_enabled, db_revision, "before migrating %s -> %s" % (db_revision, need))
        steps.append(_migrate_step(target["image"], db_revision, need))
    if up_to_date:
        if not steps:
            return _result("deploy", "none", summary="%s is live on schema %s: nothing to do." % (
                version, _rev(need)), schema=schema)
        # The live release is the target but its schema is behind (a restore of an older backup): migrate only.
        return _result("deploy", "change", steps, summary="%s is live but the schema is at %s: %s." % (
            version, _rev(db_revision), _describe(steps)), schema=schema)
    steps += _release_steps(target)
    first = live is None and db_revision is None
    return _result("deploy", "change", steps, summary="%s %s%s: %s." % (
        "Install" if first else "Deploy", version,
        (" (from %s)" % live["version"]) if live else "", _describe(steps)), schema=schema, old_serves=True)


def _plan_rollback(target, live, db_revision, kept, backup, blockers, revisions, backup_enabled, up_to_date,
                   allow_restore, switched=False):
    version = target["version"]
    need = target["schema_revision"]
    schema = {"from": db_revision, "to": need}
    if not any(entry["version"] == version for entry in kept):
        return _refuse("rollback", "%s is not a kept release." % version, "Kept: %s." % (
            ", ".join(entry["version"] for entry in kept) or "none"), schema=schema)
    where = order(db_revision, need, revisions)
    if where is None:
        return _unordered("rollback", db_revision, need, schema=schema)
    same = live is not None and live["version"] == version and up_to_date
    verb = "Rolling forward" if where < 0 else "Rolling back"
    origin = (" from %s" % live["version"]) if live else ""
    if where < 0:
        steps = _backup_step(live, backup_enabled, db_revision, "before migrating %s -> %s" % (db_revision, need))
        steps.append(_migrate_step(target["image"], db_revision, need))
        if not same:
            steps += _release_steps(target)
        # a roll forward: the release it leaves runs on the newer schema, as after a deploy
        return _result("rollback", "change", steps, summary="%s%s to %s (schema %s -> %s): %s." % (
            verb, origin, version, _rev(db_revision), need, _describe(steps, switched)), schema=schema,
            old_serves=True)
    if where == 0:
        if same:
            return _result("rollback", "none", summary="%s is already live on schema %s: nothing to do." % (
                version, _rev(need)), schema=schema)
        steps = _release_steps(target)
        return _result("rollback", "change", steps, summary="%s%s to %s (code only, schema %s): %s." % (
            verb, origin, version, _rev(need), _describe(steps, switched)), schema=schema, old_serves=True)
    # The schema goes down.
    if blockers and switched:
        # The code is back already (the standby answered ready on this schema): keep it there, keep the schema.
        return _keep_schema(target, live, db_revision, backup, blockers, same, origin)
    if blockers:
        name = (backup or {}).get("name")
        if not (allow_restore and name):
            command = ("Run again with -e restore_backup=true to restore the backup taken before that deploy (%s) "
                       "instead." % name) if name else "No backup was recorded before that deploy."
            return _refuse("rollback", "Rolling back to %s needs schema %s, but %s." % (
                version, need, "; ".join(blockers)), command, schema=schema)
        restored = backup.get("schema_revision")
        after = order(restored, need, revisions)
        if after is None:
            return _unordered("rollback", restored, need, schema=schema)
        if after > 0:
            return _refuse("rollback", "Rolling back to %s needs schema %s, but %s, and the backup %s is at %s." % (
                version, need, "; ".join(blockers), name, restored),
                "Restore a backup made under %s (playbooks/restore.yml -e restore_backup_name=NAME)." % version,
                schema=schema)
        steps = [{"step": "restore", "name": name, "schema_revision": restored,
                  "app_version": (live or {}).get("version")}]
        if after < 0:
            steps.append(_migrate_step(target["image"], restored, need))
        steps += _release_steps(target)
        return _result("rollback", "change", steps, summary="%s%s to %s (schema %s -> %s; %s): %s." % (
            verb, origin, version, _rev(db_revision), need, "; ".join(blockers), _describe(steps)), schema=schema)
    steps = [] if same else _release_steps(target)
    steps.append({"step": "downgrade", "image": _newer_image(live, kept, db_revision), "from": db_revision,
                  "to": need})
    return _result("rollback", "change", steps, summary="%s%s to %s (schema %s -> %s): %s." % (
        verb, origin, version, _rev(db_revision), need, _describe(steps, switched)), schema=schema)


def _keep_schema(target, live, db_revision, backup, blockers, same, origin):
    version, need = target["version"], target["schema_revision"]
    name = (backup or {}).get("name")
    command = ("To have the older schema too, restore the backup taken before that deploy: playbooks/restore.yml "
               "-e restore_backup_name=%s." % name) if name else "No backup was recorded before that deploy."
    steps = [] if same else _release_steps(target)
    reason = "; ".join(blockers)
    return _result("rollback", "change", steps, summary="Rolling back%s to %s: code back, schema left at %s (newer "
                   "than the %s it needs, which it runs on), because %s%s. %s" % (
                       origin, version, db_revision, need, reason,
                       (": " + _describe(steps, True)) if steps else "", command),
                   reason=reason, command=command, schema={"from": db_revision, "to": db_revision},
                   schema_kept=True, old_serves=True)


def _plan_restore(live, kept, backup, revisions, db_revision=None):
    if not backup or not backup.get("name"):
        # nothing of the stack either: most often a mistyped rollcall_project (-e), or another stack's inventory
        stranger = "" if live else (" Nor does this stack run here: is rollcall_project right? It names the stack "
                                    "(its containers and its backups).")
        return _refuse("restore", "There is no backup to restore.",
                       "Make one with playbooks/backup.yml, or name one with -e restore_backup_name=NAME.%s"
                       % stranger)
    name, restored = backup["name"], backup.get("schema_revision")
    schema = {"from": restored, "to": live["schema_revision"] if live else None}
    steps = [{"step": "restore", "name": name, "schema_revision": restored, "app_version": (live or {}).get(
        "version")}]
    if live is None:
        return _result("restore", "change", steps, summary="Restore %s (schema %s); no release is live: "
                       "playbooks/deploy.yml then brings the schema to what it needs." % (name, _rev(restored)),
                       schema=schema)
    need = live["schema_revision"]
    where = order(restored, need, revisions)
    if where is None:
        return _unordered("restore", restored, need, schema=schema)
    if where > 0 and restored == db_revision:
        # The live database is on the backup's schema already, and the live release serves on it now (a deploy
        # that migrated, then failed its gate and was rolled back): the restore leaves the schema as it is.
        return _result("restore", "change", steps, schema=schema, summary=(
            "Restore %s (schema %s) under %s, which runs on schema %s and serves on the live database's %s now (as "
            "after a deploy that migrated, then was rolled back): the schema stays %s; %s." % (
                name, restored, live["version"], _rev(need), restored, restored, _describe(steps))))
    if where > 0:
        on = _kept_on(kept, restored)
        made = backup.get("app_version")
        mine = [entry for entry in on if entry["version"] == made] or on
        if mine:
            command = ("Roll forward first (playbooks/rollback.yml -e to=%s), then restore it; or pick a backup made "
                       "under %s with -e restore_backup_name=NAME." % (mine[0]["version"], live["version"]))
        else:
            made_under = (" (it was made under %s)" % made) if made else ""
            command = ("Deploy a release that runs on schema %s%s first, then restore it; or pick a backup made "
                       "under %s with -e restore_backup_name=NAME." % (restored, made_under, live["version"]))
        return _refuse("restore", "Backup %s is at schema %s, newer than %s, which the live release %s runs on; "
                       "restored under %s, the schema would be ahead of the code (and nothing here takes a restored "
                       "schema down)." % (name, restored, need, live["version"], live["version"]), command,
                       schema=schema)
    if where < 0:
        steps.append(_migrate_step(live["image"], restored, need))
    return _result("restore", "change", steps, summary="Restore %s (schema %s) under %s (schema %s): %s." % (
        name, _rev(restored), live["version"], _rev(need), _describe(steps)), schema=schema)


def _describe(steps, switched=False):
    """One line: what the steps do, in order. ``switched``: a rollback's traffic went back to the warm standby
    before the plan, so start, gate and switch are done where the standby answered."""
    words = []
    for index, step in enumerate(steps):
        kind = step["step"]
        if switched and kind in ("gate", "switch"):
            continue
        after_restore = index > 0 and steps[index - 1]["step"] == "restore"
        if kind == "backup":
            words.append("verified backup")
        elif kind == "restore":
            words.append("restore %s into a side database" % step["name"])
            if index + 1 == len(steps) or steps[index + 1]["step"] != "migrate":
                words.append("swap it in (the app keeps serving)")
        elif kind == "migrate":
            words.append("migrate %s -> %s with %s%s" % (_rev(step["from"]), step["to"], step["image"],
                                                         " there, then swap it in (the app keeps serving)"
                                                         if after_restore else ""))
        elif kind == "start" and switched:
            words.append("traffic went back to the warm standby running %s (a host without one starts it, waits "
                         "for /health/ready and switches)" % step["version"])
        elif kind == "start":
            words.append("start %s" % step["version"])
        elif kind == "gate":
            words.append("wait for /health/ready")
        elif kind == "switch":
            words.append("switch traffic")
        elif kind == "downgrade":
            words.append("then downgrade %s -> %s with %s" % (_rev(step["from"]), step["to"], step["image"]))
    return ", ".join(words)
