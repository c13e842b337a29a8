# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filter over plugins/module_utils/stack.py: a deploy that would start an empty database for a stack that has
served (its data volume is gone) is refused, in the words of ``stack.lost_data``; an uploads volume made anew for
such a stack is said at the end (``stack.lost_uploads``)."""

from ansible.errors import AnsibleFilterError

from ansible_collections.rollcall.ops.plugins.module_utils.stack import lost_data, lost_uploads


def stack_lost_data(engine, volume, volume_exists, served, host, rebuild=False, pitr=False, database="sms"):
    """The refusal, or "" when the deploy may go on."""
    try:
        return lost_data(engine, volume, bool(volume_exists), list(served or []), host, bool(rebuild), bool(pitr),
                         database) or ""
    except (AttributeError, TypeError) as exc:
        raise AnsibleFilterError("stack_lost_data: %s" % exc) from None


def stack_lost_uploads(volume, volume_exists, served, host, database="sms"):
    """What the deploy says at its end about an uploads volume made anew for a stack that has served, or ""."""
    try:
        return lost_uploads(volume, bool(volume_exists), list(served or []), host, database) or ""
    except (AttributeError, TypeError) as exc:
        raise AnsibleFilterError("stack_lost_uploads: %s" % exc) from None


class FilterModule:
    def filters(self):
        return {"stack_lost_data": stack_lost_data, "stack_lost_uploads": stack_lost_uploads}
