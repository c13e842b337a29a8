# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/backup.py (which backup a restore takes)."""

from ansible_collections.rollcall.ops.plugins.module_utils import backup


def default_restore_backup(backups):
    """From rollcall.ops.backup_info's ``backups`` (newest first): the one a restore takes when none is named, the
    newest that is not a restore's safety backup (backup.default_restore); None when there is none."""
    return backup.default_restore(backups or [])


class FilterModule:
    def filters(self):
        return {"default_restore_backup": default_restore_backup}
