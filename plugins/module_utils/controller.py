# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible run on the controller, as the deploy lock records it (runs on the controller; Linux ``/proc`` only).

A deploy lock outlives the run that took it when that run is interrupted (Ctrl-C, a closed terminal, a killed
job): ``ansible-playbook`` stops without the role's release of the lock. To let the next run on the same controller
tell such a lock from a running deploy, the ``app_release`` action plugin gives the module ``identity()``: this
kernel's boot id and pid namespace (which processes it can see), the ``ansible-playbook`` process with its start
time (so that a reused pid is not taken for it), its process group and its program (a lock taken with the ad hoc
``ansible`` command is meant to outlive it), when it looked, which Ansible processes ran at that moment and which
process groups had a process in them (a killed run's workers or modules may still run: they keep its group).
``release.holder_gone`` decides from two of these, on whichever host the lock file is. Stdlib only.
"""

import os
import socket
import time

PROC = "/proc"
# The programs whose processes may hold a deploy lock (``.venv/bin/ansible-playbook`` runs as ``python3 PATH ...``).
PROGRAMS = ("ansible", "ansible-playbook", "ansible-runner", "ansible-console")


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def stat(pid, proc=PROC):
    """(parent pid, process group, start time in clock ticks since boot) of ``pid``; None when it is not running."""
    try:
        text = _read(os.path.join(proc, str(pid), "stat")).decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": comm may hold spaces and parentheses
    return int(fields[1]), int(fields[2]), int(fields[19])


def cmdline(pid, proc=PROC):
    try:
        return _read(os.path.join(proc, str(pid), "cmdline"))
    except OSError:
        return None


def main_process(pid, proc=PROC):
    """The Ansible run's own process: ``pid`` or its outermost ancestor with the same command line (Ansible's task
    workers are forks of it, so they share it)."""
    own = cmdline(pid, proc)
    while True:
        parent = stat(pid, proc)
        if parent is None or parent[0] <= 1 or own is None or cmdline(parent[0], proc) != own:
            return pid
        pid = parent[0]


def program(argv):
    """Which of ``PROGRAMS`` a command line (NUL-separated bytes) runs, directly or as a Python script; else None."""
    for word in argv.split(b"\0")[:2]:
        name = os.path.basename(word.decode("utf-8", "replace"))
        if name in PROGRAMS:
            return name
    return None


def running(proc=PROC):
    """({pid (str): start time} of every Ansible process, [every process group with a process in it]) now, in this
    pid namespace. A run's task workers and the modules they started stay in its group, also once it is gone."""
    found, groups = {}, set()
    try:
        names = os.listdir(proc)
    except OSError:
        return found, []
    for name in names:
        if not name.isdigit():
            continue
        info = stat(name, proc)
        if info is None:
            continue
        groups.add(info[1])
        argv = cmdline(name, proc)
        if argv and program(argv):
            found[name] = info[2]
    return found, sorted(groups)


def identity(pid=None, proc=PROC, clock=time.time):
    """What the lock records about this run and what the next run compares with; None without ``/proc``.

    ``at`` is read before the processes are listed: a process that was running at ``at`` and still runs is listed.
    """
    try:
        boot_id = _read(os.path.join(proc, "sys/kernel/random/boot_id")).decode("ascii").strip()
        pid_ns = os.readlink(os.path.join(proc, "self/ns/pid"))
    except OSError:
        return None
    main = main_process(os.getpid() if pid is None else pid, proc)
    info = stat(main, proc)
    if not boot_id or info is None:
        return None
    at = clock()
    live, groups = running(proc)
    return {"host": socket.gethostname(), "boot_id": boot_id, "pid_ns": pid_ns, "pid": main, "pgid": info[1],
            "started": info[2], "program": program(cmdline(main, proc) or b""), "at": at, "live": live,
            "groups": groups}
