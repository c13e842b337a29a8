# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/inputs.py: read playbook inputs the way a survey meant them.

ansible-core 2.19 reads AWX's ``!unsafe '1.10'`` (and an unquoted ``1.10`` in an inventory file) as the float
1.1. The value keeps a record of where it was read (its origin: file, line, column), so for an answer that
arrived as a number or a date this filter reads that file again and takes the scalar as it was written there,
and uses it only when it reads back as the same value. Without that record (other ansible-core versions, values
made by templates) the rules of inputs.py apply alone: an int is its digits, a float is refused.
"""

import datetime
import numbers

from ansible_collections.rollcall.ops.plugins.module_utils import preflight
from ansible_collections.rollcall.ops.plugins.module_utils.inputs import actor, read_inputs

try:  # ansible-core 2.19+: where a value was read (private API; without it nothing is recovered)
    from ansible._internal._datatag._tags import Origin
except ImportError:  # pragma: no cover - older ansible-core
    Origin = None

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core requires PyYAML
    yaml = None


def _scalar_at(path, line, column, cache):
    """The text of the YAML scalar that starts at (line, column) (1-based) of the file, or None."""
    if path not in cache:
        cache[path] = {}
        try:
            with open(path, encoding="utf-8") as handle:
                for document in yaml.compose_all(handle, Loader=yaml.SafeLoader):
                    stack = [document]
                    while stack:
                        node = stack.pop()
                        if isinstance(node, yaml.ScalarNode):
                            cache[path][(node.start_mark.line + 1, node.start_mark.column + 1)] = node.value
                        elif isinstance(node, yaml.SequenceNode):
                            stack.extend(node.value)
                        elif isinstance(node, yaml.MappingNode):
                            for key, item in node.value:
                                stack.extend((key, item))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            pass
    return cache[path].get((line, column))


def _same(written_text, value):
    """The written text reads back (as YAML 1.1) as the value Ansible has: it is the scalar we were after."""
    try:
        read_back = yaml.safe_load(written_text)
    except yaml.YAMLError:
        return False
    return isinstance(read_back, bool) == isinstance(value, bool) and read_back == value


def written(value, cache=None):
    """How a number or date was written in the YAML file it was read from, when that can be known."""
    if Origin is None or yaml is None or isinstance(value, (str, bool)) or value is None:
        return None
    if not isinstance(value, (numbers.Number, datetime.date)):
        return None
    origin = Origin.get_tag(value)
    if origin is None or not origin.path or not origin.line_num or not origin.col_num:
        return None
    text = _scalar_at(origin.path, origin.line_num, origin.col_num, {} if cache is None else cache)
    if text is None or not _same(text, value):
        return None
    return text


def survey_inputs(answers, switches=None, numbers=None, texts=None, settings=None):
    cache = {}
    spelled = {}
    for name, value in (answers or {}).items():
        text = written(value, cache)
        if text is not None:
            spelled[name] = text
    return read_inputs(dict(answers or {}), switches=switches or (), numbers_=numbers or {}, texts=texts or (),
                       settings=settings or (), spelled=spelled)


def survey_actor(explicit, environ_actor=None, awx_user=None, awx_job=None, user=None, host=None):
    return actor(explicit, environ_actor, awx_user, awx_job, user, host)


def preflight_problems(playbook, given=None, host=None):
    return preflight.problems(playbook, dict(given or {}), dict(host or {}))


class FilterModule(object):
    """rollcall.ops.survey_inputs (answers by kind), rollcall.ops.survey_actor (who is acting) and
    rollcall.ops.preflight_problems (what is wrong with them, module_utils/preflight.py)."""

    def filters(self):
        return {"survey_inputs": survey_inputs, "survey_actor": survey_actor, "preflight_problems": preflight_problems}
