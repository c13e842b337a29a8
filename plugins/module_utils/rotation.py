# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container names of a release after its switch: who is live, who is the warm standby, who goes.

The container that takes traffic is always ``<project>-app`` (backups, restores and people find the live release by
name); a release starts as ``<project>-app-next`` and takes the live name once the proxy sends it traffic (the proxy
follows network aliases, not names, so the renames are no traffic change). The release that was live then becomes
the warm standby ``<project>-app-standby`` when it is kept and runs, or is retired: stopped gracefully (gunicorn
finishes what it holds) and removed.

A rollback whose schema goes down next (playbooks/rollback.yml) does not wait for that graceful stop, a second or
more: the newer release is renamed ``<project>-app-retiring`` and sent SIGTERM (its own graceful stop), and
``wait_retired`` removes it once it has exited - before the schema goes down - or stops it after a timeout.
A ``-retiring`` left by an earlier run is retired first.

``plan`` decides (pure, unit tested per branch); ``apply`` carries it out through the Docker SDK. No Ansible here:
the module ``app_rotate`` is a thin wrapper.
"""

import contextlib
import time

STANDBY_SWAP = "-swap"
RETIRING = "-retiring"
STOP_TIMEOUT_S = 30  # gunicorn's graceful timeout in the app is 10 s


class RotationError(Exception):
    """The rotation cannot be done (the container that takes traffic is missing)."""


def retiring_name(live):
    return live + RETIRING


def plan(serving, live, standby, found, keep_old=True, retire_later=False):
    """The steps that give ``live`` to the container ``serving`` (which takes traffic now).

    ``found``: the containers that exist among ``serving``, ``live``, ``standby`` and the retiring name, by name:
    ``{"id": ..., "running": bool, "version": ...}``. ``keep_old``: the release that was live becomes the standby when
    it runs; otherwise it is retired - now, or with ``retire_later`` renamed ``<live>-retiring`` and only signalled.
    Returns ``(steps, summary)``; each step is ``(action, name[, new_name])`` with action ``retire`` (stop
    gracefully, remove), ``rename`` or ``signal`` (SIGTERM, it stops by itself). Raises RotationError when
    ``serving`` does not exist.
    """
    new = found.get(serving)
    if new is None:
        raise RotationError("%s does not exist: nothing to put under the live name %s" % (serving, live))
    retiring = retiring_name(live)
    steps = []
    if retiring in found and retiring != serving:
        steps.append(("retire", retiring))
    current = serving
    if serving == standby:
        # the standby takes the live name: it moves aside first, so the standby name is free for the old live one
        current = live + STANDBY_SWAP
        steps.append(("rename", serving, current))
    elif standby in found:
        steps.append(("retire", standby))
    old = found.get(live)
    note = ""
    if old is not None and old["id"] != new["id"]:
        if keep_old and old["running"]:
            steps.append(("rename", live, standby))
            note = " (%s stays warm as %s)" % (old.get("version") or "?", standby)
        elif retire_later and old["running"]:  # one that does not run has nothing to finish: retired now
            steps += [("rename", live, retiring), ("signal", retiring)]
            note = " (%s stops as %s)" % (old.get("version") or "?", retiring)
        else:
            steps.append(("retire", live))
            note = " (%s retired)" % (old.get("version") or "?")
    if current != live:
        steps.append(("rename", current, live))
    return steps, "%s is %s%s" % (new.get("version") or "?", live, note)


def describe(container):
    """What ``plan`` needs of a Docker SDK container."""
    return {"id": container.id, "running": container.status == "running",
            "version": (container.labels or {}).get("rollcall.version")}


def find(api, names):
    """The containers among ``names`` that exist, described (``describe``)."""
    import docker.errors

    found = {}
    for name in dict.fromkeys(names):
        with contextlib.suppress(docker.errors.NotFound):
            found[name] = describe(api.containers.get(name))
    return found


def retire(container, timeout=STOP_TIMEOUT_S):
    container.stop(timeout=timeout)
    container.remove(v=True)  # its anonymous volumes too (named volumes are never removed this way)


def apply(api, steps):
    """Carry out ``steps`` (``plan``) in order."""
    for step in steps:
        container = api.containers.get(step[1])
        if step[0] == "retire":
            retire(container)
        elif step[0] == "rename":
            container.rename(step[2])
        elif step[0] == "signal":
            container.kill(signal="SIGTERM")
        else:  # pragma: no cover - plan makes no other step
            raise RotationError("unknown step %r" % (step,))


def wait_retired(api, live, timeout, clock=time.monotonic, sleep=time.sleep):
    """Wait until ``<live>-retiring`` has exited (its graceful stop), at most ``timeout`` seconds, then remove it;
    one still running after that is killed first. Returns what happened: ``none`` (nothing to wait for),
    ``removed`` (it had stopped by itself) or ``killed``."""
    import docker.errors

    name = retiring_name(live)
    deadline = clock() + timeout
    try:
        container = api.containers.get(name)
        while container.status in ("running", "restarting", "removing") and clock() < deadline:
            sleep(0.1)
            container.reload()
        outcome = "removed"
        if container.status in ("running", "restarting"):
            container.kill()
            outcome = "killed"
        container.remove(v=True, force=True)
    except docker.errors.NotFound:  # not there, or removed meanwhile
        return "none"
    return outcome
