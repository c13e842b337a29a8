# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health checks and their thresholds.

The one place that decides whether something Rollcall operates is healthy. Pure Python (stdlib only) so it
runs on any managed host and is unit-testable without Ansible.
"""

import json
import ssl
import time
from urllib.error import HTTPError, URLError
from urllib.request import HTTPHandler, HTTPSHandler, Request, build_opener

OK = "ok"
WARNING = "warning"
CRITICAL = "critical"

# How much of a response body a failure message quotes.
_BODY_EXCERPT = 300


class HttpProbe(object):
    """The outcome of one HTTP request to a health endpoint."""

    def __init__(self, url, http_status=None, body=None, text="", latency_ms=None, error=None):
        self.url = url
        self.expect_version = None  # set by wait_until_healthy: healthy only when the document names this version
        self.http_status = http_status
        self.body = body
        self.text = text
        self.latency_ms = latency_ms
        self.error = error

    @property
    def app_status(self):
        """The status the application reports about itself (``healthy`` / ``unhealthy``), if any."""
        if isinstance(self.body, dict):
            return self.body.get("status")
        return None

    @property
    def healthy(self):
        """True when the endpoint answered 2xx and, if it reports a status, reports itself healthy."""
        if self.error is not None or self.http_status is None or not 200 <= self.http_status < 300:
            return False
        if self.other_version:
            return False
        return self.app_status in (None, "healthy", "ok", "alive", "ready")

    @property
    def other_version(self):
        """True when an expected version is set and the document does not name it."""
        return self.expect_version is not None and self.version != self.expect_version

    @property
    def version(self):
        """The version the application reports (the document's ``version``), if any."""
        if isinstance(self.body, dict) and self.body.get("version") is not None:
            return str(self.body["version"])
        return None

    def reason(self):
        """One line saying why this probe is not healthy (or that it is)."""
        if self.error is not None:
            return "no answer from %s: %s" % (self.url, self.error)
        if self.healthy:
            return "%s answered %s (%s) in %.0f ms" % (self.url, self.http_status, self.app_status or "ok",
                                                       self.latency_ms or 0)
        if self.other_version and self.http_status is not None and 200 <= self.http_status < 300:
            return "%s answered %s (%s) from version %s, not %s" % (
                self.url, self.http_status, self.app_status or "ok", self.version or "(none given)",
                self.expect_version)
        failing = failing_checks(self.body)
        detail = ("; failing checks: %s" % ", ".join(failing)) if failing else ""
        excerpt = "" if failing else "; body: %s" % self.text[:_BODY_EXCERPT]
        return "%s answered HTTP %s, status %s%s%s" % (self.url, self.http_status, self.app_status, detail, excerpt)

    def as_dict(self):
        return {
            "url": self.url,
            "http_status": self.http_status,
            "app_status": self.app_status,
            "latency_ms": self.latency_ms,
            "healthy": self.healthy,
            "error": self.error,
        }


def failing_checks(body):
    """Names (with detail) of the sub-checks a health document reports as not ok."""
    if not isinstance(body, dict) or not isinstance(body.get("checks"), dict):
        return []
    failing = []
    for name, check in sorted(body["checks"].items()):
        if isinstance(check, dict) and check.get("status") not in ("ok", "healthy", None):
            detail = check.get("detail") or check.get("status")
            failing.append("%s (%s)" % (name, detail))
    return failing


def probe_http(url, timeout=5.0, validate_certs=True, opener=None):
    """Make one GET request to ``url`` and return an :class:`HttpProbe`; never raises for HTTP errors."""
    if not url.lower().startswith(("http://", "https://")):
        return HttpProbe(url, error="only http:// and https:// URLs are probed")
    if opener is None:
        handlers = [HTTPHandler()]
        if not validate_certs:  # the user opted out of certificate checks (validate_certs=false)
            handlers.append(HTTPSHandler(context=ssl._create_unverified_context()))  # noqa: S323
        opener = build_opener(*handlers)
    request = Request(url, headers={"Accept": "application/json", "User-Agent": "rollcall-health-check"})  # noqa: S310
    started = time.monotonic()
    try:
        response = opener.open(request, timeout=timeout)
        status, raw = response.getcode(), response.read()
    except HTTPError as exc:  # a 4xx/5xx still carries a health document
        status, raw = exc.code, exc.read()
    except (URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return HttpProbe(url, error=str(reason), latency_ms=_elapsed_ms(started))
    latency = _elapsed_ms(started)
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    return HttpProbe(url, http_status=status, body=body, text=text, latency_ms=latency)


def wait_until_healthy(url, wait_timeout=60.0, interval=1.0, request_timeout=5.0, validate_certs=True,
                       probe=probe_http, clock=time.monotonic, sleep=time.sleep, expect_version=None):
    """Probe ``url`` until it is healthy (and, with ``expect_version``, reports that version) or ``wait_timeout``
    seconds have passed.

    Returns ``(last_probe, attempts)``. ``wait_timeout`` of 0 means exactly one probe.
    """
    deadline = clock() + max(wait_timeout, 0)
    attempts = 0
    while True:
        attempts += 1
        last = probe(url, timeout=request_timeout, validate_certs=validate_certs)
        last.expect_version = expect_version
        if last.healthy or clock() + interval > deadline:
            return last, attempts
        sleep(interval)


def _elapsed_ms(started):
    return round((time.monotonic() - started) * 1000.0, 1)
