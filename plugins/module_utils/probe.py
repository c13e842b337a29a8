# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app's latency while something else runs (issue 15: maintenance under load): a background thread that GETs
one URL at a fixed interval and times each answer. What the figures mean is decided in
``maintenance.latency_summary()`` / ``maintenance.probe_check()``."""

import threading
import time
import urllib.parse

from ansible.module_utils.urls import open_url


class Probe:
    """``with Probe(url) as probe: ...`` -> ``probe.samples``: [(seconds or None when it failed, error text)]."""

    def __init__(self, url, interval_s=0.1, timeout_s=5.0, clock=time.monotonic):
        scheme = urllib.parse.urlparse(url or "").scheme
        if scheme not in ("http", "https"):
            raise ValueError("probe_url must be an http(s) URL, not %r" % (url,))
        self.url, self.interval_s, self.timeout_s, self.clock = url, float(interval_s), float(timeout_s), clock
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self):
        started = self.clock()
        try:
            # it only times an answer and sends nothing secret: the demo proxy's self-signed certificate is fine
            with open_url(self.url, timeout=self.timeout_s, validate_certs=False) as response:
                response.read()
            return self.clock() - started, ""
        except Exception as exc:  # noqa: BLE001 - HTTP errors, refused, timeouts: each one a failed request
            return None, str(getattr(exc, "code", "") or exc)[:120]

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
