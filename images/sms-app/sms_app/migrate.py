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
        if before is None or REVISIONS.index(target) > REVISIONS.index(before):
            command.upgrade(_config(connection), target)
        else:
            command.downgrade(_config(connection), target)
        return before, current_revision(connection)
