"""roles/awx_config (AWX as code) without an AWX: what can be checked here.

- every task's parameters, rendered from the role's defaults with Ansible's own templating (as a run would),
  validate against the argument spec of the awx.awx module it calls (taken from the module's main());
- every playbook has a job template and every job template names a playbook that exists;
- every survey follows AWX's survey rules, every survey variable is read by its playbook (or the roles and the
  preflight it uses), integers are whole numbers the preflight checks, choices are values the playbook accepts,
  and a blank optional answer is never a given one;
- every schedule's RRULE passes AWX's RRULE rules, parses, and yields the cadence it is meant to have, and its
  extra data are answers its survey accepts;
- every job template notifies a webhook and an email on failure;
- the AWX inventory parses without a vault password; the configuration playbook passes --syntax-check, and
  runs for real against stand-ins of the awx.awx modules that record what they would be sent.
Nothing here talks to an AWX: docs/awx.md says what that leaves untested.
"""

import calendar
import datetime as dt
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.rollcall.ops.plugins.module_utils import preflight as preflight_rules

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "awx_config"
PLAYBOOKS = ROOT / "playbooks"
NOT_TEMPLATED = {"preflight.yml", "silence.yml", "awx_configure.yml"}  # imported by playbooks / makes the templates
UTC = dt.UTC

# Values the role only uses when they are given (secrets passed with -e): given here so those tasks render too.
GIVEN = {
    "awx_config_secrets": {"rollcall_db_password": "x" * 16, "rollcall_db_root_password": "y" * 16,
                           "rollcall_secret_key": "z" * 48, "rollcall_backup_key": "k" * 44},
    "awx_config_ssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n-----END OPENSSH PRIVATE KEY-----\n",
}

# The cadence each schedule is meant to have: (job template, every, (hour, minute) UTC or None, weekday or None,
# day of month or None). A new schedule needs its line here.
CADENCES = {
    "Rollcall nightly backup": ("Rollcall backup", dt.timedelta(days=1), (2, 0), None, None),
    "Rollcall snapshot every 15 minutes": ("Rollcall backup", dt.timedelta(minutes=15), None, None, None),
    "Rollcall binary log every 5 minutes": ("Rollcall archive log", dt.timedelta(minutes=5), None, None, None),
    "Rollcall SQL Server differential backup": ("Rollcall backup", dt.timedelta(hours=4), None, None, None),
    "Rollcall weekly restore test": ("Rollcall verify backup", dt.timedelta(weeks=1), (3, 0), 6, None),
    "Rollcall daily health": ("Rollcall health", dt.timedelta(days=1), (6, 0), None, None),
    "Rollcall weekly audit": ("Rollcall audit", dt.timedelta(weeks=1), (5, 0), 0, None),
    "Rollcall monthly audit": ("Rollcall audit", "month", (4, 0), None, 1),
    "Rollcall quarterly security audit": ("Rollcall security audit", "quarter", (4, 30), None, 1),
    "Rollcall quarterly DR drill": ("Rollcall DR drill", "quarter", (5, 0), None, 2),
    "Rollcall weekly database checks": ("Rollcall maintenance", dt.timedelta(weeks=1), (1, 0), 6, None),
    "Rollcall monthly database maintenance": ("Rollcall maintenance", "month", (1, 30), None, 1),
    "Rollcall mid-month reindex": ("Rollcall maintenance", "month", (1, 30), None, 15),
}


# ------------------------------------------------------------------------------------------------ rendering
def _load(path):
    return DataLoader().load_from_file(str(path), trusted_as_template=True)


@pytest.fixture(scope="module")
def defaults():
    return _load(ROLE / "defaults" / "main.yml")


@pytest.fixture(scope="module")
def templar(defaults):
    return Templar(loader=DataLoader(), variables=dict(defaults, **GIVEN))


@pytest.fixture(scope="module")
def data(defaults, templar):
    """The role's defaults as a run sees them (templated)."""
    return {name: templar.template(defaults[name]) for name in defaults}


def _module_of(task):
    names = [key for key in task if key.startswith("awx.awx.")]
    assert len(names) == 1, "task %r calls no awx.awx module (or several)" % task.get("name")
    return names[0]


def _rendered_tasks(templar):
    """(task name, module, rendered parameters) for every loop item of every task of the role."""
    out = []
    for task in _load(ROLE / "tasks" / "main.yml"):
        module = _module_of(task)
        items = templar.template(task["loop"]) if "loop" in task else [None]
        assert isinstance(items, list), task["name"]
        for item in items:
            templar.available_variables = dict(templar.available_variables, item=item)
            out.append((task["name"], module.split(".")[-1], templar.template(task[module])))
    return out


@pytest.fixture(scope="module")
def rendered(templar):
    return _rendered_tasks(templar)


class _Captured(Exception):
    pass


def module_spec(name):
    """The argument spec an awx.awx module builds in main(): its own options plus ControllerModule's auth ones,
    and the keyword checks (mutually_exclusive, required_if, ...) it hands to ControllerAPIModule."""
    module = importlib.import_module("ansible_collections.awx.awx.plugins.modules." + name)
    seen = {}

    def record(argument_spec=None, **kwargs):
        seen.update(argument_spec=argument_spec, kwargs=kwargs)
        raise _Captured

    with mock.patch.object(module, "ControllerAPIModule", record), pytest.raises(_Captured):
        module.main()
    from ansible_collections.awx.awx.plugins.module_utils.controller_api import ControllerModule

    spec = dict(ControllerModule.AUTH_ARGSPEC)
    spec.update(seen["argument_spec"])
    return spec, seen["kwargs"]


def _validate(module, params):
    spec, kwargs = module_spec(module)
    checks = {k: v for k, v in kwargs.items() if k in ("mutually_exclusive", "required_together", "required_one_of",
                                                       "required_if", "required_by")}
    result = ArgumentSpecValidator(spec, **checks).validate(params)
    return result.error_messages


# ------------------------------------------------------------------------------------------------ module params
def test_every_task_renders_and_validates_against_the_awx_module_spec(rendered):
    problems = []
    for task, module, params in rendered:
        for error in _validate(module, params):
            problems.append("%s (%s, %s): %s" % (task, module, params.get("name"), error))
    assert not problems, "\n".join(problems)
    modules = {module for _, module, _ in rendered}
    assert modules >= {"organization", "execution_environment", "credential_type", "credential", "project",
                       "inventory", "inventory_source", "notification_template", "job_template", "schedule"}


def test_the_validation_catches_a_wrong_parameter():
    assert _validate("schedule", {"name": "x", "rrule": "y", "extra_vars": {}})  # extra_data is the name
    assert _validate("job_template", {"name": "x", "verbosity": 9})
    assert not _validate("job_template", {"name": "x", "verbosity": 1})


def test_blank_optional_values_are_omitted_not_sent(rendered):
    for task, _, params in rendered:
        for key, value in params.items():
            assert value != "", "%s sends %s='' (blank values are omitted)" % (task, key)


def test_objects_refer_to_objects_the_role_makes(data):
    names = {kind: {o["name"] for o in data["awx_config_" + kind]}
             for kind in ("organizations", "execution_environments", "credential_types", "projects", "inventories",
                          "notification_templates", "job_templates")}
    assert data["awx_config_organization"] in names["organizations"]
    assert data["awx_config_ee_name"] in names["execution_environments"]
    assert data["awx_config_project_name"] in names["projects"]
    assert data["awx_config_inventory_name"] in names["inventories"]
    assert data["awx_config_secrets_credential_type"] in names["credential_types"]
    for source in data["awx_config_inventory_sources"]:
        assert source["inventory"] in names["inventories"] and source["source_project"] in names["projects"]
    for schedule in data["awx_config_schedules"]:
        assert schedule["unified_job_template"] in names["job_templates"], schedule["name"]
    credentials = {c["name"]: c for c in data["awx_config_credentials"]}  # those made when values are given
    assert credentials[data["awx_config_secrets_credential"]]["credential_type"] == data[
        "awx_config_secrets_credential_type"]
    assert data["awx_config_machine_credential"] in credentials


# ------------------------------------------------------------------------------------------------ job templates
def test_every_playbook_has_a_job_template_and_every_template_a_playbook(data):
    templated = [t["playbook"] for t in data["awx_config_job_templates"]]
    for playbook in templated:
        assert (ROOT / playbook).is_file(), playbook
    assert len(templated) == len(set(templated))
    playbooks = {"playbooks/" + p.name for p in PLAYBOOKS.glob("*.yml") if p.name not in NOT_TEMPLATED}
    assert set(templated) == playbooks


def test_every_job_template_notifies_a_webhook_and_an_email_on_failure(rendered, data):
    kinds = {n["name"]: n["notification_type"] for n in data["awx_config_notification_templates"]}
    assert sorted(kinds.values()) == ["email", "webhook"]
    templates = [p for _, module, p in rendered if module == "job_template"]
    assert len(templates) == len(data["awx_config_job_templates"])
    for params in templates:
        assert sorted(kinds[n] for n in params["notification_templates_error"]) == ["email", "webhook"], params["name"]
        assert set(params["credentials"]) == {data["awx_config_machine_credential"],
                                              data["awx_config_secrets_credential"]}


def test_the_credential_type_injects_every_secret_as_an_extra_var(data):
    (ctype,) = data["awx_config_credential_types"]
    fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
    secrets = {"rollcall_db_password", "rollcall_db_root_password", "rollcall_secret_key", "rollcall_backup_key"}
    assert set(fields) == secrets and all(f["secret"] and f["type"] == "string" for f in fields.values())
    assert set(ctype["injectors"]) == {"extra_vars"}
    injected = ctype["injectors"]["extra_vars"]
    assert set(injected) == secrets
    for name, template in injected.items():  # AWX's template, kept as written (not rendered by Ansible)
        assert template.startswith("{{ " + name), template
    assert set(ctype["inputs"]["required"]) <= secrets
    corpus = "\n".join(_text(p) for p in [*PLAYBOOKS.glob("*.yml"), *(ROOT / "roles").glob("*/*/*.yml")])
    for name in secrets:
        assert _reads(corpus, name), "%s is injected but no playbook or role reads it" % name


# ------------------------------------------------------------------------------------------------ surveys
def _text(path):
    """A file without its comment lines."""
    return "\n".join(line for line in Path(path).read_text().splitlines() if not line.lstrip().startswith("#"))


def _reads(corpus, var):
    """The variable is used in an expression (not only named in prose): as itself, or as the preflight's reading
    of it (rollcall_inputs.VAR in the playbooks, (rollcall_inputs | default({})).VAR in role defaults,
    preflight_given.VAR in the preflight)."""
    after = r"\s*(\||is\s|\}\}|==|!=|\)|\bin\b|\bnot\b|,|\]|$)"
    pattern = (r"(?:(?<![\w.'\"-])|(?<=rollcall_inputs\.)|(?<=rollcall_inputs \| default\(\{\}\)\)\.)"
               r"|(?<=preflight_given\.))" + re.escape(var) + after)
    return re.search(pattern, corpus, re.MULTILINE) is not None


def playbook_corpus(playbook):
    """The playbook, preflight.yml when it imports it, and every task, default and var file of every rollcall.ops
    role it reaches (not the preflight's lists of names: being listed there is not being read)."""
    files = [ROOT / playbook]
    text = _text(ROOT / playbook)
    if "preflight.yml" in text:
        files.append(PLAYBOOKS / "preflight.yml")
        text += _text(PLAYBOOKS / "preflight.yml")
    roles, todo = set(), set(re.findall(r"rollcall\.ops\.(\w+)", text))
    while todo:
        role = todo.pop()
        if role in roles or not (ROOT / "roles" / role).is_dir():
            continue
        roles.add(role)
        for path in sorted((ROOT / "roles" / role).rglob("*.yml")):
            if path != ROOT / "roles/preflight/defaults/main.yml":
                files.append(path)
                todo |= set(re.findall(r"rollcall\.ops\.(\w+)", path.read_text()))
    return "\n".join(_text(f) for f in files)


@pytest.fixture(scope="module")
def preflight():
    return {
        "defaults": yaml.safe_load((ROOT / "roles/preflight/defaults/main.yml").read_text()),
        "tasks": (ROOT / "roles/preflight/tasks/main.yml").read_text(),
    }


def _kind(preflight, var):
    """How the preflight reads an answer (plugins/module_utils/inputs.py): switch, number, text or setting."""
    defaults = preflight["defaults"]
    kinds = [kind for kind, names in (("switch", defaults["preflight_switches"]),
                                      ("number", defaults["preflight_numbers"]),
                                      ("text", defaults["preflight_texts"]),
                                      ("setting", defaults["preflight_settings"])) if var in names]
    assert len(kinds) == 1, "the preflight reads %s as %s (one kind expected)" % (var, kinds or "nothing")
    return kinds[0]


def _setting_values(var):
    """The values the preflight accepts for a setting (plugins/module_utils/preflight.py CHOICES)."""
    assert var in preflight_rules.CHOICES, "the preflight has no list of accepted values for %s" % var
    return set(preflight_rules.CHOICES[var])


def _questions(data):
    for template in data["awx_config_job_templates"]:
        for question in template.get("survey_spec", {}).get("spec", []):
            yield template, question


ALLOWED_TYPES = {"text": str, "textarea": str, "password": str, "multiplechoice": str, "multiselect": str,
                 "integer": int, "float": float}


def test_surveys_follow_awx_survey_rules(data):
    """The checks AWX's API applies when a survey spec is saved."""
    for template in data["awx_config_job_templates"]:
        if template["survey_enabled"] is False:  # nothing to ask (a rotation takes its passwords from credentials)
            assert "survey_spec" not in template, template["name"]
            continue
        survey = template["survey_spec"]
        assert isinstance(survey["name"], str) and isinstance(survey["description"], str) and survey["spec"]
        variables = [q["variable"] for q in survey["spec"]]
        assert len(variables) == len(set(variables)), template["name"]
        for q in survey["spec"]:
            where = "%s: %s" % (template["name"], q.get("variable"))
            for field in ("type", "question_name", "variable"):
                assert isinstance(q[field], str), where
            assert isinstance(q["required"], bool), where
            assert q["type"] in ALLOWED_TYPES, where
            if q.get("default", "") != "":
                assert isinstance(q["default"], ALLOWED_TYPES[q["type"]]), where
            for key in ("min", "max"):
                assert q.get(key) is None or isinstance(q[key], int), where
            if q["type"] in ("multiplechoice", "multiselect"):
                assert q["choices"] and all(isinstance(c, str) and c for c in q["choices"]), where
                assert q.get("default", "") == "" or q["default"] in q["choices"], where


def test_blank_never_means_given(data, preflight):
    """An optional question defaults to blank, which the preflight reads as not given (text arrives as "",
    integers and choices left blank do not arrive); a required one is never blank (a text needs a character, a
    choice's default is one of its choices). An inventory setting is refused when blank, so it is required."""
    for template, q in _questions(data):
        where = "%s: %s" % (template["name"], q["variable"])
        if q["required"]:
            if q["type"] == "text":
                assert q.get("min", 0) >= 1 and q.get("default", "") == "", where
            else:
                assert q.get("default", "") == "" or q["default"] in q.get("choices", [q["default"]]), where
        else:
            assert q.get("default", "") == "", where
            assert q.get("min", 0) == 0 or q["type"] != "text", where
            assert _kind(preflight, q["variable"]) != "setting", "%s: a blank setting is refused" % where


def test_every_survey_variable_is_read_by_its_playbook(data):
    for template, q in _questions(data):
        assert _reads(playbook_corpus(template["playbook"]), q["variable"]), "%s: %s is read by no one" % (
            template["playbook"], q["variable"])


def test_every_survey_type_is_the_kind_the_preflight_reads(data, preflight):
    expected = {"integer": {"number"}, "text": {"text", "setting"}, "multiplechoice": {"switch", "setting"}}
    for template, q in _questions(data):
        assert _kind(preflight, q["variable"]) in expected[q["type"]], "%s: %s" % (template["name"], q["variable"])


def test_integer_answers_are_whole_numbers_the_playbook_takes(data, preflight):
    from ansible_collections.rollcall.ops.plugins.module_utils.inputs import read_number

    numbers = preflight["defaults"]["preflight_numbers"]
    asked = [(t, q) for t, q in _questions(data) if q["type"] == "integer"]
    assert asked
    for _, q in asked:
        low, high = numbers[q["variable"]]
        for answer in (q["min"], q["max"]):  # the survey's bounds are inside the preflight's
            assert read_number(q["variable"], answer, low, high) == (answer, None), (q["variable"], answer)
        assert read_number(q["variable"], None, low, high)[1] is None  # not answered: not given, no problem


def test_choices_are_values_the_playbook_accepts(data, preflight):
    from ansible_collections.rollcall.ops.plugins.module_utils.inputs import read_switch

    asked = [(t, q) for t, q in _questions(data) if q["type"] == "multiplechoice"]
    assert asked
    for template, q in asked:
        where = "%s: %s" % (template["name"], q["variable"])
        if _kind(preflight, q["variable"]) == "switch":
            assert sorted(read_switch(q["variable"], c) for c in q["choices"]) == [(False, None), (True, None)], where
        else:
            assert set(q["choices"]) <= _setting_values(q["variable"]), where


# ------------------------------------------------------------------------------------------------ schedules
def awx_rrule_problems(value):
    """The rules AWX's API applies to a schedule's rrule (its own checks, restated)."""
    problems = []
    dtstarts = re.findall(r"DTSTART(?:;[^:]+)?:[0-9]+T[0-9]+Z?", value)
    if len(dtstarts) != 1:
        problems.append("exactly one DTSTART")
    if re.search(r"DTSTART:[0-9]+T[0-9]+ ", value):
        problems.append("DTSTART is naive (add Z or ;TZID=)")
    rules = re.findall(r"RRULE:(\S*)", value)
    if len(rules) != 1:
        problems.append("exactly one RRULE")
    if "EXDATE" in value.upper() or "RDATE" in value.upper():
        problems.append("EXDATE/RDATE")
    for rule in rules:
        upper = rule.upper()
        if "INTERVAL" not in upper:
            problems.append("INTERVAL required")
        if "SECONDLY" in upper:
            problems.append("SECONDLY")
        if re.search(r"BYDAY[:=][0-9]+[A-Z]{2}", upper):
            problems.append("BYDAY with a numeric prefix")
        if "COUNT" in upper and "UNTIL" in upper:
            problems.append("COUNT and UNTIL")
        count = re.search(r"COUNT=([0-9]+)", upper)
        if count and int(count.group(1)) > 999:
            problems.append("COUNT > 999")
        for unsupported in ("BYYEARDAY", "BYWEEKNO"):
            if unsupported in upper:
                problems.append(unsupported)
        if re.search(r"BYMONTHDAY=[-0-9]+,", upper) or re.search(r"BYMONTH=[0-9]+,", upper):
            problems.append("several BYMONTHDAYs/BYMONTHs")
    return problems


WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def parse_rrule(value):
    """DTSTART (UTC) and the RRULE parts of an AWX rrule string."""
    start = re.search(r"DTSTART:([0-9]{8}T[0-9]{6})Z", value)
    assert start, "DTSTART must be UTC (...Z) for this checker: %s" % value
    dtstart = dt.datetime.strptime(start.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    parts = dict(p.split("=", 1) for p in re.search(r"RRULE:(\S+)", value).group(1).split(";"))
    unknown = set(parts) - {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY"}
    assert not unknown, "this checker does not know %s" % unknown
    return dtstart, parts


def next_occurrences(value, after, count=3):
    """The next occurrences after `after`: a small RFC 5545 subset (MINUTELY, HOURLY, DAILY, WEEKLY with BYDAY,
    MONTHLY with BYMONTHDAY), enough for these schedules; cross-checked with dateutil when it is installed."""
    dtstart, parts = parse_rrule(value)
    freq, interval = parts["FREQ"], int(parts["INTERVAL"])
    out = []
    if freq in ("MINUTELY", "HOURLY", "DAILY"):
        step = dt.timedelta(**{{"MINUTELY": "minutes", "HOURLY": "hours", "DAILY": "days"}[freq]: interval})
        t = dtstart if after < dtstart else dtstart + ((after - dtstart) // step + 1) * step
        while len(out) < count:
            out.append(t)
            t += step
    elif freq == "WEEKLY":
        days = {WEEKDAYS.index(d) for d in parts.get("BYDAY", WEEKDAYS[dtstart.weekday()]).split(",")}
        week0 = dtstart.date() - dt.timedelta(days=dtstart.weekday())
        day = max(dtstart, after).date()
        while len(out) < count:
            t = dt.datetime.combine(day, dtstart.timetz())
            if ((day - week0).days // 7) % interval == 0 and day.weekday() in days and t >= dtstart and t > after:
                out.append(t)
            day += dt.timedelta(days=1)
    elif freq == "MONTHLY":
        monthday = int(parts.get("BYMONTHDAY", dtstart.day))
        months = dtstart.year * 12 + dtstart.month - 1
        while len(out) < count:
            year, month = divmod(months, 12)
            if monthday <= calendar.monthrange(year, month + 1)[1]:
                t = dt.datetime(year, month + 1, monthday, dtstart.hour, dtstart.minute, tzinfo=UTC)
                if t >= dtstart and t > after:
                    out.append(t)
            months += interval
    else:
        raise AssertionError("this checker does not know FREQ=%s" % freq)
    return out


def test_the_rrule_checker_knows_awx_rules_and_cadences():
    assert awx_rrule_problems("DTSTART:20300308T050000Z RRULE:FREQ=DAILY;INTERVAL=1") == []
    assert awx_rrule_problems("DTSTART:20300308T050000 RRULE:FREQ=DAILY;INTERVAL=1")
    assert awx_rrule_problems("DTSTART:20300308T050000Z RRULE:FREQ=DAILY")
    assert awx_rrule_problems("DTSTART:20300308T050000Z RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=1MO")
    after = dt.datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert next_occurrences("DTSTART:20250101T040000Z RRULE:FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=31", after) == [
        dt.datetime(2026, 3, 31, 4, tzinfo=UTC), dt.datetime(2026, 5, 31, 4, tzinfo=UTC),
        dt.datetime(2026, 7, 31, 4, tzinfo=UTC)]
    assert next_occurrences("DTSTART:20250101T000000Z RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=WE", after)[0] == dt.datetime(
        2026, 2, 11, tzinfo=UTC)


AFTERS = [dt.datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC), dt.datetime(2027, 12, 31, 23, 59, tzinfo=UTC)]


@pytest.mark.parametrize("after", AFTERS, ids=lambda a: a.strftime("%Y-%m-%d"))
def test_every_schedule_has_its_intended_cadence(data, after):
    schedules = {s["name"]: s for s in data["awx_config_schedules"]}
    assert set(schedules) == set(CADENCES)
    for name, (template, every, at, weekday, monthday) in CADENCES.items():
        schedule = schedules[name]
        assert schedule["unified_job_template"] == template, name
        assert awx_rrule_problems(schedule["rrule"]) == [], name
        times = next_occurrences(schedule["rrule"], after)
        assert len(times) == 3 and times[0] > after, name
        if every in ("month", "quarter"):
            step = 1 if every == "month" else 3
            months = [t.year * 12 + t.month for t in times]
            assert months == [months[0], months[0] + step, months[0] + 2 * step], name
            assert every == "month" or all(t.month in (1, 4, 7, 10) for t in times), name
        else:
            assert [b - a for a, b in zip(times, times[1:], strict=False)] == [every, every], name
            assert times[0] - after <= every, name
        for t in times:
            assert at is None or (t.hour, t.minute, t.second) == (*at, 0), name
            assert weekday is None or t.weekday() == weekday, name
            assert monthday is None or t.day == monthday, name


@pytest.mark.parametrize("after", AFTERS, ids=lambda a: a.strftime("%Y-%m-%d"))
def test_dateutil_agrees_with_the_checker(data, after):
    rrule = pytest.importorskip("dateutil.rrule", reason="python-dateutil is not in the venv (requirements.txt)")
    for schedule in data["awx_config_schedules"]:
        parsed = rrule.rrulestr(schedule["rrule"].replace(" ", "\n"))
        expected = next_occurrences(schedule["rrule"], after)
        got, t = [], after
        for _ in expected:
            t = parsed.after(t)
            got.append(t)
        assert got == expected, schedule["name"]


def test_every_schedule_names_its_seed_line():
    lines = (ROLE / "defaults" / "main.yml").read_text().split("\nawx_config_schedules:\n", 1)[1].splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  - name: "):
            comment = []
            for before in reversed(lines[:i]):
                if not before.strip().startswith("#"):
                    break
                comment.append(before)
            text = " ".join(comment)
            assert re.search(r"[Ii]ssue [0-9]+", text) and re.search(r"\"[^\"]+\"", text), (
                "%s: no comment quoting its seed line" % line)


def test_schedule_answers_are_answers_the_survey_accepts(data, preflight):
    templates = {t["name"]: t for t in data["awx_config_job_templates"]}
    window = preflight_rules.WINDOW_RE
    for schedule in data["awx_config_schedules"]:
        template = templates[schedule["unified_job_template"]]
        answers = schedule.get("extra_data", {})
        if not template["survey_enabled"]:  # no survey: AWX would refuse (or ignore) answers
            assert not answers, "%s answers a template without a survey" % schedule["name"]
            continue
        spec = {q["variable"]: q for q in template["survey_spec"]["spec"]}
        for var in spec:
            assert not spec[var]["required"] or var in answers, "%s: required %s unanswered" % (schedule["name"], var)
        for var, value in answers.items():
            assert var in spec, "%s: %s is not in the survey (AWX would refuse it)" % (schedule["name"], var)
            assert isinstance(value, ALLOWED_TYPES[spec[var]["type"]]), (schedule["name"], var)
            if spec[var]["type"] == "multiplechoice":
                assert value in spec[var]["choices"], (schedule["name"], var)
            if var == "audit_since":
                assert window.match(value), (schedule["name"], value)


def test_only_the_snapshots_the_sql_server_differentials_and_the_log_shipping_are_off_by_default(data):
    off = [s["name"] for s in data["awx_config_schedules"] if not s["enabled"]]
    assert off == ["Rollcall SQL Server differential backup", "Rollcall binary log every 5 minutes",
                   "Rollcall snapshot every 15 minutes"]


def test_backup_schedules_say_their_type_and_the_survey_asks_for_it(data):
    """Issue 17: nightly full backups, SQL Server differentials in between; the survey question backs both."""
    types = {s["name"]: s["extra_data"].get("rollcall_backup_type") for s in data["awx_config_schedules"]
             if s["unified_job_template"] == "Rollcall backup"}
    assert types == {"Rollcall nightly backup": "full", "Rollcall SQL Server differential backup": "differential",
                     "Rollcall snapshot every 15 minutes": "full"}
    (template,) = [t for t in data["awx_config_job_templates"] if t["name"] == "Rollcall backup"]
    (question,) = [q for q in template["survey_spec"]["spec"] if q["variable"] == "rollcall_backup_type"]
    assert question["choices"] == ["full", "differential"] and question["default"] == "full"


# ------------------------------------------------------------------------------------------------ inventory
def test_the_inventory_source_is_the_awx_inventory_in_the_project(data):
    (source,) = data["awx_config_inventory_sources"]
    assert source["source"] == "scm" and (ROOT / source["source_path"]).is_file()
    assert source["source_path"].startswith("inventories/awx/")


def test_the_awx_inventory_has_no_file_encrypted_vault():
    files = [p for p in (ROOT / "inventories" / "awx").rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert not path.read_text().lstrip().startswith("$ANSIBLE_VAULT"), path


def _ansible(tool):
    return str(Path(sys.executable).with_name(tool))


def test_the_awx_inventory_parses_without_a_vault_password(tmp_path):
    vault = ("ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_IDENTITY_LIST")
    env = {k: v for k, v in os.environ.items() if k not in vault}
    env["ANSIBLE_CONFIG"] = str(tmp_path / "none.cfg")
    done = subprocess.run([_ansible("ansible-inventory"), "-i", str(ROOT / "inventories/awx/hosts.yml"), "--list"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "vault" not in done.stderr.lower(), done.stderr
    inventory = yaml.safe_load(done.stdout)
    assert inventory["app"]["hosts"] and inventory["db"]["hosts"]


def test_the_configuration_playbook_passes_syntax_check(tmp_path):
    env = dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / "none.cfg"))
    done = subprocess.run([_ansible("ansible-playbook"), "--syntax-check", str(PLAYBOOKS / "awx_configure.yml")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# ------------------------------------------------------------------------------------------------ a real run
STUB_ACTION = '''
# Test stand-in for an awx.awx module: records the arguments Ansible would send it, changes nothing.
import json
import os

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        with open(os.environ["AWX_STUB_RECORD"], "a") as out:
            out.write(json.dumps({"module": "%s", "params": self._task.args}) + "\\n")
        return {"changed": False}
'''


def _stub_awx(tmp_path, modules):
    """A stand-in awx.awx collection under tmp_path: each module an action plugin that records its arguments."""
    stub = tmp_path / "ansible_collections" / "awx" / "awx"
    (stub / "plugins" / "modules").mkdir(parents=True)
    (stub / "plugins" / "action").mkdir()
    (stub / "meta").mkdir()
    (stub / "meta" / "runtime.yml").write_text(yaml.safe_dump({"requires_ansible": ">=2.15",
                                                               "action_groups": {"controller": modules}}))
    (stub / "galaxy.yml").write_text("namespace: awx\nname: awx\nversion: 0.0.0\n")
    for module in modules:
        (stub / "plugins" / "modules" / (module + ".py")).write_text("# stand-in: plugins/action does the work\n")
        (stub / "plugins" / "action" / (module + ".py")).write_text(STUB_ACTION % module)
    return tmp_path / "record.jsonl"


@pytest.mark.parametrize("named", [None, "env", "config_file"])
def test_a_run_that_names_no_awx_stops_before_any_module(tmp_path, rendered, named):
    """Nothing names the AWX (no controller_host, no CONTROLLER_HOST/TOWER_HOST, no tower_cli.cfg): awx.awx would
    try https://127.0.0.1 and fail with "unknown error when trying to connect to https://127.0.0.1/...", a host
    nobody gave. The playbook says what to set before any module runs. Named by the environment or by a config file
    in a directory above the working one, it goes on."""
    record = _stub_awx(tmp_path, sorted({module for _, module, _ in rendered}))
    work = tmp_path / "school" / "ops"
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLLER_", "TOWER_"))}
    env.update(ANSIBLE_CONFIG=str(tmp_path / "none.cfg"), ANSIBLE_COLLECTIONS_PATH=str(tmp_path),
               AWX_STUB_RECORD=str(record), HOME=str(tmp_path / "home"), PWD=str(work))
    if named == "env":
        env["CONTROLLER_HOST"] = "https://awx.test"
    elif named == "config_file":
        (tmp_path / "school" / ".tower_cli.cfg").write_text("[general]\nhost = https://awx.test\n")
    done = subprocess.run([_ansible("ansible-playbook"), str(PLAYBOOKS / "awx_configure.yml"), "-e",
                           json.dumps(GIVEN)], capture_output=True, text=True, env=env, cwd=work, check=False)
    output = done.stdout + done.stderr
    if named is None:
        assert done.returncode != 0, output[-3000:]
        assert "Which AWX? Nothing names it: set CONTROLLER_HOST" in output, output[-3000:]
        assert "api/v2" not in output and "Connection refused" not in output
        assert not record.exists()
    else:
        assert done.returncode == 0, output[-3000:]
        assert len(record.read_text().splitlines()) == len(rendered)


def test_a_real_run_passes_parameters_the_modules_accept(tmp_path, rendered):
    """ansible-playbook playbooks/awx_configure.yml for real, with each awx.awx module replaced by a stand-in
    that records what Ansible would send it (module_defaults, loops, omit and all; an action plugin, so no module
    process runs): the same parameters as rendered above, each valid for the real module, and the auth given with
    -e reaches every module."""
    record = _stub_awx(tmp_path, sorted({module for _, module, _ in rendered}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / "none.cfg"), ANSIBLE_COLLECTIONS_PATH=str(tmp_path),
               AWX_STUB_RECORD=str(record))
    extra = json.dumps(dict(GIVEN, controller_host="https://awx.test", controller_oauthtoken="t0ken"))
    done = subprocess.run([_ansible("ansible-playbook"), str(PLAYBOOKS / "awx_configure.yml"), "-e", extra],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(calls) == len(rendered)
    for call, (task, module, params) in zip(calls, rendered, strict=True):
        assert call["module"] == module, task
        sent = dict(call["params"])
        assert sent.pop("controller_host") == "https://awx.test" and sent.pop("controller_oauthtoken") == "t0ken"
        assert sent == params, task
        assert not _validate(module, call["params"]), task


def test_the_real_modules_run_under_the_repository_configuration(tmp_path):
    """With the repository's ansible.cfg (rollcall_linear, through Mitogen when it is installed) the real awx.awx
    modules must run: they import their module_utils relatively, which Mitogen's runner could not load, so the first
    task failed with "attempted relative import with no known parent package" before it tried the API. Against a
    port nothing listens on, the module itself must answer that it could not connect."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    extra = json.dumps(dict(GIVEN, controller_host="https://127.0.0.1:1", controller_oauthtoken="t0ken"))
    done = subprocess.run([_ansible("ansible-playbook"), str(PLAYBOOKS / "awx_configure.yml"), "-e", extra],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "relative import" not in output and "deserialization failed" not in output, output[-3000:]
    assert "trying to connect to https://127.0.0.1:1/api/v2/" in output, output[-3000:]
    assert "t0ken" not in output
