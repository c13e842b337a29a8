"""Alertmanager silences for maintenance windows: plugins/module_utils/alerting.py (pure parts)."""

import datetime

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import alerting

NOW = datetime.datetime(2026, 12, 2, 8, 0, tzinfo=datetime.UTC)


def test_a_silence_matches_exactly_and_lasts_its_minutes():
    body = alerting.silence_body({"service": "app", "project": "sms"}, 30, "root@vm", "deploy of sms", NOW)
    assert body["matchers"] == [{"name": "project", "value": "sms", "isRegex": False, "isEqual": True},
                                {"name": "service", "value": "app", "isRegex": False, "isEqual": True}]
    assert body["startsAt"] == "2026-12-02T08:00:00.000Z" and body["endsAt"] == "2026-12-02T08:30:00.000Z"
    assert body["createdBy"] == "root@vm" and body["comment"] == "deploy of sms"


@pytest.mark.parametrize("labels, minutes", [({}, 30), ({"service": "app"}, 0)])
def test_a_silence_without_matchers_or_time_is_refused(labels, minutes):
    with pytest.raises(alerting.AlertingError):
        alerting.silence_body(labels, minutes, "x", "y", NOW)


def silence(sid, state="active", comment="deploy of sms", **labels):
    labels = labels or {"project": "sms", "service": "app"}
    return {"id": sid, "status": {"state": state}, "comment": comment,
            "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in labels.items()]}


def test_ours_are_the_active_ones_with_the_same_matchers_and_comment():
    found = alerting.ours([silence("a"), silence("b", state="expired"), silence("c", comment="patching of sms"),
                           silence("d", project="sms"), silence("e", state="pending"),
                           silence("f", project="other", service="app")],
                          {"service": "app", "project": "sms"}, "deploy of sms")
    assert found == ["a", "e"]
    assert alerting.ours(None, {"service": "app"}, "x") == []


def test_only_http_urls_are_called():
    with pytest.raises(alerting.AlertingError, match="http"):
        alerting.Client("file:///etc/passwd")
