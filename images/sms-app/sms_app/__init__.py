"""Reference student-management system (SMS): the service Rollcall deploys, backs up and checks.

One source tree builds every release; the release decides which schema revision it expects.
"""

import os

# Linear migration history, oldest first, and the head each release expects.
REVISIONS = ["0001", "0002"]
RELEASE_HEADS = {"1.0.0": "0001", "1.1.0": "0002", "1.2.0-broken": "0002"}

APP_VERSION = os.environ.get("APP_VERSION", "1.0.0")
BROKEN = os.environ.get("SMS_BROKEN", "0") == "1"


def expected_head(version=None):
    """The schema revision a release expects (unknown versions expect the newest)."""
    return RELEASE_HEADS.get(version or APP_VERSION, REVISIONS[-1])


def revision_at_least(revision):
    """True when this release's schema includes ``revision``."""
    return REVISIONS.index(expected_head()) >= REVISIONS.index(revision)
