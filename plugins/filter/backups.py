# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/backup.py (which backup a restore takes, the key options)."""

from ansible_collections.rollcall.ops.plugins.module_utils import backup


def default_restore_backup(backups):
    """From rollcall.ops.backup_info's ``backups`` (newest first): the one a restore takes when none is named, the
    newest that is not a restore's safety backup (backup.default_restore); None when there is none."""
    return backup.default_restore(backups or [])


def backup_key_args(key=None, key_file=None, old_keys=None, old_key_files=None):
    """The key options of the backup modules (encryption_key or encryption_key_file, and the key ring) from the
    inventory's rollcall_backup_key (None when undefined), rollcall_backup_key_file, rollcall_backup_old_keys and
    rollcall_backup_old_key_files; only what is given. The backup role and the health check's key check share it."""
    args = {}
    if key is not None:
        args["encryption_key"] = key
    elif key_file is not None:
        args["encryption_key_file"] = key_file
    if old_keys:
        args["encryption_keys"] = list(old_keys)
    if old_key_files:
        args["encryption_key_files"] = list(old_key_files)
    return args


class FilterModule:
    def filters(self):
        return {"default_restore_backup": default_restore_backup, "backup_key_args": backup_key_args}
