"""plugins/module_utils/inputs.py and plugins/filter/survey.py: survey answers mean what the survey meant, in
whatever type ansible-core 2.19 hands them over (AWX's !unsafe strings are read as unquoted YAML 1.1)."""

import datetime
import os

import pytest

from ansible_collections.rollcall.ops.plugins.filter import survey
from ansible_collections.rollcall.ops.plugins.module_utils import inputs
from ansible_collections.rollcall.ops.plugins.module_utils.inputs import NOT_GIVEN, read_inputs

SPEC = dict(switches=["restart", "teardown_volumes"], numbers_={"keep": [0, None], "port": [1, 65535]},
            texts=["to", "confirm", "restore_backup_name"], settings=["rollcall_app_version"])


@pytest.mark.parametrize("value,expected", [
    (True, True), (False, False), ("yes", True), ("No", False), (" on ", True), ("off", False), ("1", True),
    (0, False), (1, True), ("TRUE", True),
])
def test_switches_in_any_spelling(value, expected):
    assert inputs.read_switch("restart", value) == (expected, None)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_blank_switch_is_not_given(value):
    assert inputs.read_switch("restart", value) == (NOT_GIVEN, None)


@pytest.mark.parametrize("value", ["ture", 2, 1.0, "maybe"])
def test_a_typo_in_a_switch_is_refused(value):
    result, problem = inputs.read_switch("restart", value)
    assert result is NOT_GIVEN and problem == "restart='%s' is not true or false" % value


@pytest.mark.parametrize("value,spelled,expected", [
    (30, None, 30), ("30", None, 30), (" 7 ", None, 7), (24, "030", 30), (0, None, 0),
])
def test_whole_numbers(value, spelled, expected):
    assert inputs.read_number("keep", value, 0, None, spelled) == (expected, None)


@pytest.mark.parametrize("value,spelled,low,high,msg", [
    (True, None, 0, None, "keep 'true' must be a whole number of at least 0"),
    (1.5, None, 0, None, "keep '1.5' must be a whole number of at least 0"),
    (-1, None, 0, None, "keep '-1' must be a whole number of at least 0"),
    (70000, None, 1, 65535, "keep '70000' must be a whole number from 1 to 65535"),
    (30, "0x1e", 0, None, "keep '0x1e' must be a whole number of at least 0"),
    ("thirty", None, 0, None, "keep 'thirty' must be a whole number of at least 0"),
])
def test_what_is_not_a_whole_number_in_range_is_refused(value, spelled, low, high, msg):
    assert inputs.read_number("keep", value, low, high, spelled) == (NOT_GIVEN, msg)


@pytest.mark.parametrize("value,spelled,expected", [
    ("1.10", None, "1.10"), (1.1, "1.10", "1.10"), (8, "010", "010"), (2, None, "2"), (True, None, "yes"),
    (False, None, "no"), (" previous ", None, "previous"), (datetime.date(2026, 1, 31), None, "2026-01-31"),
])
def test_texts_as_written(value, spelled, expected):
    assert inputs.read_text("to", value, spelled) == (expected, None)


def test_a_float_whose_spelling_is_lost_is_refused_naming_both_readings():
    result, problem = inputs.read_text("rollcall_app_version", 1.1)
    assert result is NOT_GIVEN
    assert problem.startswith("rollcall_app_version arrived as the number 1.1") and "1.10" in problem


def test_read_inputs_sorts_given_blank_and_refused():
    answers = {"restart": None, "teardown_volumes": True, "keep": 30, "port": 0, "to": "", "confirm": True,
               "restore_backup_name": None, "rollcall_app_version": 1.1, "unrelated": "x"}
    out = read_inputs(answers, spelled={"rollcall_app_version": "1.10"}, **SPEC)
    assert out["given"] == {"teardown_volumes": True, "keep": 30, "confirm": "yes", "rollcall_app_version": "1.10"}
    assert sorted(out["blank"]) == ["restart", "restore_backup_name", "to"]
    assert out["problems"] == ["port '0' must be a whole number from 1 to 65535"]


@pytest.mark.parametrize("value", ["", None, "  "])
def test_a_blank_number_is_refused_naming_it(value):
    """-e rollcall_health_samples= reached the health module as '' ("endpoints: samples must be 1 or more");
    AWX leaves an unanswered number question out, so a blank number only comes from a mistyped -e."""
    out = read_inputs({"keep": value}, **SPEC)
    assert out["given"] == {} and out["blank"] == []
    assert out["problems"] == ["keep is blank; give a whole number or leave it out (a blank extra var hides the "
                               "inventory's value)"]


def test_a_blank_setting_is_refused_not_taken_as_no_answer():
    out = read_inputs({"rollcall_app_version": ""}, **SPEC)
    assert out["given"] == {} and len(out["problems"]) == 1
    assert out["problems"][0].startswith("rollcall_app_version is blank")


@pytest.mark.parametrize("args,expected", [
    (("ops-team", "env-actor", "alice", 42, "root", "ctl"), "ops-team"),
    (("", "env-actor", "alice", 42, "root", "ctl"), "env-actor"),
    ((None, "", "alice", 42, "root", "ctl"), "alice@awx job 42"),
    ((None, "", "alice", None, "root", "ctl"), "alice@awx"),
    ((None, "", None, 7, "root", "ctl"), "root@ctl (awx job 7)"),
    ((None, None, None, None, "root", "ctl"), "root@ctl"),
    ((None, None, None, None, "", ""), "unknown@localhost"),
])
def test_actor_rule(args, expected):
    assert inputs.actor(*args) == expected


# ------------------------------------------------------------------ the filter: the spelling from the source file
def load_extra_vars(path):
    """Extra vars as ansible-playbook -e @path loads them (ansible-core's own loader, origin tags included)."""
    from ansible.parsing.dataloader import DataLoader
    return DataLoader().load_from_file(path)


@pytest.fixture
def awx_extravars(tmp_path):
    path = tmp_path / "extravars"
    path.write_text("confirm: !unsafe 'yes'\nrollcall_app_version: !unsafe '1.10'\nkeep: !unsafe '30'\n"
                    "to: !unsafe ''\nrestart: !unsafe 'no'\nrestore_backup_name: !unsafe '010'\n")
    return str(path)


def test_ansible_core_reads_awx_unsafe_strings_as_unquoted_yaml(awx_extravars):
    # The reason for all of this; if a later ansible-core keeps them strings, this test says so.
    loaded = load_extra_vars(awx_extravars)
    assert loaded["confirm"] is True and loaded["to"] is None and loaded["keep"] == 30
    assert isinstance(loaded["rollcall_app_version"], float) and loaded["rollcall_app_version"] == 1.1
    assert loaded["restore_backup_name"] == 8


def test_filter_recovers_what_was_written(awx_extravars):
    loaded = load_extra_vars(awx_extravars)
    out = survey.survey_inputs(loaded, switches=["restart"], numbers={"keep": [0, None]},
                               texts=["to", "confirm", "restore_backup_name"], settings=["rollcall_app_version"])
    assert out["given"] == {"confirm": "yes", "rollcall_app_version": "1.10", "keep": 30, "restart": False,
                            "restore_backup_name": "010"}
    assert out["blank"] == ["to"] and out["problems"] == []


def test_filter_uses_a_spelling_only_when_it_reads_back_as_the_value(tmp_path):
    loaded = load_extra_vars(str(_write(tmp_path, "v: !unsafe '1.10'\n")))
    os.unlink(tmp_path / "x.yml")  # the source is gone: nothing to recover, the float is refused
    out = survey.survey_inputs(loaded, settings=["v"])
    assert out["given"] == {} and out["problems"][0].startswith("v arrived as the number 1.1")
    # A source that changed since it was read does not lend its text to the value.
    loaded = load_extra_vars(str(_write(tmp_path, "v: !unsafe '1.10'\n")))
    _write(tmp_path, "v: !unsafe '2.50'\n")
    assert survey.survey_inputs(loaded, settings=["v"])["given"] == {}


def _write(tmp_path, text):
    path = tmp_path / "x.yml"
    path.write_text(text)
    return path
