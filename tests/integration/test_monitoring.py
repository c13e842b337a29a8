"""playbooks/monitoring.yml for real (issue 16): the stack comes up with every target up, an alert travels the whole
way (health.yml's textfile -> node exporter -> Prometheus -> rule -> Alertmanager -> an SMTP server and a webhook
receiver, both real servers in this process), resolves, and a re-run changes nothing.

The monitored "fleet" is this machine as a db host of a SQLite stack (no app or database container to start: what
travels is a backup whose verification failed, the rule with no `for`); ports of its own, so a demo's monitoring
on this machine is not disturbed.
"""

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker.errors
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import asyncore
    import smtpd as smtpd_module

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "rc-mon-it"
PORTS = {"prometheus": 19090, "alertmanager": 19093, "blackbox": 19115, "node": 19100}
SMTP_PORT = 19025
HOOK_PORT = 19026
CONTAINERS = ["%s-%s" % (PROJECT, n) for n in ("prometheus", "alertmanager", "blackbox", "node-exporter",
                                                "teams-relay")]


class Mailbox(smtpd_module.SMTPServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.messages = []

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):  # noqa: ARG002 - smtpd's signature
        self.messages.append({"to": rcpttos, "data": data.decode() if isinstance(data, bytes) else data})


class Hook(BaseHTTPRequestHandler):
    received = []  # Alertmanager's webhook JSON (POST /alert)
    cards = []  # what our Teams relay posts (POST /teams): Teams' message with an Adaptive Card

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        (Hook.cards if self.path.startswith("/teams") else Hook.received).append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receivers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mailbox = Mailbox(("127.0.0.1", SMTP_PORT), None, decode_data=True)
    smtp_thread = threading.Thread(target=asyncore.loop, kwargs={"timeout": 0.5}, daemon=True)
    smtp_thread.start()
    hook = ThreadingHTTPServer(("127.0.0.1", HOOK_PORT), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    yield mailbox, Hook.received, Hook.cards
    hook.shutdown()
    mailbox.close()


def playbook(tmp_path, textfile_dir, check=False, name="monitoring.yml", extra=()):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {
        "children": {"db": {"hosts": {"localhost": None}}},
        "vars": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "rollcall_project": PROJECT, "rollcall_db_engine": "sqlite", "rollcall_environment": "test",
            "rollcall_state_dir": str(tmp_path / "state"), "rollcall_report_dir": str(textfile_dir),
            "rollcall_monitoring_scrape_interval": "2s",
            "rollcall_alert_group_wait": "1s", "rollcall_alert_group_interval": "2s",
            "rollcall_alert_email_to": "admin@school.example",
            "rollcall_alert_smtp_smarthost": "127.0.0.1:%d" % SMTP_PORT, "rollcall_alert_smtp_require_tls": False,
            "rollcall_alert_webhook_urls": ["http://127.0.0.1:%d/alert" % HOOK_PORT],
            "rollcall_alert_teams_urls": ["http://127.0.0.1:%d/teams/channel?sig=x" % HOOK_PORT],
            "rollcall_monitoring_ports": dict(PORTS, teams=19095),
        }}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    argv = ["ansible-playbook", "-i", str(inventory), str(ROOT / "playbooks" / name)] + list(extra)
    return subprocess.run(argv + (["--check"] if check else []), capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)


def recap_changed(out):
    line = [x for x in out.splitlines() if x.startswith("localhost") and "changed=" in x][-1]
    return int(line.split("changed=")[1].split()[0])


def query(expr):
    url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (PORTS["prometheus"], urllib.request.quote(expr))
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["data"]["result"]


def console(name):
    """A console template as Prometheus renders it (200, else urlopen raises with the template's error)."""
    url = "http://127.0.0.1:%d/consoles/%s.html" % (PORTS["prometheus"], name)
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        return r.read().decode()


def silence_module(args, rc=0):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    out = subprocess.run(["ansible", "localhost", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
                          "-m", "rollcall.ops.alert_silence", "-a", json.dumps(args)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == rc, out.stdout[-2000:] + out.stderr[-1000:]
    return json.loads(out.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def active_silences():
    url = "http://127.0.0.1:%d/api/v2/silences" % PORTS["alertmanager"]
    with urllib.request.urlopen(url, timeout=5) as r:
        return [x["id"] for x in json.load(r) if x["status"]["state"] == "active"]


def wait_for(what, predicate, timeout=90, explain=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail("%s did not happen within %d s%s" % (what, timeout, ("\n" + explain()) if explain else ""))


def alertmanager_log(docker_client):
    def explain():
        logs = docker_client.containers.get("%s-alertmanager" % PROJECT).logs(tail=40).decode(errors="replace")
        return "Alertmanager's log:\n" + logs
    return explain


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client):
    tmp = tmp_path_factory.mktemp("monitoring")
    textfile_dir = tmp / "reports"
    textfile_dir.mkdir()
    yield tmp, textfile_dir
    for name in CONTAINERS:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(name).remove(force=True, v=True)
    for name in ("%s-prometheus" % PROJECT, "%s-alertmanager" % PROJECT):
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.volumes.get(name).remove(force=True)


def test_check_mode_starts_nothing(stack, docker_client):
    tmp, textfile_dir = stack
    out = playbook(tmp, textfile_dir, check=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    names = {name.lstrip("/") for row in docker_client.api.containers(all=True) for name in row["Names"]}
    assert not names & set(CONTAINERS)


def test_ports_another_program_holds_are_refused_before_anything_starts(stack, docker_client):
    """Before: Prometheus (host network) restarted over and over on "address already in use" and the run failed
    after 90 s saying "The stack itself is up"; the node exporter likewise."""
    tmp, textfile_dir = stack
    with socket.socket() as prometheus, socket.socket() as node:
        for sock, port in ((prometheus, PORTS["prometheus"]), (node, PORTS["node"])):
            sock.bind(("127.0.0.1", port))
            sock.listen()
        started = time.monotonic()
        out = playbook(tmp, textfile_dir)
    assert out.returncode != 0 and time.monotonic() - started < 60, out.stdout[-3000:]
    said = " ".join(out.stdout.split())
    assert ("Nothing was changed on localhost: the node exporter's port 127.0.0.1:%d is taken by another program "
            "(Address already in use); Prometheus's port 127.0.0.1:%d is taken by another program"
            % (PORTS["node"], PORTS["prometheus"])) in said, said[-3000:]
    assert "move ours with rollcall_monitoring_ports: {node: PORT, prometheus: PORT}" in said
    assert recap_changed(out.stdout) == 0
    names = {name.lstrip("/") for row in docker_client.api.containers(all=True) for name in row["Names"]}
    assert not names & set(CONTAINERS)


def test_an_alert_reaches_email_and_webhook_and_resolves(stack, receivers, docker_client):
    tmp, textfile_dir = stack
    mailbox, hooks, cards = receivers
    prom = textfile_dir / "rollcall.prom"
    prom.write_text('rollcall_backup_newest_verify_failed{host="db1",check="backup"} 0\n')

    out = playbook(tmp, textfile_dir)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    up = {r["metric"]["job"]: r["value"][1] for r in query("up")}
    assert up == {"prometheus": "1", "alertmanager": "1", "node": "1"}, up
    # The dashboards (console templates): rendered with numbers from the running Prometheus.
    pages = {name: console(name) for name in ("index", "system-overview", "app-performance", "business-metrics")}
    shown = re.search(r'id="targets-up">\s*<a[^>]*>(\d+)</a>', pages["system-overview"])
    assert shown and int(shown.group(1)) == 3, pages["system-overview"][:3000]
    assert "<td>localhost</td>" in pages["system-overview"]  # the node exporter's host row
    assert not mailbox.messages and not hooks

    # health.yml finds the newest backup's verification failed: the textfile says so (atomically, as it writes it).
    staged = textfile_dir / ".rollcall.prom.tmp"
    staged.write_text('rollcall_backup_newest_verify_failed{host="db1",check="backup"} 1\n')
    staged.rename(prom)
    firing = wait_for("the webhook's firing notice", lambda: [
        h for h in hooks if h["status"] == "firing" and h["commonLabels"].get("alertname") == "BackupVerifyFailed"])
    assert firing[0]["commonLabels"]["severity"] == "P1"
    assert "did not pass verification" in firing[0]["alerts"][0]["annotations"]["summary"]
    mail = wait_for("the email", lambda: [m for m in mailbox.messages if "BackupVerifyFailed" in m["data"]],
                    explain=lambda: "mails: %r\n%s" % ([m["data"][:300] for m in mailbox.messages],
                                                      alertmanager_log(docker_client)()))
    assert mail[0]["to"] == ["admin@school.example"]
    # Teams: our relay turned the same notice into an Adaptive Card
    card = wait_for("the Teams card", lambda: [c for c in cards if "BackupVerifyFailed" in c.get("summary", "")])
    assert card[0]["summary"] == "[FIRING:1] P1 BackupVerifyFailed"
    assert card[0]["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"

    # A new verified backup: the alert resolves, and both receivers are told.
    staged.write_text('rollcall_backup_newest_verify_failed{host="db1",check="backup"} 0\n')
    staged.rename(prom)
    wait_for("the webhook's resolved notice", lambda: [h for h in hooks if h["status"] == "resolved"], timeout=150,
             explain=lambda: "webhooks: %r\nalerts: %r\n%s" % ([(h["status"], h["commonLabels"]) for h in hooks],
                                                              query("ALERTS"), alertmanager_log(docker_client)()))
    wait_for("the Teams resolved card", lambda: [c for c in cards if c["summary"].startswith("[RESOLVED]")])

    # A maintenance window: the silence is set once (a second time is no change), seen by Alertmanager, lifted.
    args = {"url": "http://127.0.0.1:%d" % PORTS["alertmanager"], "matchers": {"project": PROJECT, "service": "app"},
            "comment": "deploy of %s" % PROJECT, "minutes": 5}
    first, again_set = silence_module(args), silence_module(args)
    assert first["changed"] and not again_set["changed"] and again_set["ids"] == first["ids"]
    assert active_silences() == first["ids"]
    lifted = silence_module(dict(args, state="absent"))
    assert lifted["changed"] and active_silences() == []
    assert not silence_module(dict(args, state="absent"))["changed"]
    # No Alertmanager: said, not failed, with missing_ok; a clear error without it.
    gone = silence_module(dict(args, url="http://127.0.0.1:9", missing_ok=True))
    assert gone["reachable"] is False and not gone["changed"] and "does not answer" in gone["msg"]
    refused = silence_module(dict(args, url="http://127.0.0.1:9"), rc=2)
    assert "does not answer" in refused["msg"] and "monitoring.yml" in refused["msg"]
    # playbooks/silence.yml run by a person: it set and lifted the window without a word (and changed=0).
    done = playbook(tmp, textfile_dir, name="silence.yml")  # this inventory does not say it has monitoring
    assert done.returncode == 0 and "Nothing silenced or lifted: this inventory has no monitoring stack" in " ".join(
        done.stdout.split()), done.stdout[-3000:]
    done = playbook(tmp, textfile_dir, name="silence.yml", extra=["-e", "silence_minutes=7", "-e",
                                                                  "rollcall_monitoring=true"])
    said = " ".join(done.stdout.split())
    assert done.returncode == 0, done.stdout[-3000:]
    assert "The app alerts of %s are silenced for 7 min (until " % PROJECT in said, said[-2000:]
    assert "lift it sooner with playbooks/silence.yml -e silence_state=absent" in said
    assert len(active_silences()) == 1
    done = playbook(tmp, textfile_dir, name="silence.yml", extra=["-e", "silence_state=absent", "-e",
                                                                  "rollcall_monitoring=true"])
    said = " ".join(done.stdout.split())
    assert done.returncode == 0, said[-2000:]
    assert "Lifted the maintenance silence of the app alerts of %s (1 expired)" % PROJECT in said
    assert active_silences() == []
    done = playbook(tmp, textfile_dir, name="silence.yml", extra=["-e", "silence_state=absent", "-e",
                                                                  "rollcall_monitoring=true"])
    assert "No maintenance silence of the app alerts of %s was active: nothing to lift." % PROJECT in " ".join(
        done.stdout.split()), done.stdout[-2000:]

    # Nothing changes on a second run (the history stays on its volume).
    again = playbook(tmp, textfile_dir)
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap_changed(again.stdout) == 0, again.stdout[-3000:]
    assert "prometheus" in {v.name.split("-")[-1] for v in docker_client.volumes.list() if v.name.startswith(PROJECT)}
