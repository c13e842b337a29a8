"""Per-client rate limit, JSON access log and Prometheus metrics, all in-process (one gunicorn worker)."""

import json
import math
import sys
import threading
import time
from collections import defaultdict, deque

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RateLimiter:
    """Sliding one-minute window per client; ``check`` returns seconds to wait (0 when allowed)."""

    def __init__(self, per_minute, clock=time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self.hits = defaultdict(deque)
        self.lock = threading.Lock()

    def check(self, client):
        if self.per_minute <= 0:
            return 0
        now = self.clock()
        with self.lock:
            window = self.hits[client]
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= self.per_minute:
                return max(1, math.ceil(window[0] + 60 - now))
            window.append(now)
            if len(self.hits) > 10000:  # forget idle clients so memory stays bounded
                for key in [k for k, v in self.hits.items() if not v]:
                    del self.hits[key]
            return 0


class Metrics:
    def __init__(self, version):
        self.version = version
        self.lock = threading.Lock()
        self.requests = defaultdict(int)  # (method, path, status) -> count
        self.buckets = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS) + 1))  # path -> cumulative counts
        self.sums = defaultdict(float)
        self.counts = defaultdict(int)
        self.db_up = 0

    def observe(self, method, path, status, seconds):
        with self.lock:
            self.requests[(method, path, status)] += 1
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self.buckets[path][i] += 1
            self.buckets[path][-1] += 1
            self.sums[path] += seconds
            self.counts[path] += 1

    def render(self):
        lines = ["# HELP sms_app_info Build information.", "# TYPE sms_app_info gauge",
                 'sms_app_info{version="%s"} 1' % _escape(self.version),
                 "# HELP sms_app_database_up Whether the last database check succeeded.",
                 "# TYPE sms_app_database_up gauge", "sms_app_database_up %d" % self.db_up,
                 "# HELP sms_app_http_requests_total HTTP requests by method, route and status.",
                 "# TYPE sms_app_http_requests_total counter"]
        with self.lock:
            for (method, path, status), count in sorted(self.requests.items()):
                lines.append('sms_app_http_requests_total{method="%s",path="%s",status="%s"} %d'
                             % (method, _escape(path), status, count))
            lines += ["# HELP sms_app_http_request_duration_seconds Request latency by route.",
                      "# TYPE sms_app_http_request_duration_seconds histogram"]
            for path in sorted(self.buckets):
                label = _escape(path)
                for bound, count in zip(LATENCY_BUCKETS, self.buckets[path][:-1], strict=True):
                    lines.append('sms_app_http_request_duration_seconds_bucket{path="%s",le="%s"} %d'
                                 % (label, bound, count))
                lines.append('sms_app_http_request_duration_seconds_bucket{path="%s",le="+Inf"} %d'
                             % (label, self.buckets[path][-1]))
                lines.append('sms_app_http_request_duration_seconds_sum{path="%s"} %.6f' % (label, self.sums[path]))
                lines.append('sms_app_http_request_duration_seconds_count{path="%s"} %d' % (label, self.counts[path]))
        return "\n".join(lines) + "\n"


def _escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def access_log(record, stream=None):
    """One JSON line per request."""
    stream = stream or sys.stdout
    stream.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")
    stream.flush()
