# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who holds a host port: the running containers that publish it (Docker API), or another program (a bind).

A container started on a port another container or program holds fails at its start with the engine's raw
"address already in use" (a published port), or keeps restarting (host network: Prometheus, the node exporter):
the deploy's proxy (``stack.port_conflict``, through ``stack_engine``) and the monitoring stack
(``port_check``) ask here first. ``service_taken`` and ``refusal`` decide (pure); the rest collects.
"""

import errno
import socket

EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 - what Docker publishes on without an address; never bound to serve
ANY_ADDRESS = (EVERY_ADDRESS, "::", "")


def port_holders(client, address, port):
    """(name, "ip:port") of the running containers that publish host port ``port`` where ``address`` would
    bind: on that address, or on every address, or anywhere when ``address`` is every address."""
    found = []
    for container in client.api.containers():
        name = (container.get("Names") or ["?"])[0].lstrip("/")
        for binding in container.get("Ports") or []:
            ip = binding.get("IP") or ""
            if binding.get("PublicPort") == port and binding.get("Type", "tcp") == "tcp" and (
                    ip == address or ip in ANY_ADDRESS or address in ANY_ADDRESS):
                found.append((name, "%s:%s" % (ip or EVERY_ADDRESS, port)))
                break
    return found


def bind_error_here(docker_host, address, port):
    """``bind_error`` when ``docker_host`` is this machine's engine (a unix socket): a bind tells nothing about a
    remote engine's machine (tcp://), which says so itself when it starts the container."""
    return bind_error(address, port) if docker_host.startswith("unix://") else None


def bind_error(address, port):
    """None when a TCP listener could bind ``address:port`` on this machine now, else the error's text."""
    family = socket.AF_INET6 if ":" in (address or "") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a connection in TIME_WAIT does not hold it
        sock.bind((address or EVERY_ADDRESS, port))  # closed at once: a test, not a listener
        return None
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return exc.strerror or str(exc)
        return None  # an address this machine does not have: the engine says so itself
    finally:
        sock.close()


def container_state(client, name):
    """'running', 'restarting', 'stopped' or 'absent' for container ``name``."""
    import docker.errors  # the module reports a missing SDK before calling this

    try:
        state = client.api.inspect_container(name).get("State") or {}
    except docker.errors.NotFound:
        return "absent"
    if state.get("Restarting"):
        return "restarting"
    return "running" if state.get("Running") else "stopped"


def what_holds(holders, ours, ours_hold, bind_failed):
    """Who holds a port instead of our container(s), or None (free, or ours). Pure; the decision both refusals
    word their own way (``service_taken`` here, ``stack.port_conflict`` for the deploy).

    ``holders``: the running containers publishing it, (name, "ip:port"); ``ours``: our containers' names;
    ``ours_hold``: one of ours holds it (running); ``bind_failed``: ``bind_error``'s answer. Returns
    ("container", name, "ip:port") for another container, ("program", error) for another program listening
    while none of ours holds it."""
    others = [(name, at) for name, at in holders if name not in ours]
    if others:
        return ("container",) + others[0]
    if ours_hold or not bind_failed:
        return None
    return ("program", bind_failed)


def service_taken(service, state, holders, bind_failed):
    """What holds the port of ``service`` (a dict: name, container, address, port) instead of its container, or
    None. Pure. ``state``: its container's (``container_state``); ``holders``: the running containers publishing
    the port (``port_holders``); ``bind_failed``: ``bind_error``'s answer, asked only when nothing else tells."""
    where = "%s:%s" % (service.get("address") or EVERY_ADDRESS, service["port"])
    held = what_holds(holders, (service["container"],), state == "running", bind_failed)
    if held is None:
        return None  # its own container holds it (a re-run), or it is free
    if held[0] == "container":
        return "%s's port %s is published by container %s" % (service["name"], where, held[1])
    said = "%s's port %s is taken by another program (%s)" % (service["name"], where, held[1])
    if state == "restarting":
        said += "; its container %s keeps restarting (docker logs %s)" % (service["container"], service["container"])
    return said


def refusal(host, taken, setting, keys=()):
    """The one-line refusal for the ``service_taken`` answers of ``host``; None when there are none. Pure.

    ``keys``: the taken services' keys under the mapping ``setting`` names (``{prometheus: PORT}``)."""
    if not taken:
        return None
    move = "%s: {%s}" % (setting, ", ".join("%s: PORT" % k for k in keys)) if keys else setting
    return ("Nothing was changed on %s: %s. Stop what holds %s, or move ours with %s."
            % (host, "; ".join(taken), "them" if len(taken) > 1 else "it", move))
