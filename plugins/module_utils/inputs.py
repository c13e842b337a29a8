# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Survey-safe playbook inputs: what an answer means, whatever type it arrived as.

AWX writes survey answers and extra vars as ``!unsafe`` strings (``confirm: !unsafe 'yes'``), and
ansible-core 2.19 resolves the scalar under ``!unsafe`` as if it were unquoted YAML 1.1: ``'yes'`` arrives as
``True``, ``''`` as ``None``, ``'30'`` as ``30``, ``'1.10'`` as the float ``1.1``, ``'010'`` as ``8`` and
``'2025-01-31'`` as a date. The same happens to unquoted values in inventory files. So every input is read here,
by its kind, into what the answer meant:

- a switch (``restart``, ``teardown_volumes``): ``True``/``False``, or the strings true/false, yes/no, on/off,
  1/0 in any case; blank means not given;
- a whole number (``rollcall_backup_keep_last``): an int, or a string of digits; never a bool or a fraction;
- a text (``to``, ``restore_backup_name``, ``confirm``, ``rollcall_app_version``): a string as written. A value
  that arrived as a number is taken as its written form (``spelled``, recovered from the file it came from by the
  filter plugin), else as the number's text when that is unambiguous (ints); a float whose written form is
  unknown is refused, since ``1.1`` may have been written ``1.10``. ``True``/``False`` read as ``yes``/``no``.

Blank (``None``, ``''`` or only spaces) means "not given" for an answer (the playbook's default applies); for a
setting of the inventory (``settings``) a blank extra var is refused, because it hides the inventory's value.

Pure Python (stdlib only), unit-tested in tests/unit/test_inputs.py; used through plugins/filter/survey.py by
roles/preflight.
"""

import datetime
import numbers
import re

TRUE_WORDS = ("true", "yes", "on", "1", "y")
FALSE_WORDS = ("false", "no", "off", "0", "n")
DIGITS_RE = re.compile(r"^[+]?[0-9]+$")


class NotGiven(object):
    """Marker: the answer was blank."""


NOT_GIVEN = NotGiven()


def blank(value):
    return value is None or (isinstance(value, str) and not value.strip())


def _shown(value, spelled=None):
    if spelled is not None:
        return spelled
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_switch(name, value):
    """(True | False | NOT_GIVEN, problem or None)."""
    if blank(value):
        return NOT_GIVEN, None
    if isinstance(value, bool):
        return value, None
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value), None
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True, None
    if text in FALSE_WORDS:
        return False, None
    return NOT_GIVEN, "%s='%s' is not true or false" % (name, _shown(value))


def read_number(name, value, low=None, high=None, spelled=None):
    """(int | NOT_GIVEN, problem or None); ``low``/``high`` inclusive bounds (None: unbounded)."""
    if blank(value):
        return NOT_GIVEN, None
    number = None
    if spelled is not None and not isinstance(value, bool):
        # As written: YAML 1.1 reads 030 as 24 and 0x1e as 30; neither is what a person typed as a number.
        number = int(spelled.strip()) if DIGITS_RE.match(spelled.strip()) else None
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, str) and DIGITS_RE.match(value.strip()):
        number = int(value.strip())
    if number is None or (low is not None and number < low) or (high is not None and number > high):
        if high is not None:
            bounds = " from %s to %s" % (low, high)
        elif low is not None:
            bounds = " of at least %s" % low
        else:
            bounds = ""
        return NOT_GIVEN, "%s '%s' must be a whole number%s" % (name, _shown(value, spelled), bounds)
    return number, None


def read_text(name, value, spelled=None):
    """(str | NOT_GIVEN, problem or None): the answer as it was written."""
    if spelled is not None and not blank(spelled):
        return spelled.strip(), None
    if blank(value):
        return NOT_GIVEN, None
    if isinstance(value, bool):
        return ("yes" if value else "no"), None
    if isinstance(value, str):
        return value.strip(), None
    if isinstance(value, numbers.Integral):
        return str(value), None
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat(), None
    if isinstance(value, float):
        return NOT_GIVEN, (
            "%s arrived as the number %r, so how it was written (%s or %s0?) is lost; quote it in the inventory, or "
            "give it as a string (AWX surveys and ansible-core 2.19 turn a text answer like 1.10 into a number)"
            % (name, value, value, value))
    return NOT_GIVEN, "%s '%s' must be a text, not a %s" % (name, value, type(value).__name__)


def read_inputs(answers, switches=(), numbers_=None, texts=(), settings=(), spelled=None):
    """Read every given answer by its kind.

    ``answers``: name -> value as Ansible has it (only names that are defined); ``switches``: names of yes/no
    answers; ``numbers_``: name -> [low, high] (either may be None); ``texts``: names of text answers (blank: not
    given); ``settings``: names of inventory settings read as text, where a blank extra var is refused;
    ``spelled``: name -> the value as written in its YAML source, when known.

    Returns ``{"given": {name: value}, "problems": [...], "blank": [names]}``; a blank or refused answer is
    left out of ``given``, so ``given.NAME | default(...)`` gives the playbook's default.
    """
    spelled = spelled or {}
    numbers_ = numbers_ or {}
    given, problems, not_given = {}, [], []
    for name in sorted(answers):
        value = answers[name]
        if name in switches:
            result, problem = read_switch(name, value)
        elif name in numbers_:
            low, high = (list(numbers_[name]) + [None, None])[:2]
            result, problem = read_number(name, value, low, high, spelled.get(name))
            # Numbers are inventory settings the roles read as they are (AWX leaves a blank number question out):
            # a blank -e rollcall_health_samples= hid the inventory's value and failed far below ("samples must be
            # 1 or more"); a blank keep_daily would have kept no daily backups.
            if result is NOT_GIVEN and problem is None:
                problem = ("%s is blank; give a whole number or leave it out (a blank extra var hides the inventory's "
                           "value)" % name)
        elif name in texts or name in settings:
            result, problem = read_text(name, value, spelled.get(name))
            if result is NOT_GIVEN and problem is None and name in settings:
                problem = ("%s is blank; give a value or leave it out (a blank extra var hides the inventory's value)"
                           % name)
        else:
            continue
        if problem:
            problems.append(problem)
        elif result is NOT_GIVEN:
            not_given.append(name)
        else:
            given[name] = result
    return {"given": given, "problems": problems, "blank": not_given}


def actor(explicit=None, environ_actor=None, awx_user=None, awx_job=None, user=None, host=None):
    """Who is acting, one rule for the audit log and the release history (roles/preflight: rollcall_actor).

    ``rollcall_actor`` when set, else ``ROLLCALL_ACTOR`` from the controller's environment, else the AWX user who
    launched the job (``awx_user_name`` / ``tower_user_name``) as ``USER@awx``, with `` job N`` when AWX passed
    the job id (``awx_job_id`` / ``tower_job_id``), else ``USER@HOST`` of the controller.
    """
    for given in (explicit, environ_actor):
        if not blank(given) and not isinstance(given, bool):
            return str(given).strip()
    job = None if blank(awx_job) or isinstance(awx_job, bool) else str(awx_job).strip()
    if not blank(awx_user) and not isinstance(awx_user, bool):
        return "%s@awx%s" % (str(awx_user).strip(), (" job " + job) if job else "")
    who = "%s@%s" % (str(user).strip() if not blank(user) else "unknown",
                     str(host).strip() if not blank(host) else "localhost")
    return who + ((" (awx job %s)" % job) if job else "")
