"""Print {server: status} of HAProxy's backend sms as JSON (its admin socket's ``show stat``); run on rc-patch-lb."""
import csv
import json
import socket

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect("/run/haproxy/admin.sock")
sock.sendall(b"show stat\n")
data = b""
while True:
    chunk = sock.recv(65536)
    if not chunk:
        break
    data += chunk
rows = csv.DictReader(data.decode().lstrip("# ").splitlines())
print(json.dumps({r["svname"]: r["status"] for r in rows if r["pxname"] == "sms" and r["svname"] not in (
    "FRONTEND", "BACKEND")}))
