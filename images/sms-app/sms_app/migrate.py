"""Schema migrations with Alembic, driven on a connection we open (no alembic.ini, no URL in config files)."""

import logging
import os

from alembic import command
from alembic.config import Config

from . import REVISIONS
from .config import ConfigError
from .db import current_revision

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")


def _config(connection):
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["connection"] = connection
    return config


def blockers(before, target):
    """Why the schema cannot go from ``before`` down to ``target`` (empty when it can, or when it goes up).

    A migration that cannot be undone says so with a module attribute ``irreversible = True``.
    """
    if target not in REVISIONS:
        return ["unknown schema revision %s; known: %s" % (target, ", ".join(REVISIONS))]
    if before is None or before not in REVISIONS or REVISIONS.index(target) >= REVISIONS.index(before):
        return []
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    scripts = ScriptDirectory.from_config(config)
    found = []
    for revision in REVISIONS[REVISIONS.index(target) + 1:REVISIONS.index(before) + 1]:
        # SMS_IRREVERSIBLE (comma-separated revisions) marks migrations irreversible: a test-only fault knob.
        forced = os.environ.get("SMS_IRREVERSIBLE", "").split(",")
        if getattr(scripts.get_revision(revision).module, "irreversible", False) or revision in forced:
            found.append("migration %s cannot be undone" % revision)
    return found


def plan(engine, target):
    """(revision now, target, blockers): what migrate(target) would do, changing nothing."""
    with engine.connect() as connection:
        before = current_revision(connection)
    return before, target, blockers(before, target)


def migrate(engine, target):
    """Upgrade or downgrade to ``target``; returns (revision before, revision after)."""
    if target not in REVISIONS:
        raise ConfigError("unknown schema revision %s; known: %s" % (target, ", ".join(REVISIONS)))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with engine.begin() as connection:
        before = current_revision(connection)
        if before is not None and before not in REVISIONS:
            raise ConfigError("the database schema is at revision %s, which this release does not know; migrate it "
                              "with the release that made it" % before)
        if before == target:
            return before, before
        problems = blockers(before, target)
        if problems:
            raise ConfigError("cannot migrate from %s to %s: %s" % (before, target, "; ".join(problems)))
        if before is None or REVISIONS.index(target) > REVISIONS.index(before):
            command.upgrade(_config(connection), target)
        else:
            command.downgrade(_config(connection), target)
        return before, current_revision(connection)
