# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/standby.py: what identifies a release (its config hash) and the network
alias it runs under. roles/sms_app and the app_standby module compute both with the same functions, so a rollback
finds the warm standby a deploy left. And over plugins/module_utils/release.py: the ad hoc command that reaches a
host, for the deploy lock's "break it with" message."""

import os

from ansible_collections.rollcall.ops.plugins.module_utils import release, standby


def release_config_hash(env, image_id):
    """sha256 of the release's settings ``env`` (sorted JSON) and its image ID."""
    return standby.config_hash(dict(env), image_id)


def release_alias(digest, project):
    """The network alias of the release whose config hash is ``digest``: ``<project>-<12 hex digits>``."""
    return standby.alias_of(project, digest)


def adhoc_command(host, inventories, python):
    """``ansible HOST -i INVENTORY...`` as run from the controller's working directory (release.adhoc_command),
    with ANSIBLE_COLLECTIONS_PATH when the configuration there does not find rollcall.ops (a playbook run from
    another directory finds it beside the playbooks; ad hoc ansible does not look there)."""
    from ansible import constants

    found = any(os.path.isdir(os.path.join(path, "ansible_collections", "rollcall", "ops"))
                for path in constants.COLLECTIONS_PATHS or [])
    # this file is <root>/ansible_collections/rollcall/ops/plugins/filter/release.py
    root = os.path.abspath(__file__).rsplit(os.sep + "ansible_collections" + os.sep, 1)[0]
    return release.adhoc_command(host, inventories, python, os.getcwd(), None if found else root)


class FilterModule:
    def filters(self):
        return {"release_config_hash": release_config_hash, "release_alias": release_alias,
                "adhoc_command": adhoc_command}
