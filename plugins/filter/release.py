# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/standby.py: what identifies a release (its config hash) and the network
alias it runs under. roles/sms_app and the app_standby module compute both with the same functions, so a rollback
finds the warm standby a deploy left."""

from ansible_collections.rollcall.ops.plugins.module_utils import standby


def release_config_hash(env, image_id):
    """sha256 of the release's settings ``env`` (sorted JSON) and its image ID."""
    return standby.config_hash(dict(env), image_id)


def release_alias(digest, project):
    """The network alias of the release whose config hash is ``digest``: ``<project>-<12 hex digits>``."""
    return standby.alias_of(project, digest)


class FilterModule:
    def filters(self):
        return {"release_config_hash": release_config_hash, "release_alias": release_alias}
