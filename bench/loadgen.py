"""A bounded loopback load: a fixed number of GET requests at a fixed rate, counted by outcome.

Used by bench/release.py (failed requests during deploy and rollback) and tests/integration/test_release_sequence.py.
Refuses anything but a loopback URL; stops by itself after ``total`` requests or ``max_seconds``.
"""

import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor


class Load:
    def __init__(self, url, rate=50, total=1000, max_seconds=120, workers=16, timeout=10):
        host = urllib.parse.urlparse(url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("load stays on loopback; %s is not" % host)
        self.url, self.rate, self.total, self.max_seconds = url, rate, total, max_seconds
        self.workers, self.timeout = workers, timeout
        self.ok = 0
        self.failed = []
        self.failed_at = []  # monotonic time of each failure (the span of a gap)
        self.versions = {}
        self.last_seen = {}  # version -> monotonic time of the last response it gave
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def _one(self):
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as response:  # noqa: S310 - loopback only
                response.read()
                version = response.headers.get("X-App-Version", "")
                with self._lock:
                    self.ok += 1
                    self.versions[version] = self.versions.get(version, 0) + 1
                    self.last_seen[version] = time.monotonic()
        except (urllib.error.URLError, OSError) as exc:
            with self._lock:
                self.failed.append(str(getattr(exc, "code", "")) or str(exc)[:120])
                self.failed_at.append(time.monotonic())

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        pool = ThreadPoolExecutor(self.workers)
        try:
            start = time.monotonic()
            for i in range(self.total):
                if self._stop.is_set() or time.monotonic() > deadline:
                    break
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(self._one)
        finally:
            # Requests still queued when stopped were never sent: they are dropped, not counted (on an overloaded
            # machine the queue can hold minutes of requests); those in flight finish and are counted.
            pool.shutdown(wait=True, cancel_futures=self._stop.is_set())

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self

    def wait(self):
        self._thread.join()
        return self

    @property
    def gap_s(self):
        """Seconds from the first failed request to the last (0 when none or one failed)."""
        return round(max(self.failed_at) - min(self.failed_at), 2) if self.failed_at else 0.0

    @property
    def sent(self):
        return self.ok + len(self.failed)
