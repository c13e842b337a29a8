"""plugins/module_utils/images.py (issue 13 item 5): the refreshed tag, the version an app reports, the Debian suites
added, apt's simulation as the image's plan, build or not, the build file. One test per branch; no Docker."""

import pytest

from ansible_collections.rollcall.ops.plugins.filter import images as filters
from ansible_collections.rollcall.ops.plugins.module_utils import images
from ansible_collections.rollcall.ops.plugins.module_utils.images import ImageError

SIMULATION = """NOTE: This is only a simulation!
Inst libssl3 [3.0.20-1~deb12u2] (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])
Inst tzdata [2026b-0+deb12u1] (2026f-0+deb12u1 Debian:12.13/oldstable-updates [all])
Conf libssl3 (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])
"""
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n'


@pytest.mark.parametrize("ref, expected", [
    ("rollcall/sms-app:1.0.0", ("rollcall/sms-app", "1.0.0")),
    ("registry.local:5000/sms-app:1.0.0-p20261202", ("registry.local:5000/sms-app", "1.0.0-p20261202")),
])
def test_split_ref(ref, expected):
    assert images.split_ref(ref) == expected


@pytest.mark.parametrize("ref, words", [
    ("", "not empty"), ("rollcall/sms-app@sha256:abc", "not a digest"), ("rollcall/sms-app", "no tag"),
    ("registry.local:5000/sms-app", "no tag"), (":1.0", "no tag"), ("rollcall/sms-app:-bad", "invalid tag"),
])
def test_split_ref_refuses(ref, words):
    with pytest.raises(ImageError, match=words):
        images.split_ref(ref)


@pytest.mark.parametrize("version, expected", [
    ("1.0.0", "1.0.0"), ("1.0.0-p20261202", "1.0.0"), ("1.0.0-p20261202.3", "1.0.0"), ("1.2.0-broken", "1.2.0-broken"),
    ("-p20261202", "-p20261202"), (None, ""), ("1.0.0-p2026", "1.0.0-p2026"),
])
def test_base_version(version, expected):
    assert images.base_version(version) == expected
    assert filters.release_app_version(version) == expected


def test_refreshed_version_first_of_the_day():
    assert images.refreshed_version("1.0.0", "20261202") == "1.0.0-p20261202"


def test_refreshed_version_never_takes_an_existing_tag():
    existing = ["1.0.0", "1.0.0-p20261202", "1.0.0-p20261202.2"]
    assert images.refreshed_version("1.0.0", "20261202", existing) == "1.0.0-p20261202.3"


def test_refreshed_version_of_a_refreshed_image_starts_from_its_base():
    assert images.refreshed_version("1.0.0-p20261202.2", "20261203", ["1.0.0-p20261202.2"]) == "1.0.0-p20261203"


@pytest.mark.parametrize("version, date, words", [
    ("1.0.0", "2026-12-02", "YYYYMMDD"), ("", "20261202", "no version"), ("x" * 120, "20261202", "not a valid tag"),
])
def test_refreshed_version_refuses(version, date, words):
    with pytest.raises(ImageError, match=words):
        images.refreshed_version(version, date)


def test_refreshed_tag():
    assert images.refreshed_tag("rollcall/proxy:1", "20261202", ["1"]) == "rollcall/proxy:1-p20261202"


@pytest.mark.parametrize("text, expected", [
    (OS_RELEASE, "bookworm"),
    ("ID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=jammy\n", None),
    ("ID=debian\n", None),
    ("", None),
])
def test_debian_codename(text, expected):
    assert images.debian_codename(text) == expected


def test_sources_script_adds_security_and_updates():
    script = images.sources_script("bookworm", "http://deb.debian.org/")
    assert "'deb http://deb.debian.org/debian-security bookworm-security main'" in script
    assert "'deb http://deb.debian.org/debian bookworm-updates main'" in script
    assert script.endswith("> " + images.SOURCES_FILE)


@pytest.mark.parametrize("codename, security", [(None, True), ("bookworm", False)])
def test_sources_script_empty(codename, security):
    assert images.sources_script(codename, security=security) == ""


@pytest.mark.parametrize("codename, mirror, words", [
    ("Bookworm;rm", "http://deb.debian.org", "codename"), ("bookworm", "http://x' y", "mirror"),
    ("bookworm", "ftp://deb.debian.org", "mirror"),
])
def test_sources_script_refuses(codename, mirror, words):
    with pytest.raises(ImageError, match=words):
        images.sources_script(codename, mirror)


def test_probe_script():
    with_sources = images.probe_script(codename="bookworm")
    assert with_sources.startswith("set -e; printf") and with_sources.endswith("LC_ALL=C apt-get -s upgrade")
    assert images.probe_script(codename=None) == "set -e; apt-get update -qq >/dev/null; LC_ALL=C apt-get -s upgrade"


def test_plan_with_updates():
    got = images.plan("rollcall/sms-app:1.0.0", "sha256:1", SIMULATION)
    assert got["pending"] == 2 and got["security"] == 1 and got["image_id"] == "sha256:1"
    assert got["changes"][0] == {"package": "libssl3", "from": "3.0.20-1~deb12u2", "to": "3.0.22-1~deb12u2",
                                 "security": True, "action": "upgrade"}
    assert got["summary"].startswith("rollcall/sms-app:1.0.0: 2 package updates pending in the image (1 security)")
    assert "tzdata 2026b-0+deb12u1 -> 2026f-0+deb12u1" in got["summary"]


def test_plan_lists_at_most_eight_in_the_summary():
    text = "\n".join("Inst p%d [1] (2 Debian-Security:12/stable-security [all])" % n for n in range(10))
    got = images.plan("i:1", "sha256:1", text)
    assert got["pending"] == 10 and got["summary"].endswith(", ...") and "p8" not in got["summary"]


def test_plan_one_update_is_singular():
    got = images.plan("i:1", "sha256:1", "Inst p [1] (2 Debian:12/stable [all])")
    assert "1 package update pending" in got["summary"]


def test_plan_nothing_pending():
    got = images.plan("i:1", "sha256:1", "Reading package lists...\n")
    assert got["pending"] == 0 and got["changes"] == [] and got["summary"] == "i:1: its base has no pending updates"


@pytest.mark.parametrize("pending, force, expected", [
    (2, False, {"action": "build", "why": "2 package updates pending"}),
    (1, True, {"action": "build", "why": "1 package update pending"}),
    (0, True, {"action": "build", "why": "forced (nothing pending)"}),
    (0, False, {"action": "nothing", "why": "nothing pending"}),
])
def test_decide(pending, force, expected):
    assert images.decide({"pending": pending}, force) == expected


def test_labels_name_the_source_and_the_packages():
    changes = [{"package": "libssl3", "to": "3.0.22"}, {"package": "old", "to": None}]
    got = images.labels("sha256:1", "2026-12-02T17:00:00Z", changes)
    assert got == {images.LABEL_FROM: "sha256:1", images.LABEL_AT: "2026-12-02T17:00:00Z",
                   images.LABEL_PACKAGES: "libssl3=3.0.22 old=removed"}


def test_labels_cut_a_long_package_list():
    changes = [{"package": "package-%04d" % n, "to": "1.0"} for n in range(400)]
    listed = images.labels("sha256:1", "t", changes)[images.LABEL_PACKAGES]
    assert len(listed) <= images.LABEL_LIMIT and listed.endswith(" ...")


def test_dockerfile_upgrades_as_root_and_returns_to_the_user():
    text = images.dockerfile("sha256:1", "sms", "bookworm", the_labels={"b": "2", "a": 'say "hi"'})
    lines = text.splitlines()
    assert lines[0] == "FROM sha256:1" and lines[1] == "USER root" and lines[3] == "USER sms"
    assert "bookworm-security" in lines[2] and "apt-get -y -qq -o Dpkg::Options::=--force-confold upgrade" in lines[2]
    assert "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin " + images.SOURCES_FILE in lines[2]
    assert lines[4] == 'LABEL a="say \\"hi\\"" b="2"'


def test_dockerfile_without_sources_user_or_labels():
    lines = images.dockerfile("rollcall/proxy:1", "", None).splitlines()
    assert lines[2].startswith("RUN set -e; apt-get update -qq && ") and lines[3] == "USER root" and len(lines) == 4


@pytest.mark.parametrize("known, holds", [
    ({"image_id": "sha256:1", "changes": []}, True), ({"image_id": "sha256:2", "changes": []}, False),
    ({"image_id": "sha256:1"}, False), (None, False), ({}, False),
])
def test_plan_still_holds(known, holds):
    assert images.plan_still_holds(known, "sha256:1") is holds


def test_replan_gives_the_same_result_as_the_plan():
    planned = images.plan("i:1", "sha256:1", SIMULATION)
    assert images.replan("i:1", "sha256:1", planned["changes"]) == planned


def test_replan_of_nothing():
    assert images.replan("i:1", "sha256:1", []) == images.plan("i:1", "sha256:1", "")


def test_replan_refuses_changes_it_cannot_read():
    with pytest.raises(ImageError, match="lack from, to"):
        images.replan("i:1", "sha256:1", [{"package": "p"}])


# ------------------------------------------------------------------- which build a deploy uses (issue 13 item 5)
@pytest.mark.parametrize("version, key", [
    ("1.0.0-p20261202", ("20261202", 1)), ("1.0.0-p20261202.3", ("20261202", 3)), ("1.0.0", None),
    ("-p20261202", None), (None, None),
])
def test_refresh_key(version, key):
    assert images.refresh_key(version) == key


def test_pick_build_by_name():
    assert images.pick_build("1.0.0-p20261202", ["1.0.0-p20261203"])["version"] == "1.0.0-p20261202"


def test_pick_build_not_wanted():
    picked = images.pick_build("1.0.0", ["1.0.0-p20261202"], use_refreshed=False)
    assert picked["version"] == "1.0.0" and "not used" in picked["why"]


def test_pick_build_newest_of_that_version():
    candidates = ["1.0.0-p20261202", "1.0.0-p20261202.2", "1.0.0-p20261130", "1.1.0-p20261205", "1.0.0"]
    picked = images.pick_build("1.0.0", candidates)
    assert picked["version"] == "1.0.0-p20261202.2" and "newest refreshed build" in picked["why"]


def test_pick_build_none():
    picked = images.pick_build("1.0.0", ["1.1.0-p20261202"])
    assert picked["version"] == "1.0.0" and "no refreshed build" in picked["why"]


def test_pick_build_leaves_out_withdrawn():
    picked = images.pick_build("1.0.0", ["1.0.0-p20261202", "1.0.0-p20261203"], withdrawn={"1.0.0-p20261203"})
    assert picked["version"] == "1.0.0-p20261202"


def test_pick_image():
    picked = images.pick_image("rollcall/postgres:15", ["15", "15-p20261202", "16-p20261203"])
    assert picked["image"] == "rollcall/postgres:15-p20261202"


def entry(version, kind="deploy", outcome="success"):
    return {"version": version, "kind": kind, "outcome": outcome}


def test_withdrawn_after_a_rollback_of_a_refresh():
    history = [entry("1.0.0"), entry("1.0.0-p20261202"), entry("1.0.0", "rollback")]
    assert images.withdrawn_versions(history) == {"1.0.0-p20261202"}


def test_withdrawn_until_deployed_again():
    history = [entry("1.0.0"), entry("1.0.0-p20261202"), entry("1.0.0", "rollback"), entry("1.0.0-p20261202")]
    assert images.withdrawn_versions(history) == set()


def test_withdrawn_ignores_failures_and_plain_rollbacks():
    history = [entry("1.0.0"), entry("1.1.0"), entry("1.0.0", "rollback"), entry("1.0.0-p20261202", outcome="failed")]
    assert images.withdrawn_versions(history) == set()


def test_refreshed_build_filter_uses_the_history():
    history = [entry("1.0.0"), entry("1.0.0-p20261202"), entry("1.0.0", "rollback")]
    assert filters.refreshed_build("1.0.0", ["1.0.0-p20261202"], True, history)["version"] == "1.0.0"
    assert filters.refreshed_build("1.0.0", ["1.0.0-p20261202"], True, [])["version"] == "1.0.0-p20261202"


# ------------------------------------------------------------------------- the database engine's minor update
PENDING = {"pending": 2, "changes": []}
NONE_PENDING = {"pending": 0, "changes": []}


def test_db_refresh_nothing_for_sqlite():
    assert images.db_refresh_decide(PENDING, "sqlite", 60, 3600)["action"] == "nothing"


def test_db_refresh_nothing_pending():
    assert images.db_refresh_decide(NONE_PENDING, "postgresql", 60, 3600)["action"] == "nothing"


def test_db_refresh_forced():
    assert images.db_refresh_decide(NONE_PENDING, "postgresql", 60, 3600, force=True)["action"] == "refresh"


@pytest.mark.parametrize("age, words", [(None, "none found"), (7300, "the newest is 2 h old")])
def test_db_refresh_stops_without_a_recent_verified_backup(age, words):
    decision = images.db_refresh_decide(PENDING, "mariadb", age, 3600)
    assert decision["action"] == "stop" and words in decision["why"] and "playbooks/backup.yml" in decision["why"]


def test_db_refresh_with_a_backup():
    decision = images.db_refresh_decide(PENDING, "postgresql", 120, 3600)
    assert decision == {"action": "refresh", "why": "2 package updates pending; a verified backup is 2 min old"}


def test_queries_quote_and_refuse():
    assert images.count_query("postgresql", ["students", "alembic_version"]) == (
        "SELECT 'students', COUNT(*) FROM \"students\" UNION ALL "
        "SELECT 'alembic_version', COUNT(*) FROM \"alembic_version\"")
    assert images.count_query("mariadb", ["students"]) == "SELECT 'students', COUNT(*) FROM `students`"
    assert images.count_query("mariadb", []) == "SELECT 'none', 0"
    assert "table_schema = 'public'" in images.tables_query("postgresql", "sms")
    assert "table_schema = 'sms'" in images.tables_query("mariadb", "sms")
    with pytest.raises(ImageError, match="table name"):
        images.count_query("postgresql", ["x\"; DROP TABLE y"])
    with pytest.raises(ImageError, match="database name"):
        images.tables_query("mariadb", "a'b")


def test_snapshot_parses():
    snap = filters.db_snapshot("15.10 (Debian 15.10-0+deb12u1)", "students\t7\nalembic_version\t1\n")
    assert snap == {"version": "15.10", "counts": {"students": 7, "alembic_version": 1}}
    assert filters.db_snapshot("10.11.6-MariaDB-0+deb12u1", "none\t0") == {"version": "10.11.6", "counts": {}}
    with pytest.raises(ImageError, match="did not say its version"):
        images.engine_version("")


def test_db_checks_pass():
    before = {"version": "15.10", "counts": {"students": 7}}
    checks = images.db_checks(before, {"version": "15.14", "counts": {"students": 7}}, True)
    assert checks["ok"] and checks["summary"] == "engine 15.10 -> 15.14, 1 table(s) with the same row counts, " \
                                                 "the app is ready"


def test_db_checks_find_each_problem():
    before = {"version": "15.10", "counts": {"students": 7, "grades": 3}}
    after = {"version": "16.1", "counts": {"students": 6, "extra": 1}}
    checks = images.db_checks(before, after, False)
    assert not checks["ok"]
    assert checks["problems"] == ["the engine's major version changed: 15.10 -> 16.1", "table extra: no rows before, "
                                  "1 after", "table grades: 3 rows before, gone after",
                                  "table students: 7 rows before, 6 after", "the app does not answer /health/ready"]


def test_db_on_failure_at_the_build_touches_nothing():
    undo = filters.db_on_failure("db1", "rollcall/postgres:15", "", "build", "apt failed")
    assert undo["restore"] is False and undo["remove"] is False and "before the database was touched" in undo["msg"]
    assert undo["msg"].startswith("Patching stopped on db1")


def test_db_on_failure_before_the_recreate_removes_the_unused_build():
    undo = images.db_on_failure("db1", "rollcall/postgres:15", "rollcall/postgres:15-p20261202", "before", "no psql")
    assert undo["restore"] is False and undo["remove"] is True and "rollcall/postgres:15-p20261202 was removed" in \
        undo["msg"]


def test_db_on_failure_after_the_recreate_puts_the_old_image_back():
    undo = images.db_on_failure("db1", "rollcall/postgres:15", "rollcall/postgres:15-p20261202", "recreate",
                                "unhealthy")
    assert undo["restore"] is True and undo["remove"] is True
    assert undo["msg"].startswith("Patching failed on db1 at the database update (recreate: unhealthy)")
    assert "recreated on rollcall/postgres:15 again" in undo["msg"]


# ------------------------------------------------------------------ recorded_image: what a deploy keeps (db, proxy)
def test_recorded_image_without_a_record_runs_the_image_asked_for():
    assert filters.recorded_image("rollcall/proxy:1", None, ["1"]) == {
        "image": "rollcall/proxy:1", "why": "no refreshed build of rollcall/proxy:1 is recorded"}


def test_recorded_image_kept_when_still_on_the_host():
    picked = filters.recorded_image("rollcall/proxy:1", {"image": "rollcall/proxy:1-p20261202"}, ["1", "1-p20261202"])
    assert picked["image"] == "rollcall/proxy:1-p20261202" and "newest refreshed build" in picked["why"]


def test_recorded_image_gone_from_the_host():
    picked = images.recorded_image("rollcall/proxy:1", {"image": "rollcall/proxy:1-p20261202"}, ["1"])
    assert picked["image"] == "rollcall/proxy:1" and "no longer on this host" in picked["why"]


def test_recorded_image_opted_out():
    picked = images.recorded_image("rollcall/postgres:15", {"image": "rollcall/postgres:15-p20261202"},
                                   ["15-p20261202"], use_refreshed=False)
    assert picked["image"] == "rollcall/postgres:15" and "not used" in picked["why"]


@pytest.mark.parametrize("recorded", ["rollcall/postgres:16-p20261202", "other/proxy:1-p20261202", "rollcall/proxy:1"])
def test_recorded_image_of_another_image_is_not_kept(recorded):
    ref = "rollcall/postgres:15" if "postgres" in recorded else "rollcall/proxy:1"
    picked = images.recorded_image(ref, {"image": recorded}, [recorded.rpartition(":")[2]])
    assert picked["image"] == ref and "is not a refreshed build of" in picked["why"]


def test_recorded_image_unusable_record():
    picked = images.recorded_image("rollcall/proxy:1", {"image": "rollcall/proxy"}, ["1"])
    assert picked["image"] == "rollcall/proxy:1" and "no usable image" in picked["why"]


# ------------------------------------------------------------------------------------------- the proxy's refresh
def test_image_decide_filter():
    assert filters.image_decide({"pending": 0}, True)["action"] == "build"
    assert filters.image_decide({"pending": 0})["action"] == "nothing"


def test_proxy_upstream_reads_what_rollcall_switch_wrote():
    conf = '# Written by rollcall-switch at 2026-12-02T23:00:00Z\nset $rollcall_upstream "rc-it-rel-app-live:8000";\n'
    assert filters.proxy_upstream(conf) == "rc-it-rel-app-live:8000"


@pytest.mark.parametrize("conf, words", [
    ("", "has no 'set $rollcall_upstream"),
    ("# nothing here\n", "has no 'set $rollcall_upstream"),
    ('set $rollcall_upstream "a:8000";\nset $rollcall_upstream "b:8000";\n', "names 2 upstreams"),
    ('set $rollcall_upstream "a b;c:8000";\n', "is not HOST:PORT"),
    ('set $rollcall_upstream "app";\n', "is not HOST:PORT"),
    ('# Replaced on every deploy\nset $rollcall_upstream "127.0.0.1:9";\n', "default upstream"),
])
def test_proxy_upstream_refuses(conf, words):
    with pytest.raises(ImageError) as err:
        images.proxy_upstream(conf)
    assert words in str(err.value)


def test_proxy_on_failure_at_the_build_touches_nothing():
    undo = filters.proxy_on_failure("app1", "rollcall/proxy:1", "", "build", "apt failed")
    assert undo["restore"] is False and undo["remove"] is False
    assert undo["msg"].startswith("Patching stopped on app1: the proxy refresh of rollcall/proxy:1 failed before")
    assert "load balancer" not in undo["msg"]


def test_proxy_on_failure_before_the_recreate_removes_the_unused_build_and_names_the_drained_host():
    undo = images.proxy_on_failure("app1", "rollcall/proxy:1", "rollcall/proxy:1-p20261202", "before",
                                   "no upstream", drained=True)
    assert undo["restore"] is False and undo["remove"] is True
    assert "rollcall/proxy:1-p20261202 was removed" in undo["msg"]
    assert "app1 stays out of the load balancer's pool" in undo["msg"]


def test_proxy_on_failure_after_the_recreate_puts_the_old_image_back_with_the_upstream():
    undo = images.proxy_on_failure("app1", "rollcall/proxy:1", "rollcall/proxy:1-p20261202", "gate", "not ready",
                                   "rc-app:8000")
    assert undo["restore"] is True and undo["remove"] is True
    assert undo["msg"].startswith("Patching failed on app1 at the proxy refresh (gate: not ready)")
    assert "recreated on rollcall/proxy:1 again serving rc-app:8000 and rollcall/proxy:1-p20261202 removed" in \
        undo["msg"]


def test_recorded_image_of_an_untagged_image_runs_it_as_it_is():
    picked = images.recorded_image("registry.local:5000/postgres", {"image": "x:1-p20261202"}, ["1-p20261202"])
    assert picked["image"] == "registry.local:5000/postgres" and "run as it is" in picked["why"]


def test_the_throwaway_container_of_a_simulation_goes_with_its_anonymous_volumes():
    from ansible_collections.rollcall.ops.plugins.modules import image_refresh

    removed = []

    class Container:
        def start(self):
            pass

        def wait(self, timeout):
            return {"StatusCode": 0}

        def logs(self, **_):
            return b"Inst libssl3 [3.0.1] (3.0.2 Debian-Security)\n"

        def remove(self, **kwargs):
            removed.append(kwargs)

    class Containers:
        def create(self, image, **kwargs):
            assert kwargs["labels"] == {"rollcall.throwaway": "1"}
            return Container()

    class Api:
        containers = Containers()

    status, output = image_refresh.simulate(Api(), "sha256:abc", "apt-get -s upgrade", 60)
    assert status == 0 and "libssl3" in output
    assert removed == [{"force": True, "v": True}], "an image's VOLUME leaves an empty volume behind otherwise"
