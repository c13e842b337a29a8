# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/images.py (issue 13 item 5): what a release of a refreshed image is."""

from ansible_collections.rollcall.ops.plugins.module_utils import images


def release_app_version(version):
    """The version the application reports in a release: a refreshed image's ``1.0.0-p20261202`` is ``1.0.0``."""
    return images.base_version(version)


class FilterModule:
    def filters(self):
        return {"release_app_version": release_app_version}
