"""Survey answers in the form AWX writes them (an extravars file of !unsafe strings, passed with -e @file), through
real ansible-playbook runs: 'yes' confirms, '1.10' stays 1.10 (never 1.1), '30' is the number 30, a blank answer is
no answer, and the job ends with set_stats naming the AWX user and job. No stack is started (project rc-s-survey):
each run stops where the answer decides something, before anything is created."""

import os
import subprocess

from test_deploy import failures, playbook, write_inventory

PROJECT = "rc-s-survey"
PORT = 18601


def extravars(tmp_path, **answers):
    """The file AWX writes: every string answer as !unsafe '...', numbers as they are."""
    lines = []
    for name, value in answers.items():
        if isinstance(value, str):
            lines.append("%s: !unsafe '%s'" % (name, value.replace("'", "''")))
        else:
            lines.append("%s: %s" % (name, value))
    path = tmp_path / "extravars"
    path.write_text("---\n" + "\n".join(lines) + "\n")
    return "@" + str(path)


def inventory(tmp_path, **overrides):
    values = dict(rollcall_project=PROJECT, rollcall_app_port=PORT, rollcall_environment="test",
                  rollcall_state_dir=str(tmp_path / "state"), rollcall_backup_dir=str(tmp_path / "bk"))
    values.update(overrides)
    return write_inventory(tmp_path, **values)


def messages(report):
    return " ".join(str(m) for _name, m in failures(report))


def stats(report):
    return report.get("global_custom_stats", {}).get("rollcall_result", {})


def docker_names(prefix):
    out = []
    for kind in (["ps", "-a"], ["volume", "ls"], ["network", "ls"]):
        fmt = "{{.Names}}" if kind[0] == "ps" else "{{.Name}}"
        text = subprocess.run(["docker", *kind, "--format", fmt], capture_output=True, text=True, check=True).stdout
        out += [n for n in text.split() if n.startswith(prefix)]
    return out


def test_yes_confirms_a_teardown_and_the_result_names_the_awx_user_and_job(tmp_path):
    hosts = inventory(tmp_path)
    state = tmp_path / "state" / PROJECT
    state.mkdir(parents=True)
    (state / "releases.json").write_text("[]")
    proc, report = playbook(hosts, "teardown.yml", "-e", extravars(
        tmp_path, teardown_volumes="yes", confirm="yes", awx_user_name="alice", awx_job_id=4242))
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert not state.exists(), "confirm 'yes' (read by ansible-core 2.19 as true) must confirm the teardown"
    result = stats(report)
    assert result["playbook"] == "teardown" and result["status"] == "ok", result
    assert result["actor"] == "alice@awx job 4242" and str(result["awx_job_id"]) == "4242", result
    assert result["volumes_removed"] is True, result


def test_blank_answers_are_not_given(tmp_path):
    hosts = inventory(tmp_path)
    state = tmp_path / "state" / PROJECT
    state.mkdir(parents=True)
    # A blank teardown_volumes and confirm: the volumes (and the release history) stay, nothing is refused.
    proc, report = playbook(hosts, "teardown.yml", "-e", extravars(tmp_path, teardown_volumes="", confirm="",
                                                                   teardown_hosts=""))
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert state.exists() and stats(report)["volumes_removed"] is False
    # A blank -e to: the rollback picks the newest kept release itself (there is none here), instead of refusing
    # the answer '' or 'None' as a version.
    proc, report = playbook(hosts, "rollback.yml", "-e", extravars(tmp_path, to="", restore_backup="",
                                                                   rollcall_secret_key="s" * 48))
    text = messages(report)
    assert proc.returncode != 0 and "No release to roll back to." in text, text
    assert "-e to=" not in text and "None" not in text, text
    # A blank restore_backup_name: the newest backup (there is none here, which the plan says), not a backup
    # named '' or None.
    (tmp_path / "bk").mkdir()
    proc, report = playbook(hosts, "restore.yml", "-e", extravars(tmp_path, restore_backup_name="", confirm=""))
    text = messages(report)
    assert proc.returncode != 0 and "no backup" in text.lower(), text
    assert "None" not in text and "NoneType" not in text and "There is no backup  " not in text, text


def test_version_1_10_is_1_10_not_1_1(tmp_path):
    hosts = inventory(tmp_path, rollcall_db_engine="sqlite", no_db_host=True)
    # rollback: the answer is compared with kept versions as written
    proc, report = playbook(hosts, "rollback.yml", "-e", extravars(tmp_path, to="1.10"))
    text = messages(report)
    assert proc.returncode != 0 and "1.10 is not kept on every app host" in text, text
    # deploy: the missing image is named as the survey gave the version
    proc, report = playbook(hosts, "deploy.yml", "-e", extravars(tmp_path, rollcall_app_version="1.10"))
    text = messages(report)
    assert proc.returncode != 0, text
    assert "rollcall/sms-app:1.10" in text and "rollcall/sms-app:1.1 " not in text + " ", text
    assert docker_names(PROJECT) == [], "a refused deploy must not have created anything"


def test_numbers_arrive_as_numbers_and_are_checked_as_numbers(tmp_path):
    hosts = inventory(tmp_path)
    # '30' is 30 (a valid retention count); '70000' is out of range, named as it was given; 'yes' is no number.
    proc, report = playbook(hosts, "backup.yml", "--check", "-e", extravars(
        tmp_path, rollcall_backup_keep_last="30", rollcall_app_port="70000", rollcall_backup_keep_daily="yes"))
    text = messages(report)
    assert proc.returncode != 0
    assert "rollcall_app_port '70000' must be a whole number from 1 to 65535" in text, text
    assert "rollcall_backup_keep_daily 'true' must be a whole number of at least 0" in text, text
    assert "rollcall_backup_keep_last" not in text, text
    # A blank setting hides the inventory's value: refused, naming it.
    proc, report = playbook(hosts, "backup.yml", "--check", "-e", extravars(tmp_path, rollcall_app_version=""))
    assert proc.returncode != 0 and "rollcall_app_version is blank" in messages(report)
    # So does a blank number (AWX leaves an unanswered number question out; this is a mistyped -e): a blank
    # keep_daily hid the inventory's 7 and retention would have kept no daily backup.
    proc, report = playbook(hosts, "backup.yml", "--check", "-e", extravars(tmp_path, rollcall_backup_keep_daily=""))
    assert proc.returncode != 0 and "rollcall_backup_keep_daily is blank; give a whole number" in messages(report)
    assert not os.path.exists(tmp_path / "bk")


def test_a_production_teardown_needs_confirm_even_without_volumes(tmp_path):
    hosts = inventory(tmp_path, rollcall_environment="production")
    name = PROJECT + "-app"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(["docker", "run", "-d", "--name", name, "rollcall/base:bookworm", "sleep", "300"],
                   capture_output=True, check=True)
    try:
        # no answer, a blank one (no answer), and "no" (refused by the preflight in every environment). Each
        # answers file is written right before its run: extravars writes one file (built all at once, the blank
        # case ran with "no").
        for answers, said in ((None, "stops the production SMS"), ({"confirm": ""}, "stops the production SMS"),
                              ({"confirm": "no"}, "-e confirm='no' is not yes")):
            extra = ("-e", extravars(tmp_path, **answers)) if answers is not None else ()
            proc, report = playbook(hosts, "teardown.yml", *extra)
            text = messages(report)
            assert proc.returncode != 0 and said in text and "confirm=yes" in text, text
            assert name in docker_names(name), "a refused teardown removed the app container"
        proc, report = playbook(hosts, "teardown.yml", "-e", extravars(tmp_path, confirm="yes"))
        assert proc.returncode == 0, failures(report)
        assert name not in docker_names(name)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
