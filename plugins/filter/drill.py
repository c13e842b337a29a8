# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/drill.py (the disaster-recovery drill)."""

from ansible_collections.rollcall.ops.plugins.module_utils import drill


def drill_problems(live_project, drill_project, live_port, drill_port, live_db=None, drill_db=None):
    """Why this drill must not run (it would touch the live stack); empty: go (drill.plan)."""
    return drill.plan(live_project, drill_project, live_port, drill_port, live_db, drill_db)


def drill_scratch_settings(uploads_host="", backup_uploads=True, offsite_host="", scratch="", pitr=False,
                           offsite_mount="/srv/rollcall/offsite-pitr"):
    """The settings the scratch stack runs with so it cannot touch the live stack's data, and where it recovers
    from (drill.scratch_settings)."""
    return drill.scratch_settings(uploads_host, backup_uploads, offsite_host, scratch, pitr, offsite_mount)


def drill_overrides(intended, effective, live_project):
    """Extra vars that would override the scratch stack's settings (drill.overrides); empty: go."""
    return drill.overrides(intended, effective, live_project)


class FilterModule:
    def filters(self):
        return {"drill_problems": drill_problems, "drill_scratch_settings": drill_scratch_settings,
                "drill_overrides": drill_overrides}
