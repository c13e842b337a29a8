# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/redact.py, for what playbooks write into reports and bundles."""

from ansible_collections.rollcall.ops.plugins.module_utils.redact import redact, redact_data


def _secrets(secrets):
    return [s for s in (secrets or []) if isinstance(s, str) and s]


class FilterModule(object):
    """rollcall.ops.redact(secrets) for text; rollcall.ops.redact_data(secrets) for nested data."""

    def filters(self):
        return {
            "redact": lambda text, secrets=None: redact(text, _secrets(secrets)),
            "redact_data": lambda data, secrets=None: redact_data(data, _secrets(secrets)),
        }
