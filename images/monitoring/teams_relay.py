#!/usr/bin/python3
"""Alertmanager -> Microsoft Teams relay (issue 16 item 3; docs/monitoring.md "Teams").

Debian 12's Alertmanager (0.25) has no ``msteams_configs`` (they came in 0.26), and a Teams channel's incoming webhook
(a Teams "Workflows" webhook) accepts a message with an Adaptive Card, not Alertmanager's webhook JSON. This relay
listens on loopback next to Alertmanager (host network), takes Alertmanager's webhook at ``POST /teams/<n>``, turns it
into a card and posts it to the n-th URL of ``/etc/rollcall-monitoring/teams.json`` (``{"urls": [...]}``, written by
roles/monitoring; the URLs carry the webhook's secret, so they are in a file readable by the prometheus group only, not
on a command line). A failed delivery answers 502, so Alertmanager retries it. Standard library only.

``card(payload)`` is the whole decision; tests/unit/test_teams_relay.py tests it.
"""

import json
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONFIG = "/etc/rollcall-monitoring/teams.json"
# Attention colours of an Adaptive Card's text: a P1 is red, a P2 amber, the rest and resolved ones plain/green.
COLOURS = {"P1": "Attention", "P2": "Warning"}


def card(payload):
    """The Teams message (an Adaptive Card attachment) for one Alertmanager webhook payload."""
    status = payload.get("status", "firing")
    labels = payload.get("commonLabels") or {}
    alerts = payload.get("alerts") or []
    firing = [a for a in alerts if a.get("status", status) == "firing"]
    severity = labels.get("severity", "")
    head = "[%s%s]" % (status.upper(), (":%d" % len(firing)) if status == "firing" else "")
    title = " ".join(part for part in (head, severity, labels.get("alertname", "alerts")) if part)
    body = [{"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": True, "text": title,
             "color": "Good" if status == "resolved" else COLOURS.get(severity, "Default")}]
    for alert in alerts:
        notes = alert.get("annotations") or {}
        alert_labels = alert.get("labels") or {}
        body.append({"type": "TextBlock", "wrap": True, "separator": True,
                     "text": notes.get("summary") or alert_labels.get("alertname", "alert")})
        if notes.get("action") and alert.get("status", status) == "firing":
            body.append({"type": "TextBlock", "wrap": True, "isSubtle": True, "text": "Do: " + notes["action"]})
        facts = [{"title": k, "value": str(alert_labels[k])}
                 for k in ("instance", "host", "project", "service") if alert_labels.get(k)]
        if facts:
            body.append({"type": "FactSet", "facts": facts})
    actions = []
    if payload.get("externalURL"):
        actions.append({"type": "Action.OpenUrl", "title": "Open Alertmanager", "url": payload["externalURL"]})
    content = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
               "version": "1.4", "body": body, "msteams": {"width": "Full"}}
    if actions:
        content["actions"] = actions
    return {"type": "message", "summary": title,
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                             "content": content}]}


def target(path, urls):
    """The URL for a request path ``/teams/<n>``, or None."""
    parts = path.strip("/").split("/")
    if len(parts) != 2 or parts[0] != "teams" or not parts[1].isdigit():
        return None
    index = int(parts[1])
    return urls[index] if index < len(urls) else None


def make_handler(urls, post):
    class Relay(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            url = target(self.path, urls)
            if url is None:
                self.send_error(404, "no Teams URL for %s" % self.path)
                return
            try:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                post(url, card(payload))
            except ValueError as exc:
                self.send_error(400, "not Alertmanager's JSON: %s" % exc)
                return
            except Exception as exc:  # noqa: BLE001 - any failed delivery: Alertmanager retries
                self.log_message("delivery to Teams target %s failed: %s", self.path, exc)
                self.send_error(502, "Teams did not take the message")
                return
            self.send_response(200)
            self.end_headers()

        def do_GET(self):  # noqa: N802 - a liveness answer for docker ps / curl
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"rollcall teams relay: %d target(s)\n" % len(urls))

    return Relay


def post_json(url, document, timeout=10):
    if not url.lower().startswith(("https://", "http://")):
        raise ValueError("a Teams URL must be http(s)://, not %r" % url.split(":")[0])
    request = urllib.request.Request(url, data=json.dumps(document).encode(), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http(s) only, checked above
        if answer.status >= 300:
            raise RuntimeError("HTTP %d" % answer.status)


def main(argv):
    listen = argv[1] if len(argv) > 1 else "127.0.0.1:9095"
    host, _, port = listen.rpartition(":")
    with open(argv[2] if len(argv) > 2 else CONFIG, encoding="utf-8") as handle:
        urls = json.load(handle)["urls"]
    server = ThreadingHTTPServer((host, int(port)), make_handler(urls, post_json))
    print("rollcall teams relay on %s for %d Teams URL(s)" % (listen, len(urls)), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
