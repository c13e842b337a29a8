# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app's latency while something else runs (issue 15: maintenance under load): a background thread that GETs
one URL at a fixed interval and times each answer. What the figures mean is decided in
``maintenance.latency_summary()`` / ``maintenance.probe_check()``."""

import http.client
import ssl
import threading
import time
import urllib.parse


class Probe:
    """``with Probe(url) as probe: ...`` -> ``probe.samples``: [(seconds or None when it failed, error text)]."""

    def __init__(self, url, interval_s=0.1, timeout_s=5.0, clock=time.monotonic):
        parts = urllib.parse.urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("probe_url must be an http(s) URL, not %r" % (url,))
        self.url, self.interval_s, self.timeout_s, self.clock = url, float(interval_s), float(timeout_s), clock
        self._parts = parts
        self._path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        self._context = None
        if parts.scheme == "https":
            # it only times an answer and sends nothing secret: the demo proxy's self-signed certificate is fine
            self._context = ssl.create_default_context()
            self._context.check_hostname = False
            self._context.verify_mode = ssl.CERT_NONE
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self):
        """One GET on a new connection (a user's request; http.client: no per-request set-up cost to measure)."""
        started = self.clock()
        if self._context is not None:
            conn = http.client.HTTPSConnection(self._parts.hostname, self._parts.port, timeout=self.timeout_s,
                                               context=self._context)
        else:
            conn = http.client.HTTPConnection(self._parts.hostname, self._parts.port, timeout=self.timeout_s)
        try:
            conn.request("GET", self._path)
            response = conn.getresponse()
            response.read()
            if response.status >= 400:
                return None, str(response.status)
            return self.clock() - started, ""
        except (OSError, http.client.HTTPException) as exc:
            return None, str(exc)[:120] or type(exc).__name__
        finally:
            conn.close()

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(self._one())
            self._stop.wait(self.interval_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(self.timeout_s + 1)
        return False
