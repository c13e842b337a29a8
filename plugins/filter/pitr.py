# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/pitr.py (point-in-time recovery's decisions that a role takes)."""

from ansible_collections.rollcall.ops.plugins.module_utils import pitr


def pitr_lost_server(engine, volume, volume_exists, repo, archive_found, database="sms"):
    """The refusal of a deploy that would start a new server on a lost server's point-in-time archive, or ''
    (pitr.lost_server_repo)."""
    return pitr.lost_server_repo(engine, volume, bool(volume_exists), repo, bool(archive_found), database) or ""


class FilterModule:
    def filters(self):
        return {"pitr_lost_server": pitr_lost_server}
