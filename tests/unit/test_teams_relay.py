"""images/monitoring/teams_relay.py: Alertmanager's webhook JSON -> a Teams Adaptive Card, and the relay's routing
(a real HTTP round trip on loopback, the Teams side recorded)."""

import importlib.util
import json
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "teams_relay", Path(__file__).resolve().parents[2] / "images" / "monitoring" / "teams_relay.py")
relay = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(relay)

FIRING = {
    "status": "firing", "externalURL": "http://127.0.0.1:9093",
    "commonLabels": {"alertname": "DatabaseDown", "severity": "P1", "service": "database"},
    "alerts": [{"status": "firing", "labels": {"alertname": "DatabaseDown", "instance": "db1:9187",
                                               "project": "sms", "severity": "P1"},
                "annotations": {"summary": "The database behind db1:9187 does not answer",
                                "action": "docker ps / docker logs on the db host"}}],
}


def texts(message):
    return [b.get("text") for b in message["attachments"][0]["content"]["body"] if b["type"] == "TextBlock"]


def test_a_firing_p1_is_a_red_card_with_its_summary_action_and_facts():
    message = relay.card(FIRING)
    assert message["type"] == "message"
    attachment = message["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    body = attachment["content"]["body"]
    assert body[0]["text"] == "[FIRING:1] P1 DatabaseDown" and body[0]["color"] == "Attention"
    assert "The database behind db1:9187 does not answer" in texts(message)
    assert "Do: docker ps / docker logs on the db host" in texts(message)
    facts = next(b for b in body if b["type"] == "FactSet")["facts"]
    assert {"title": "instance", "value": "db1:9187"} in facts and {"title": "project", "value": "sms"} in facts
    assert attachment["content"]["actions"][0]["url"] == "http://127.0.0.1:9093"


def test_a_resolved_notice_is_green_and_drops_the_action():
    resolved = json.loads(json.dumps(FIRING))
    resolved["status"] = "resolved"
    resolved["alerts"][0]["status"] = "resolved"
    message = relay.card(resolved)
    head = message["attachments"][0]["content"]["body"][0]
    assert head["text"] == "[RESOLVED] P1 DatabaseDown" and head["color"] == "Good"
    assert not [t for t in texts(message) if t.startswith("Do: ")]


def test_a_p2_is_amber_and_a_bare_payload_still_makes_a_card():
    p2 = dict(FIRING, commonLabels={"alertname": "AppErrorRateHigh", "severity": "P2"})
    assert relay.card(p2)["attachments"][0]["content"]["body"][0]["color"] == "Warning"
    bare = relay.card({"alerts": []})
    assert bare["summary"] == "[FIRING:0] alerts" and "actions" not in bare["attachments"][0]["content"]


@pytest.mark.parametrize("path, expected", [
    ("/teams/0", "https://a"), ("/teams/1", "https://b"), ("/teams/2", None), ("/teams/x", None), ("/alert", None),
])
def test_the_path_picks_the_configured_url(path, expected):
    assert relay.target(path, ["https://a", "https://b"]) == expected


@pytest.fixture()
def running_relay():
    delivered, failing = [], []

    def post(url, document):
        if failing:
            raise OSError("connection refused")
        delivered.append((url, document))

    server = ThreadingHTTPServer(("127.0.0.1", 0), relay.make_handler(["https://teams.example/hook?sig=x"], post))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1], delivered, failing
    server.shutdown()


def send(url, body):
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_relay_delivers_answers_502_when_teams_fails_and_400_on_garbage(running_relay):
    base, delivered, failing = running_relay
    assert send(base + "/teams/0", json.dumps(FIRING).encode()) == 200
    assert delivered[0][0] == "https://teams.example/hook?sig=x"
    assert delivered[0][1]["summary"] == "[FIRING:1] P1 DatabaseDown"
    assert send(base + "/teams/5", b"{}") == 404
    assert send(base + "/teams/0", b"not json") == 400
    failing.append(True)
    assert send(base + "/teams/0", json.dumps(FIRING).encode()) == 502  # Alertmanager retries it
