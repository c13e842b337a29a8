# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alertmanager silences for maintenance windows (issue 16 item 3): a deploy or a patching run silences the
alerts it will cause, and lifts the silence when it is done.

Pure functions (the body of a silence, which existing silences are ours) and a small client over Alertmanager's
v2 API (Ansible's ``open_url``: the module runs on the monitoring host, where Alertmanager listens on loopback). A
silence is ours when it is active and has the same matchers and comment: creating it again is no change.
"""

import datetime
import json
import urllib.error

from ansible.module_utils.urls import open_url


class AlertingError(Exception):
    pass


def matchers_of(labels):
    """``{name: value}`` -> Alertmanager's matchers (exact, equal), sorted by name."""
    if not labels:
        raise AlertingError("a silence needs at least one matcher (for example service: app)")
    return [{"name": str(k), "value": str(v), "isRegex": False, "isEqual": True} for k, v in sorted(labels.items())]


def _iso(when):
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def silence_body(labels, minutes, created_by, comment, now):
    """The silence to POST: from ``now`` for ``minutes`` minutes."""
    if int(minutes) <= 0:
        raise AlertingError("a silence lasts at least one minute, not %r" % (minutes,))
    return {"matchers": matchers_of(labels), "startsAt": _iso(now),
            "endsAt": _iso(now + datetime.timedelta(minutes=int(minutes))),
            "createdBy": created_by, "comment": comment}


def _same_matchers(silence, wanted):
    got = sorted(({"name": m["name"], "value": m["value"], "isRegex": bool(m.get("isRegex")),
                   "isEqual": bool(m.get("isEqual", True))} for m in silence.get("matchers") or []),
                 key=lambda m: m["name"])
    return got == wanted


def ours(silences, labels, comment):
    """IDs of the active (or pending) silences with these matchers and this comment."""
    wanted = matchers_of(labels)
    return [s["id"] for s in silences or []
            if (s.get("status") or {}).get("state") in ("active", "pending")
            and s.get("comment") == comment and _same_matchers(s, wanted)]


class Client(object):
    def __init__(self, url, timeout=5):
        if not url.startswith(("http://", "https://")):
            raise AlertingError("Alertmanager's URL must start with http:// or https://, not %r" % (url,))
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        try:
            response = open_url(self.url + path, data=data, method=method, timeout=self.timeout,
                                headers={"Content-Type": "application/json"})
            text = response.read().decode()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode()[:300]
            message = "Alertmanager at %s answered %s %s: %s" % (self.url, exc.code, exc.reason, detail)
            raise AlertingError(message) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectionError("Alertmanager at %s does not answer (%s)" % (self.url, reason)) from None
        return json.loads(text) if text.strip() else None

    def silences(self):
        return self._call("GET", "/api/v2/silences") or []

    def create(self, body):
        return self._call("POST", "/api/v2/silences", body)["silenceID"]

    def expire(self, silence_id):
        self._call("DELETE", "/api/v2/silence/%s" % silence_id)
