"""A bounded load through the load balancer, for molecule/patching's converge: GET URL every INTERVAL seconds
until STOP_FILE exists or MAX_SECONDS passed, then write {requests, failed, errors, served_by} as JSON to OUT.
Usage: load.py URL OUT STOP_FILE [MAX_SECONDS] [INTERVAL]. Loopback only; it stops by itself."""
import json
import os
import sys
import time
import urllib.request


def main(url, out, stop_file, max_seconds=300.0, interval=0.05):
    if not url.startswith("http://127.0.0.1:"):
        raise SystemExit("load.py only loads the loopback: %s" % url)
    started = time.monotonic()
    result = {"url": url, "requests": 0, "failed": 0, "errors": [], "served_by": {}}
    while not os.path.exists(stop_file) and time.monotonic() - started < float(max_seconds):
        result["requests"] += 1
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - http://127.0.0.1 from argv
                response.read()
                server = response.headers.get("X-Served-By", "?")
                result["served_by"][server] = result["served_by"].get(server, 0) + 1
        except Exception as exc:  # noqa: BLE001 - every failure counts, whatever it is
            result["failed"] += 1
            if len(result["errors"]) < 20:
                result["errors"].append("%.1f s: %s" % (time.monotonic() - started, exc))
        time.sleep(float(interval))
    result["seconds"] = round(time.monotonic() - started, 1)
    temp = out + ".tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    os.replace(temp, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
