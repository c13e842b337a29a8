"""release_plan.plan: every branch of deploy, rollback (and roll-forward) and restore, without Docker."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils.release_plan import PlanError, order, plan

V1 = {"version": "1.0.0", "image": "sms:1.0.0", "schema_revision": "0001"}
V2 = {"version": "1.1.0", "image": "sms:1.1.0", "schema_revision": "0002"}
KEPT = [V2, V1]


def steps(result):
    return result["do"]


# ------------------------------------------------------------------------------------------------ order
@pytest.mark.parametrize("a,b,revisions,expected", [
    ("0001", "0002", None, -1), ("0002", "0001", None, 1), ("0002", "0002", None, 0), (None, "0001", None, -1),
    ("0001", None, None, 1), (None, None, None, 0), ("0010", "0009", None, 1), ("ae10", "0001", None, None),
    ("b", "a", ["b", "a"], -1), ("a", "b", ["b", "a"], 1), ("c", "a", ["b", "a"], None),
])
def test_order(a, b, revisions, expected):
    assert order(a, b, revisions) == expected


def test_unknown_kind_and_missing_target_are_caller_errors():
    with pytest.raises(PlanError):
        plan("upgrade", V2)
    with pytest.raises(PlanError):
        plan("deploy", {"version": "1.1.0"})


# ------------------------------------------------------------------------------------------------ deploy
def test_first_install_migrates_without_a_backup():
    result = plan("deploy", V1, live=None, db_revision=None)
    assert result["action"] == "change"
    assert steps(result) == ["migrate", "start", "gate", "switch", "record"]
    assert result["migrate"] == {"step": "migrate", "image": "sms:1.0.0", "from": None, "to": "0001"}
    assert result["summary"].startswith("Install 1.0.0")


def test_deploy_that_migrates_backs_up_first_recording_the_live_release():
    result = plan("deploy", V2, live=V1, db_revision="0001", kept=[V1])
    assert steps(result) == ["backup", "migrate", "start", "gate", "switch", "record"]
    assert result["backup"]["app_version"] == "1.0.0", "the backup holds the data 1.0.0 served"
    assert result["migrate"]["image"] == "sms:1.1.0" and result["migrate"]["to"] == "0002"
    assert "0001 -> 0002" in result["summary"] and "from 1.0.0" in result["summary"]


def test_deploy_without_pre_deploy_backup():
    result = plan("deploy", V2, live=V1, db_revision="0001", pre_deploy_backup=False)
    assert steps(result) == ["migrate", "start", "gate", "switch", "record"]


def test_code_only_deploy():
    result = plan("deploy", dict(V2, image="sms:1.1.0-b"), live=V2, db_revision="0002")
    assert steps(result) == ["start", "gate", "switch", "record"]


def test_up_to_date_deploy_does_nothing():
    result = plan("deploy", V2, live=V2, db_revision="0002", up_to_date=True)
    assert result["action"] == "none" and steps(result) == []
    assert "nothing to do" in result["summary"]


def test_up_to_date_deploy_on_an_older_schema_migrates_only():
    # After a restore of a pre-deploy backup: 1.1.0 is live on 0001 and never gets ready; re-running the deploy
    # must bring the schema up (it used to report changed=0 and fail).
    result = plan("deploy", V2, live=V2, db_revision="0001", up_to_date=True)
    assert steps(result) == ["backup", "migrate"]
    assert result["backup"]["app_version"] == "1.1.0"


def test_deploy_of_a_release_older_than_the_schema_is_refused_naming_rollback():
    result = plan("deploy", V1, live=V2, db_revision="0002", kept=KEPT)
    assert result["action"] == "refuse" and steps(result) == []
    assert "never takes the schema down" in result["reason"]
    assert "rollback.yml -e to=1.0.0" in result["command"]
    assert "Nothing was changed" in result["summary"]
    # The inventory says 1.0.0 and 1.1.0 was deployed with -e: a deploy meant to change a setting only
    # (-e rollcall_pitr=true) is told how to keep the live release.
    assert ("Or, to keep 1.1.0 and change only other settings, run with -e rollcall_app_version=1.1.0 (or set "
            "rollcall_app_version: 1.1.0 in the inventory)." in result["command"])


def test_a_refused_deploy_without_a_live_release_names_no_version_to_keep():
    result = plan("deploy", V1, live=None, db_revision="0002", kept=KEPT)
    assert result["action"] == "refuse" and "to keep" not in result["command"]


def test_up_to_date_deploy_on_a_newer_schema_does_nothing():
    # A failed release's migration stayed (1.2.0-broken took 0001 to 0002); 1.0.0 keeps serving on it. Deploying
    # 1.0.0 again is the idempotent re-run (Molecule's idempotence), not a downgrade.
    result = plan("deploy", V1, live=V1, db_revision="0002", kept=KEPT, up_to_date=True)
    assert result["action"] == "none" and steps(result) == []
    assert "1.0.0 is live on schema 0002 (it needs 0001" in result["summary"]


def test_deploy_of_an_unkept_older_release_is_refused_naming_restore():
    result = plan("deploy", V1, live=V2, db_revision="0002", kept=[V2])
    assert result["action"] == "refuse" and "restore_backup_name" in result["command"]


def test_deploy_with_unordered_revisions_is_refused():
    result = plan("deploy", dict(V2, schema_revision="ae10"), live=V1, db_revision="0001")
    assert result["action"] == "refuse" and "rollcall_schema_revisions" in result["command"]


def test_deploy_with_an_ordered_list_of_revisions():
    result = plan("deploy", dict(V2, schema_revision="b"), live=dict(V1, schema_revision="a"), db_revision="a",
                  revisions=["a", "b"])
    assert steps(result)[:2] == ["backup", "migrate"]


# ------------------------------------------------------------------------------------------------ rollback
def test_rollback_takes_the_schema_down_after_switching_with_the_newer_image():
    result = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT)
    assert steps(result) == ["start", "gate", "switch", "record", "downgrade"]
    assert result["downgrade"] == {"step": "downgrade", "image": "sms:1.1.0", "from": "0002", "to": "0001"}
    assert result["summary"].startswith("Rolling back from 1.1.0 to 1.0.0 (schema 0002 -> 0001)")


def test_rollback_downgrades_with_the_release_that_made_the_schema():
    # The live release runs on an older schema than the database holds: the kept release on that schema
    # carries the downgrade.
    v3 = {"version": "1.2.0", "image": "sms:1.2.0", "schema_revision": "0003"}
    result = plan("rollback", V1, live=V2, db_revision="0003", kept=[v3, V2, V1])
    assert result["downgrade"]["image"] == "sms:1.2.0"


def test_roll_forward_migrates_up_with_the_target_image_after_a_backup():
    result = plan("rollback", V2, live=V1, db_revision="0001", kept=KEPT)
    assert steps(result) == ["backup", "migrate", "start", "gate", "switch", "record"]
    assert result["migrate"]["image"] == "sms:1.1.0" and result["migrate"]["to"] == "0002"
    assert result["backup"]["app_version"] == "1.0.0"
    assert result["summary"].startswith("Rolling forward from 1.0.0 to 1.1.0 (schema 0001 -> 0002)")


def test_code_only_rollback():
    other = {"version": "1.0.1", "image": "sms:1.0.1", "schema_revision": "0001"}
    result = plan("rollback", V1, live=other, db_revision="0001", kept=[other, V1])
    assert steps(result) == ["start", "gate", "switch", "record"]
    assert "code only" in result["summary"]


def test_rollback_to_the_live_release_does_nothing_and_says_so():
    result = plan("rollback", V1, live=V1, db_revision="0001", kept=KEPT, up_to_date=True)
    assert result["action"] == "none"
    assert result["summary"] == "1.0.0 is already live on schema 0001: nothing to do."


def test_rollback_to_the_live_release_with_its_schema_behind_migrates_only():
    result = plan("rollback", V2, live=V2, db_revision="0001", kept=KEPT, up_to_date=True)
    assert steps(result) == ["backup", "migrate"]


def test_rollback_to_the_live_release_with_its_schema_ahead_downgrades_only():
    result = plan("rollback", V1, live=V1, db_revision="0002", kept=KEPT, up_to_date=True)
    assert steps(result) == ["downgrade"] and result["downgrade"]["image"] == "sms:1.1.0"


def test_rollback_to_a_release_that_is_not_kept_is_refused():
    result = plan("rollback", {"version": "0.9.0", "image": "sms:0.9.0", "schema_revision": "0001"}, live=V2,
                  db_revision="0002", kept=KEPT)
    assert result["action"] == "refuse" and "1.1.0, 1.0.0" in result["command"]


def test_irreversible_rollback_is_refused_naming_the_backup():
    result = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, blockers=["migration 0002 cannot be undone"],
                  backup={"name": "pre", "schema_revision": "0001"})
    assert result["action"] == "refuse"
    assert "migration 0002 cannot be undone" in result["reason"]
    assert "restore_backup=true" in result["command"] and "(pre)" in result["command"]


def test_irreversible_rollback_after_the_standby_switch_keeps_the_code_back_and_the_schema():
    result = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, blockers=["migration 0002 cannot be undone"],
                  backup={"name": "pre", "schema_revision": "0001"}, switched=True)
    assert result["action"] == "change" and result["schema_kept"] is True
    assert steps(result) == ["start", "gate", "switch", "record"]  # hosts already on the standby skip the first three
    assert result["record"]["schema_revision"] == "0001", "recorded with what the release needs, not the db's revision"
    assert "code back, schema left at 0002" in result["summary"] and "cannot be undone" in result["summary"]
    assert "restore_backup_name=pre" in result["command"]


def test_irreversible_rollback_after_the_switch_without_a_backup_says_so():
    result = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, blockers=["x"], switched=True,
                  allow_restore=True)
    assert result["action"] == "change" and "No backup was recorded" in result["command"]


def test_reversible_rollback_after_the_standby_switch_takes_the_schema_down():
    result = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, switched=True)
    assert steps(result) == ["start", "gate", "switch", "record", "downgrade"] and "schema_kept" not in result


def test_irreversible_rollback_without_a_backup_is_refused():
    result = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, blockers=["x"], allow_restore=True)
    assert result["action"] == "refuse" and "No backup was recorded" in result["command"]


@pytest.mark.parametrize("live,db_revision,switched,action", [
    (V2, "0002", False, "change"),   # reversible: the schema goes down with the newer image
    (V2, "0002", True, "change"),    # the same after the standby switch
    (V2, "0001", False, "change"),   # code only
    (V1, "0001", False, "none"),     # already live
])
def test_a_rollback_allowed_to_restore_that_needs_no_restore_says_so(live, db_revision, switched, action):
    """-e restore_backup=true on a rollback whose schema can go where it must: no restore, and the summary says that
    the data written since the deploy stays and how to bring back the data of before it (it said nothing)."""
    result = plan("rollback", V1, live=live, db_revision=db_revision, kept=KEPT, allow_restore=True,
                  switched=switched, up_to_date=live is V1, backup={"name": "pre", "schema_revision": "0001"})
    assert result["action"] == action and "restore" not in steps(result)
    assert result["summary"].endswith("-e restore_backup=true was not needed: the schema gets there without a "
                                      "restore, so no backup is restored and the data written since that deploy "
                                      "stays (playbooks/restore.yml -e restore_backup_name=pre brings back the data "
                                      "of before it)."), result["summary"]
    # not asked: not said; a restore that runs, a refusal, or a kept schema with its own command: not said
    assert "restore_backup=true" not in plan("rollback", V1, live=live, db_revision=db_revision, kept=KEPT,
                                             switched=switched, up_to_date=live is V1)["summary"]
    for other in (plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, blockers=["x"], allow_restore=True,
                       backup={"name": "pre", "schema_revision": "0001"}),
                  plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, blockers=["x"], allow_restore=True,
                       switched=True, backup={"name": "pre", "schema_revision": "0001"}),
                  plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, blockers=["x"])):
        assert "was not needed" not in other["summary"], other["summary"]


def test_irreversible_rollback_restores_the_backup_when_allowed():
    result = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, blockers=["x"], allow_restore=True,
                  backup={"name": "pre", "schema_revision": "0001"})
    assert steps(result) == ["restore", "start", "gate", "switch", "record"]
    assert result["restore"]["name"] == "pre"


def test_irreversible_rollback_restoring_an_older_backup_migrates_it_up():
    result = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, blockers=["x"], allow_restore=True,
                  backup={"name": "pre", "schema_revision": None})
    assert steps(result) == ["restore", "migrate", "start", "gate", "switch", "record"]


def test_irreversible_rollback_with_a_backup_too_new_is_refused():
    result = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, blockers=["x"], allow_restore=True,
                  backup={"name": "pre", "schema_revision": "0002"})
    assert result["action"] == "refuse" and "restore_backup_name" in result["command"]


def test_irreversible_rollback_with_an_unordered_backup_is_refused():
    result = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, blockers=["x"], allow_restore=True,
                  backup={"name": "pre", "schema_revision": "zz"})
    assert result["action"] == "refuse" and "rollcall_schema_revisions" in result["command"]


def test_rollback_with_unordered_revisions_is_refused():
    result = plan("rollback", V1, live=V2, db_revision="zz", kept=KEPT)
    assert result["action"] == "refuse"


# ------------------------------------------------------------------------------------------------ restore
def test_no_backup_to_restore_asks_about_the_project_when_nothing_of_the_stack_runs_either():
    """Found on the demo: restore.yml -e rollcall_project=rolcall said only "There is no backup to restore"."""
    result = plan("restore", live=V2, kept=KEPT, backup=None)
    assert result["action"] == "refuse" and result["summary"] == (
        "There is no backup to restore. Nothing was changed. Make one with playbooks/backup.yml, or name one with "
        "-e restore_backup_name=NAME."), result["summary"]
    result = plan("restore", live=None, kept=[], backup=None)
    assert result["action"] == "refuse" and result["summary"].endswith(
        "-e restore_backup_name=NAME. Nor does this stack run here: is rollcall_project right? It names the stack "
        "(its containers and its backups)."), result["summary"]


def test_restore_on_the_same_schema_only_restores():
    result = plan("restore", live=V2, kept=KEPT, backup={"name": "b", "schema_revision": "0002"})
    assert steps(result) == ["restore"]
    assert result["restore"]["app_version"] == "1.1.0", "the safety backup records the live release"
    assert result["summary"].endswith("restore b into a side database, swap it in (the app keeps serving)."), \
        result["summary"]


def test_restore_of_an_older_backup_migrates_forward_with_the_live_image():
    result = plan("restore", live=V2, kept=KEPT, backup={"name": "b", "schema_revision": "0001",
                                                         "app_version": "1.0.0"})
    assert steps(result) == ["restore", "migrate"]
    assert result["migrate"] == {"step": "migrate", "image": "sms:1.1.0", "from": "0001", "to": "0002"}
    assert ("restore b into a side database, migrate 0001 -> 0002 with sms:1.1.0 there, then swap it in (the app "
            "keeps serving)") in result["summary"], result["summary"]


def test_restore_of_a_newer_backup_is_refused_naming_the_kept_release():
    result = plan("restore", live=V1, kept=KEPT, backup={"name": "b", "schema_revision": "0002",
                                                         "app_version": "1.1.0"})
    assert result["action"] == "refuse"
    assert "rollback.yml -e to=1.1.0" in result["command"] and "restore_backup_name" in result["command"]


def test_restore_of_a_newer_backup_the_live_database_is_on_already_restores_it_as_it_is():
    """Found on the demo: a deploy of a broken build migrated 0001 -> 0002, failed its gate and was rolled back;
    1.0.0 serves on 0002. The next backup (0002) was refused as "ahead of the code", which it is not more than now."""
    made = {"name": "b", "schema_revision": "0002", "app_version": "1.0.0"}
    result = plan("restore", live=V1, kept=KEPT, backup=made, db_revision="0002")
    assert result["action"] == "change" and steps(result) == ["restore"], result
    assert result["schema"] == {"from": "0002", "to": "0001"}
    assert "serves on the live database's 0002 now" in result["summary"] and "the schema stays 0002" in \
        result["summary"]
    for db in ("0001", None, "0003"):  # the database elsewhere (or unknown): still refused
        assert plan("restore", live=V1, kept=KEPT, backup=made, db_revision=db)["action"] == "refuse", db


def test_restore_of_a_newer_backup_without_a_kept_release_names_a_deploy():
    result = plan("restore", live=V1, kept=[V1], backup={"name": "b", "schema_revision": "0002",
                                                         "app_version": "1.1.0"})
    assert result["action"] == "refuse" and "made under 1.1.0" in result["command"]


def test_restore_without_a_live_release():
    result = plan("restore", live=None, backup={"name": "b", "schema_revision": "0002"})
    assert steps(result) == ["restore"] and "deploy.yml" in result["summary"]


def test_restore_without_a_backup_is_refused():
    assert plan("restore", live=V1, backup=None)["action"] == "refuse"


def test_restore_with_unordered_revisions_is_refused():
    result = plan("restore", live=V1, backup={"name": "b", "schema_revision": "zz"})
    assert result["action"] == "refuse"


def test_a_rollback_after_the_standby_switch_says_traffic_went_back_instead_of_start_gate_switch():
    result = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT, switched=True)
    assert "traffic went back to the warm standby running 1.0.0" in result["summary"], result["summary"]
    assert "start 1.0.0" not in result["summary"] and "switch traffic" not in result["summary"]
    assert result["summary"].endswith("then downgrade 0002 -> 0001 with sms:1.1.0."), result["summary"]
    unswitched = plan("rollback", V1, live=V2, db_revision="0002", kept=KEPT)
    assert "start 1.0.0, wait for /health/ready, switch traffic" in unswitched["summary"]


# ------------------------------------------------------------------------------------------------ the warm standby
# old_serves: whether the release that was live can serve on the schema the plan leaves (roles/sms_app keeps it
# running without traffic then, so that a rollback to it is one switch).
@pytest.mark.parametrize("name,kwargs,serves", [
    ("deploy that migrates", dict(kind="deploy", target=V2, live=V1, db_revision="0001", kept=[V1]), True),
    ("code-only deploy", dict(kind="deploy", target=dict(V2, image="sms:1.1.0-b"), live=V2, db_revision="0002"), True),
    ("roll forward", dict(kind="rollback", target=V2, live=V1, db_revision="0001", kept=KEPT), True),
    ("code-only rollback", dict(kind="rollback", target=V1, db_revision="0001", kept=[
        {"version": "1.0.1", "image": "sms:1.0.1", "schema_revision": "0001"}, V1],
        live={"version": "1.0.1", "image": "sms:1.0.1", "schema_revision": "0001"}), True),
    ("rollback that keeps the newer schema", dict(kind="rollback", target=V1, live=V2, db_revision="0002",
                                                  kept=KEPT, blockers=["x"], switched=True), True),
    ("rollback that downgrades", dict(kind="rollback", target=V1, live=V2, db_revision="0002", kept=KEPT), False),
    ("rollback that restores an older backup", dict(
        kind="rollback", target=V1, live=V2, db_revision="0002", kept=KEPT, blockers=["x"], allow_restore=True,
        backup={"name": "pre", "schema_revision": "0001"}), False),
    ("restore", dict(kind="restore", target=V2, live=V2, backup={"name": "b", "schema_revision": "0001"}), False),
])
def test_whether_the_release_that_was_live_can_stay_as_the_warm_standby(name, kwargs, serves):
    kind = kwargs.pop("kind")
    result = plan(kind, **kwargs)
    assert result["action"] == "change", (name, result["summary"])
    assert result.get("old_serves", False) is serves, name
