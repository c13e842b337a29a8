"""Every setting that the roles and playbooks read as a switch or a whole number is checked by roles/preflight
before anything changes. Jinja's ``bool`` reads any word it does not know as false and ``int`` any text as 0, so a
setting outside the preflight's lists turned a typo into another setting without a word: ``-e rollcall_pitr=ture``
deployed a stack without point-in-time recovery, ``rollcall_patching_take_backup: ture`` patched without a backup,
``rollcall_pitr_archive_timeout: 1m`` gave the server ``archive_timeout = 0`` (no WAL switch at all)."""

import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "roles/preflight/defaults/main.yml").read_text())
# Read with a default that is a number, but not only a number: Ansible's serial takes "50%" too.
NOT_WHOLE_NUMBERS = {"rollcall_patching_serial"}
# The prefixes of the roles' own variables (registered results and facts, never a user's setting).
ROLE_PREFIXES = ("database_", "backup_", "drill_", "sms_app_", "patching_", "security_", "monitoring_", "rotate_",
                 "retention_", "health_", "job_result_", "maintenance_", "preflight_", "incident_", "audit_", "deploy_")


def _sources():
    paths = [*ROOT.glob("roles/*/defaults/main.yml"), *ROOT.glob("roles/*/tasks/*.yml"), *ROOT.glob("playbooks/*.yml")]
    return "\n".join(p.read_text() for p in paths if p != ROOT / "roles/preflight/defaults/main.yml")


def _settings(pattern):
    return {name for name in re.findall(pattern, _sources()) if name.startswith("rollcall_")}


def test_every_switch_setting_is_checked():
    switches = _settings(r"\b([a-z][a-z0-9_]*)\s*\|\s*default\((?:true|false|True|False)\)")
    assert {"rollcall_pitr", "rollcall_patching_take_backup", "rollcall_db_audit"} <= switches  # the scan finds them
    missing = sorted(switches - set(DEFAULTS["preflight_switches"]))
    assert missing == [], "read as true/false but not checked by roles/preflight (preflight_switches): %s" % missing


def test_every_whole_number_setting_is_checked():
    numbers = _settings(r"\b([a-z][a-z0-9_]*)\s*\|\s*default\([0-9]+\)") - NOT_WHOLE_NUMBERS
    assert {"rollcall_pitr_archive_timeout", "rollcall_backup_keep_last"} <= numbers
    missing = sorted(numbers - set(DEFAULTS["preflight_numbers"]))
    assert missing == [], "read as a number but not checked by roles/preflight (preflight_numbers): %s" % missing


def test_the_answers_read_as_switches_are_checked():
    """Answers given with -e (no rollcall_ prefix) that a role or playbook reads with ``| bool``."""
    answers = {name for name in re.findall(r"\b([a-z][a-z0-9_]*)\s*\|\s*default\((?:true|false)\)\s*\|\s*bool",
                                            _sources())
               if not name.startswith(ROLE_PREFIXES + ("rollcall_",)) and "." not in name}
    assert {"allow_unsigned", "restore_backup"} <= answers
    registered = {"app_must_reopen", "archiving", "critical", "old_serves", "reachable", "skipped"}
    missing = sorted(answers - registered - set(DEFAULTS["preflight_switches"]))
    assert missing == [], missing
