#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: app_release
short_description: Release history, deploy lock and audit log of an application on its host
version_added: "0.2.0"
description:
  - Keeps the release state of one application on the host it runs on, under O(state_dir)/O(app)/ (mode 0700),
    for zero-downtime deploys and rollbacks.
  - C(releases.json) is the release history, oldest first; each entry has id (monotonic), version, image,
    image_id, config_hash, schema_revision, backup (the pre-deploy backup or null), container, db_login (which of
    the app's two database logins it used), deployed_at (UTC), actor, outcome (success, failed or rolled_back),
    kind (deploy, rollback, or adopt for a live release the history had lost), duration_s and reason. It is
    rewritten atomically (temporary file in the same directory, fsync, rename, directory fsync), mode 0600.
  - C(deploy.lock) is the deploy lock, created with C(O_CREAT|O_EXCL) so exactly one deploy holds it.
    O(action=info) and the lock-held error report its age. A lock held by someone else is removed by
    O(action=break_lock), and by O(action=lock) only when the run that took it has provably ended (see
    O(controller)).
  - C(audit.jsonl) is an append-only log (one JSON object a line) of every deploy, rollback, failure and broken
    lock.
  - The current release is the newest successful entry (a successful rollback counts); failed and rolled-back
    deploys never become current, previous or kept.
author:
  - Rollcall contributors (@rollcall)
options:
  app:
    description:
      - Name of the application; also the directory name under O(state_dir). 1 to 64 letters, digits, C(_),
        C(-) or C(.); C(.) and C(..) are refused.
    type: str
    required: true
  state_dir:
    description:
      - Directory holding the release state of every application on the host (an absolute path). Created when
        missing by the actions that change something.
    type: path
    default: /var/lib/rollcall
  action:
    description:
      - V(lock) takes the deploy lock, waiting up to O(lock_timeout) seconds while someone else holds it, and
        returns its RV(token). With the O(token) of the lock already held it changes nothing.
      - V(unlock) releases the lock held with O(token). A lock held by someone else is never removed (the task
        fails); no lock at all is not an error.
      - V(break_lock) removes whatever lock is there, returns it as RV(lock) and writes a C(lock_broken) audit
        line. Use it only when the deploy holding the lock is dead.
      - V(record) appends O(release) to the history and writes an audit line with the event C(<kind>_<outcome>)
        (for example C(deploy_success), C(deploy_failed), C(rollback_success)); returns RV(release) and
        everything V(info) returns.
      - V(audit) appends one audit line (O(event)) and nothing else.
      - V(info) changes nothing and returns the history, the current, previous and kept releases, the lock and
        the end of the audit log.
      - V(adopt) records O(release), the release running now as its container describes it (version, image,
        image_id, config_hash, schema_revision, container, db_login), with kind C(adopt), when the history has no
        current release (a new or emptied state directory); otherwise it changes nothing. So a deploy after a lost
        history keeps the release it replaces, and a rollback can go back to it.
    type: str
    required: true
    choices: [lock, unlock, break_lock, record, audit, info, adopt]
  actor:
    description:
      - Who is acting, recorded in the lock, the history and the audit log.
      - Defaults to C(SUDO_USER) (else C(USER)) of the module's environment on the host, C(@) its host name.
    type: str
  version:
    description:
      - The application version being deployed, recorded in the lock and the audit log; with O(action=record)
        the default of O(release)'s version.
    type: str
  msg:
    description:
      - Free text, stored as C(message) - why the lock is taken (shown to whoever finds it held), why a lock is
        broken, or the message of an audit line (with O(action=record), when the release has no reason).
      - Named O(msg) because Ansible reserves the option name C(message).
    type: str
  lock_timeout:
    description:
      - With O(action=lock), seconds to wait for a lock held by someone else, checking every second. V(0) fails
        at once. On timeout the task fails naming the holder, its version and message, and the lock's age.
    type: int
    default: 0
  token:
    description:
      - The token of the lock. O(action=unlock) requires it and only releases the lock held with it.
      - With O(action=lock), the token to hold the lock with (one is generated when omitted); if the lock is
        already held with this token, nothing changes.
    type: str
  release:
    description:
      - With O(action=record), the release to append, with the entry fields id, version, image, image_id,
        config_hash, schema_revision, backup, container, db_login, deployed_at, actor, outcome, kind, duration_s,
        reason. Other keys are refused.
      - Missing fields (and empty strings) are null, except outcome (default V(success)), kind (default
        V(deploy)), version (default O(version); required one way or the other) and actor (default O(actor)).
        id and deployed_at are always filled in.
      - With O(action=audit), its outcome, duration_s and reason (as the message when O(msg) is not given)
        go into the audit line.
    type: dict
  event:
    description:
      - With O(action=audit), the event name (1 to 64 letters, digits, C(_), C(-) or C(.)), for example
        C(deploy_failed) or C(health_check_failed).
    type: str
  keep:
    description:
      - How many distinct successful versions are kept for rollback, reported as RV(kept).
    type: int
    default: 5
  from_version:
    description:
      - With O(action=audit) or O(action=record), the version the host is moving away from, for the audit line.
        O(action=record) defaults it to the version of the current release.
    type: str
  adhoc:
    description:
      - With O(action=lock), how this host is reached with ad hoc C(ansible) from the controller (for example
        C(.venv/bin/ansible localhost -i inventories/local), what the filter C(rollcall.ops.adhoc_command) makes).
        When the lock is held, the message gives the C(break_lock) command with it, ready to paste; without it,
        with the placeholders C(ansible <this host> -i <inventory>).
    type: str
  controller:
    description:
      - With O(action=lock), the Ansible run taking the lock, as the collection's action plugin for this module
        fills it in on the controller (C(module_utils/controller.py)) - the controller's host name, kernel boot id
        and pid namespace, the C(ansible-playbook) process's pid, process group and start time, when it looked,
        and the Ansible processes and process groups there were then. Recorded in the lock (without the lists).
      - A lock found held that was taken from the same controller (same boot id and pid namespace) before this
        run looked, by an C(ansible-playbook) process that was no longer running then, nothing left in its
        process group (a deploy interrupted with Ctrl-C, a closed terminal, a killed job), is broken at once
        (audited as C(lock_broken), reported in RV(broken) and as a warning) instead of waited for. A lock taken
        with the ad hoc C(ansible) command (held by hand until O(action=unlock)), from another controller, from an
        AWX job's container or from an older version is waited for as before.
    type: dict
notes:
  - Runs on the application host. Supports check mode; in check mode nothing is written, the changing actions
    report what they would do, and O(action=lock) reports in RV(acquirable) whether the lock could be taken
    (without waiting).
  - The lock records the module's process id and host for diagnosis; the process ends with the task, so the pid
    only tells which run took the lock.
"""

EXAMPLES = r"""
- name: Take the deploy lock, waiting up to 10 minutes for a running deploy
  rollcall.ops.app_release:
    app: sms
    action: lock
    version: "{{ sms_version }}"
    msg: "deploy {{ sms_version }}"
    lock_timeout: 600
  register: deploy_lock

- name: What is deployed, and what could we roll back to?
  rollcall.ops.app_release:
    app: sms
    action: info
  register: sms_release

- name: Record the deploy
  rollcall.ops.app_release:
    app: sms
    action: record
    release:
      version: "{{ sms_version }}"
      image: "registry.example.org/sms:{{ sms_version }}"
      image_id: "{{ sms_image.image.Id }}"
      config_hash: "{{ sms_config_hash }}"
      schema_revision: "{{ sms_schema_revision }}"
      backup: "{{ predeploy_backup.name }}"
      container: sms-app
      outcome: success
      kind: deploy
      duration_s: "{{ (now(utc=true).timestamp() - deploy_started) | round(1) }}"

- name: Record a failed deploy that was rolled back
  rollcall.ops.app_release:
    app: sms
    action: record
    release:
      version: "{{ sms_version }}"
      outcome: rolled_back
      reason: "health check failed: database (connection refused)"

- name: Audit a failure
  rollcall.ops.app_release:
    app: sms
    action: audit
    event: deploy_failed
    version: "{{ sms_version }}"
    from_version: "{{ sms_release.current.version | default(omit) }}"
    msg: migrations failed

- name: Release the lock
  rollcall.ops.app_release:
    app: sms
    action: unlock
    token: "{{ deploy_lock.token }}"

- name: Break the lock of a deploy that died
  rollcall.ops.app_release:
    app: sms
    action: break_lock
    msg: the controller running that deploy crashed
"""

RETURN = r"""
token:
  description: The lock's token; pass it to O(action=unlock). In check mode, the O(token) given (or the held
    lock's), else a placeholder.
  returned: action is lock and the lock is (or would be) held
  type: str
acquirable:
  description: Whether the lock could be taken now (check mode only).
  returned: action is lock, in check mode
  type: bool
lock:
  description:
    - The deploy lock (holder, version, message, since, token, pid, host, age_s), or null when there is none.
    - For V(lock), the lock held; for V(unlock) and V(break_lock), the lock removed (or that would be); for
      V(info) and V(record), the current lock. C(damaged=true) marks an empty or unreadable lock file.
  returned: always
  type: dict
release:
  description: The history entry stored (in check mode, that would be stored).
  returned: action is record, or adopt when it records
  type: dict
audit:
  description: The audit line written (in check mode, that would be written).
  returned: action is audit, record or break_lock and a line is written
  type: dict
releases:
  description: The release history, oldest first.
  returned: action is info, record or adopt
  type: list
  elements: dict
broken:
  description:
    - With O(action=lock), each lock this run broke because the run that took it had ended (see O(controller)),
      with C(why); usually empty.
  returned: action is lock (not in check mode)
  type: list
  elements: dict
current:
  description:
    - The newest successful entry (deploy, rollback or adopt), null when there is none.
    - For V(lock), as it is once the lock is held, so that a caller that planned before waiting for the lock can
      tell whether a release ran meanwhile.
  returned: action is info, record, adopt or lock (not in check mode)
  type: dict
previous:
  description: The newest successful entry older than RV(current) whose version differs from its version, null
    when there is none.
  returned: action is info, record or adopt
  type: dict
kept:
  description: The newest O(keep) distinct successful versions, newest first, each its newest entry; what a
    rollback may choose from.
  returned: action is info, record or adopt
  type: list
  elements: dict
rollback_target:
  description:
    - The version a rollback without a named target goes to - the release that was live before the last deploy
      (or roll forward) still in effect - null when there is none. A rollback run twice goes one release further
      back, never forward again to the release it left (module_utils/release.py C(rollback_target)).
  returned: action is info, record or adopt
  type: str
audit_tail:
  description: The last 20 audit lines, oldest first.
  returned: action is info, record or adopt
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import release as rel


def record(store, release, actor, check, message=None, from_version=None):
    """(the entry, the history with it): written, or in check mode only planned."""
    if check:
        entry, history = store.plan_record(release, actor)
        return entry, history + [entry]
    return store.record(release, actor, message, from_version)


def run(module, store):
    p = module.params
    action, actor, check = p["action"], p["actor"], module.check_mode
    if action == "info":
        return dict(changed=False, **store.info(p["keep"]))
    if action == "lock":
        if p["lock_timeout"] < 0:
            raise rel.ReleaseError("lock_timeout must be 0 or more seconds, not %s" % p["lock_timeout"])
        if check:
            acquirable, mine, lock = store.probe_lock(p["token"])
            gone = None if acquirable else rel.holder_gone(lock, p["controller"])
            if gone:
                return dict(changed=True, acquirable=True, lock=lock, token=p["token"] or "(generated when the "
                            "lock is taken)", msg="would break the deploy lock held by %s (%s) and take it"
                            % (rel.describe_lock(lock), gone))
            if not acquirable:
                return dict(changed=False, acquirable=False, lock=lock, msg="would wait for (or fail on) the "
                            + store.held_message(lock))
            token = lock["token"] if mine else (p["token"] or "(generated when the lock is taken)")
            return dict(changed=not mine, acquirable=True, lock=lock, token=token,
                        msg="already holding the deploy lock" if mine else "would take the deploy lock")
        changed, lock = store.acquire(actor, p["version"], p["msg"], p["token"], p["lock_timeout"],
                                      controller=p["controller"])
        broken = [dict(old, why=why) for old, why, dummy in store.broken_stale]
        for old in broken:
            module.warn("the deploy lock held by %s was broken and taken (audited as lock_broken): %s; that run may "
                        "have stopped half-way, and this one goes over its steps again"
                        % (rel.describe_lock(old), old["why"]))
        # what is live once the lock is held: a caller that planned before waiting can tell whether a release ran
        return dict(changed=changed, lock=lock, token=lock["token"], broken=broken,
                    current=rel.current_release(store.read_history()))
    if action == "unlock":
        if check:
            lock = store.read_lock()
            if lock is not None and lock.get("token") != p["token"]:
                store.release(p["token"])  # raises the same error as a real run
            return dict(changed=lock is not None, lock=lock)
        changed, lock = store.release(p["token"])
        return dict(changed=changed, lock=lock)
    if action == "break_lock":
        if check:
            lock = store.read_lock()
            return dict(changed=lock is not None, lock=lock)
        changed, lock, line = store.break_lock(actor, p["msg"])
        result = dict(changed=changed, lock=lock)
        if line:
            result["audit"] = line
        return result
    if action == "record":
        release = dict(p["release"])
        if p["version"] is not None:
            if release.get("version") not in (None, "", p["version"]):
                raise rel.ReleaseError("version %s and release.version %s differ; give one of them"
                                       % (p["version"], release["version"]))
            release["version"] = p["version"]
        entry, history = record(store, release, actor, check, p["msg"], p["from_version"])
        result = dict(changed=True, release=entry, lock=store.read_lock(), audit_tail=store.audit_tail(),
                      **rel.facts(history, p["keep"]))
        return result
    if action == "adopt":
        history = store.read_history()
        adopted = rel.adoption(history, p["release"])
        if adopted is None:
            return dict(changed=False, msg="the history has a current release (or the live container is not a "
                                           "labelled release): nothing to adopt", **rel.facts(history, p["keep"]))
        entry, history = record(store, adopted, actor, check)
        return dict(changed=True, release=entry, msg="recorded the live release %s, which the history had lost"
                    % entry["version"], **rel.facts(history, p["keep"]))
    # audit
    release = p["release"] or {}
    fields = dict(version=p["version"], from_version=p["from_version"], outcome=release.get("outcome"),
                  duration_s=release.get("duration_s"), message=p["msg"] or release.get("reason"))
    if check:
        return dict(changed=True, audit=store.audit_line(p["event"], actor, **fields))
    return dict(changed=True, audit=store.append_audit(p["event"], actor, **fields))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/rollcall"),
            action=dict(type="str", required=True,
                        choices=["lock", "unlock", "break_lock", "record", "audit", "info", "adopt"]),
            actor=dict(type="str"),
            version=dict(type="str"),
            msg=dict(type="str"),
            lock_timeout=dict(type="int", default=0),
            token=dict(type="str", no_log=False),
            release=dict(type="dict"),
            event=dict(type="str"),
            keep=dict(type="int", default=5),
            from_version=dict(type="str"),
            adhoc=dict(type="str"),
            controller=dict(type="dict"),
        ),
        required_if=[("action", "unlock", ["token"]), ("action", "record", ["release"]),
                     ("action", "adopt", ["release"]), ("action", "audit", ["event"])],
        supports_check_mode=True,
    )
    p = module.params
    if not p["actor"]:
        p["actor"] = rel.default_actor()
    if p["keep"] < 1:
        module.fail_json(msg="keep must be at least 1, not %s" % p["keep"])
    try:
        store = rel.ReleaseStore(p["state_dir"], p["app"], adhoc=p["adhoc"])
        result = run(module, store)
    except rel.LockHeld as exc:
        module.fail_json(msg=str(exc), lock=exc.lock, waited_s=exc.waited_s)
    except rel.ReleaseError as exc:
        module.fail_json(msg="%s for %s failed: %s" % (p["action"], p["app"], exc))
    except OSError as exc:
        module.fail_json(msg="%s for %s failed: %s (%s); check that state_dir %s is writable by this user (become?)"
                         % (p["action"], p["app"], exc.strerror, exc.filename, p["state_dir"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
