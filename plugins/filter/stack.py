# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filter over plugins/module_utils/stack.py: a deploy that would start an empty database for a stack that has
served (its data volume is gone) is refused, in the words of ``stack.lost_data``."""

from ansible.errors import AnsibleFilterError

from ansible_collections.rollcall.ops.plugins.module_utils.stack import lost_data


def stack_lost_data(engine, volume, volume_exists, served, host, rebuild=False, pitr=False, database="sms"):
    """The refusal, or "" when the deploy may go on."""
    try:
        return lost_data(engine, volume, bool(volume_exists), list(served or []), host, bool(rebuild), bool(pitr),
                         database) or ""
    except (AttributeError, TypeError) as exc:
        raise AnsibleFilterError("stack_lost_data: %s" % exc) from None


class FilterModule:
    def filters(self):
        return {"stack_lost_data": stack_lost_data}
