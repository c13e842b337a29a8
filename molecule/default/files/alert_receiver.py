#!/usr/bin/python3
"""A real SMTP server and a webhook receiver for the scenario's alerts (molecule/default verify.yml): every mail
and every POST becomes one JSON line in OUT ({"via": "email"|"webhook"|"teams", ...}).
Usage: alert_receiver.py SMTP_PORT HTTP_PORT OUT"""

import asyncore
import json
import smtpd
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SMTP_PORT, HTTP_PORT, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
LOCK = threading.Lock()


def record(entry):
    with LOCK, open(OUT, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


class Mailbox(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):  # noqa: ARG002 - smtpd's signature
        record({"via": "email", "to": rcpttos, "data": data if isinstance(data, str) else data.decode()})


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        record({"via": "teams" if self.path.startswith("/teams") else "webhook", "body": body})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


Mailbox(("127.0.0.1", SMTP_PORT), None, decode_data=True)
threading.Thread(target=ThreadingHTTPServer(("127.0.0.1", HTTP_PORT), Hook).serve_forever, daemon=True).start()
asyncore.loop(timeout=0.5)
