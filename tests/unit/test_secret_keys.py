"""plugins/module_utils/secret_keys.py: which earlier SECRET_KEYs the app keeps accepting, and for how long.
One test per branch of decide(); a fixed clock, no Ansible, no Docker."""

import json
import os
import stat
from pathlib import Path

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import secret_keys as sk
from ansible_collections.rollcall.ops.plugins.module_utils.secret_keys import SecretKeyError, SecretKeyStore, decide

T0 = 1795000000  # 2026-11-18T08:26:40Z
HOUR = 3600
WEEK = 168 * HOUR
A, B, C = "a" * 48, "b" * 56, "c" * 64
FA, FB, FC = sk.fingerprint(A), sk.fingerprint(B), sk.fingerprint(C)


def fallback(key, expires, retired_at=None):
    return {"key": key, "fingerprint": sk.fingerprint(key), "retired_at": retired_at, "expires": sk.stamp(expires)}


def record(current, fallbacks=(), since=T0 - WEEK):
    return {"version": 1, "current": {"fingerprint": sk.fingerprint(current), "since": sk.stamp(since)},
            "fallbacks": list(fallbacks)}


def keys_in(decision):
    return [item["key"] for item in json.loads(decision["env"] or "[]")]


def no_key_outside_env(decision):
    """Only env and record (written to the 0600 file) hold keys; everything reported does not."""
    shown = json.dumps({k: v for k, v in decision.items() if k not in ("env", "record")})
    return not any(key in shown for key in (A, B, C))


# ---------------------------------------------------------------------------------------------- decide()
def test_first_deploy_records_the_key_and_keeps_no_fallback():
    d = decide(A, None, None, None, T0, WEEK)
    assert d["env"] == "" and not d["rotated"] and d["changed"] and d["previous"] is None and d["event"] is None
    assert d["record"] == {"version": 1, "current": {"fingerprint": FA, "since": sk.stamp(T0)}, "fallbacks": []}
    assert d["summary"] == "SECRET_KEY %s unchanged; fallbacks: none" % FA


def test_same_key_and_same_record_changes_nothing():
    before = record(A, [fallback(B, T0 + HOUR, sk.stamp(T0 - HOUR))])
    d = decide(A, A, [], before, T0, WEEK)
    assert not d["changed"] and not d["rotated"] and d["record"] == before and d["event"] is None
    assert keys_in(d) == [B] and json.loads(d["env"]) == [{"expires": sk.stamp(T0 + HOUR), "key": B}]
    assert no_key_outside_env(d)


def test_rotation_keeps_the_live_key_until_now_plus_grace():
    d = decide(B, A, [], record(A), T0, WEEK)
    assert d["rotated"] and d["changed"] and d["previous"] == FA and d["current"] == FB
    assert d["event"] == "secret_key_rotated"
    assert d["kept"] == {"fingerprint": FA, "retired_at": sk.stamp(T0), "expires": sk.stamp(T0 + WEEK)}
    assert keys_in(d) == [A]
    assert d["record"]["current"] == {"fingerprint": FB, "since": sk.stamp(T0)}
    assert d["summary"] == ("SECRET_KEY %s replaced by %s; what %s signed stays valid until %s; fallbacks: %s until %s"
                            % (FA, FB, FA, sk.stamp(T0 + WEEK), FA, sk.stamp(T0 + WEEK)))
    assert no_key_outside_env(d)


def test_a_second_rotation_within_the_grace_keeps_both_earlier_keys_soonest_first():
    first = decide(B, A, [], record(A), T0, WEEK)["record"]
    d = decide(C, B, [], first, T0 + HOUR, WEEK)
    assert keys_in(d) == [A, B] and [f["fingerprint"] for f in d["fallbacks"]] == [FA, FB]
    assert d["fallbacks"][1]["expires"] == sk.stamp(T0 + HOUR + WEEK)


def test_expired_fallbacks_are_dropped():
    before = record(B, [fallback(A, T0 - 1), fallback(C, T0 + HOUR)])
    d = decide(B, B, [], before, T0, WEEK)
    assert d["changed"] and not d["rotated"] and keys_in(d) == [C] and d["event"] == "secret_key_fallbacks_dropped"
    assert d["dropped"] == [{"fingerprint": FA, "expires": sk.stamp(T0 - 1),
                             "reason": "its grace period ended at %s" % sk.stamp(T0 - 1)}]
    # exactly at the expiry it is over (the app compares the same way)
    assert keys_in(decide(B, B, [], record(B, [fallback(A, T0)]), T0, WEEK)) == []


def test_grace_zero_keeps_no_fallback_at_all():
    before = record(A, [fallback(C, T0 + WEEK)])
    d = decide(B, A, [], before, T0, 0)
    assert d["rotated"] and d["env"] == "" and d["kept"] is None
    assert [x["fingerprint"] for x in d["dropped"]] == [FC]
    assert "what %s signed is no longer accepted" % FA in d["summary"]
    # and without a rotation too: the way to end every grace at once
    d = decide(A, A, [], before, T0, 0)
    assert not d["rotated"] and d["changed"] and d["env"] == ""


def test_back_to_an_earlier_key_takes_it_out_of_the_fallbacks():
    before = record(B, [fallback(A, T0 + WEEK)])
    d = decide(A, B, [], before, T0 + HOUR, WEEK)
    assert d["rotated"] and keys_in(d) == [B]
    assert d["dropped"] == [{"fingerprint": FA, "expires": sk.stamp(T0 + WEEK),
                             "reason": "it is the current key again"}]


def test_a_retry_after_a_failed_release_gives_the_live_key_its_grace_from_now():
    failed = decide(B, A, [], record(A), T0, WEEK)["record"]  # recorded, then the release failed: A still live
    d = decide(B, A, [], failed, T0 + HOUR, WEEK)
    assert d["rotated"] and keys_in(d) == [A] and d["kept"]["expires"] == sk.stamp(T0 + HOUR + WEEK)


def test_without_a_record_the_live_fallbacks_are_taken_over():
    live = sk.parse_env(json.dumps([{"key": C, "expires": sk.stamp(T0 + HOUR)}, B]))
    d = decide(A, A, live, None, T0, WEEK)
    assert d["changed"] and keys_in(d) == [C, B]  # no expiry sorts last
    assert d["event"] == "secret_key_fallbacks_adopted"
    assert d["fallbacks"][1] == {"fingerprint": FB, "retired_at": None, "expires": None}
    assert d["notes"] == ["nothing was recorded on this host: the 2 fallback(s) the live app runs with are kept"]


def test_with_a_record_the_record_wins_over_the_live_fallbacks():
    """An entry removed from the record (an operator ending a grace early) is not taken back from the app."""
    live = sk.parse_env(json.dumps([{"key": C, "expires": sk.stamp(T0 + WEEK)}]))
    d = decide(A, A, live, record(A), T0, WEEK)
    assert d["env"] == "" and not d["changed"]


def test_a_previous_key_that_is_not_known_cannot_be_kept():
    d = decide(B, None, None, record(A), T0, WEEK)  # the record says A signed, but there is no container
    assert d["rotated"] and d["previous"] == FA and d["env"] == "" and d["kept"] is None
    assert d["notes"] == ["the previous key (%s) is not known on this host (no app container): what it signed is no "
                          "longer accepted" % FA]


def test_a_previous_key_shorter_than_the_app_accepts_is_not_kept():
    old = "s" * 32
    d = decide(B, old, [], None, T0, WEEK)
    assert d["rotated"] and d["env"] == "" and "shorter than 48 characters" in d["notes"][0]


def test_the_current_since_is_kept_while_the_key_stays():
    before = record(A, since=T0 - 5 * WEEK)
    assert decide(A, A, [], before, T0, WEEK)["record"]["current"]["since"] == sk.stamp(T0 - 5 * WEEK)


@pytest.mark.parametrize("key,grace,message", [("short", WEEK, "shorter than 48"), (A, -1, "0 or more")])
def test_bad_inputs_are_refused(key, grace, message):
    with pytest.raises(SecretKeyError, match=message):
        decide(key, None, None, None, T0, grace)


@pytest.mark.parametrize("bad,message", [
    ({"fallbacks": "x"}, "not an object with a list"),
    ({"fallbacks": [{"expires": None}]}, "fallback 1 has no key"),
    ({"fallbacks": [{"key": A, "expires": "tomorrow"}]}, "fallback 1: expires"),
    ({"current": "x", "fallbacks": []}, "current is not an object"),
])
def test_a_damaged_record_is_refused(bad, message):
    with pytest.raises(SecretKeyError, match=message):
        decide(A, A, [], bad, T0, WEEK)


# ---------------------------------------------------------------------------------------------- env format
def test_env_round_trip_and_order():
    fallbacks = [fallback(C, T0 + 2 * HOUR), fallback(A, T0 + HOUR)]
    text = sk.render_env(fallbacks)
    assert [f["key"] for f in sk.parse_env(text)] == [A, C]
    assert sk.render_env([]) == "" and sk.parse_env("") == [] and sk.parse_env(None) == []
    key, parsed = sk.secrets_in_env(["SECRET_KEY=" + B, "SECRET_KEY_FALLBACKS=" + text, "OTHER=x=y"])
    assert key == B and [f["fingerprint"] for f in parsed] == [FA, FC]
    assert sk.secrets_in_env(["PATH=/bin"]) == (None, [])


@pytest.mark.parametrize("bad", ["{", "{}", "[1]", '[{"expires": null}]', '[{"key": "k", "expires": 5}]'])
def test_an_unreadable_live_env_is_refused_without_its_value(bad):
    with pytest.raises(SecretKeyError) as info:
        sk.parse_env(bad)
    assert "SECRET_KEY_FALLBACKS" in str(info.value)


# ---------------------------------------------------------------------------------------------- the record
def test_store_writes_0600_atomically_and_reads_back(tmp_path):
    store = SecretKeyStore(str(tmp_path / "state"), "sms")
    assert store.read() is None and store.mode() is None
    d = decide(B, A, [], None, T0, WEEK)
    store.write(d["record"])
    assert store.read() == d["record"] and store.mode() == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(store.path)).st_mode) == 0o700
    assert os.listdir(os.path.dirname(store.path)) == [sk.RECORD]  # no temporary file left


def test_store_says_how_to_recover_from_a_damaged_record(tmp_path):
    store = SecretKeyStore(str(tmp_path / "state"), "sms")
    store.write(record(A))
    with open(store.path, "w") as handle:
        handle.write("{not json")
    with pytest.raises(SecretKeyError, match="move it aside to take over the fallbacks the live app runs with"):
        store.read()
    with open(store.path, "w") as handle:
        json.dump({"fallbacks": [{}]}, handle)
    with pytest.raises(SecretKeyError, match="fallback 1 has no key"):
        store.read()


def test_store_refuses_an_unsafe_app_name(tmp_path):
    with pytest.raises(SecretKeyError, match="cannot be used as a directory name"):
        SecretKeyStore(str(tmp_path), "..")


# ---------------------------------------------------------------------------------------------- keep(): one run
def keep(store, environment, now, check_mode=False, diff=False):
    return sk.keep(store, environment, B, 168.0, 48, now, check_mode=check_mode, diff=diff)


def test_module_check_mode_writes_nothing_and_diff_shows_no_key(tmp_path):
    store = SecretKeyStore(str(tmp_path / "state"), "sms")
    store.write(record(A))
    before = Path(store.path).read_text()
    result = keep(store, ["SECRET_KEY=" + A], T0, check_mode=True, diff=True)
    assert result["changed"] and result["rotated"] and json.loads(result["env"])[0]["key"] == A
    assert Path(store.path).read_text() == before, "check mode writes nothing"
    assert "fallback: %s retired %s, valid until %s" % (FA, sk.stamp(T0), sk.stamp(T0 + WEEK)) in \
        result["diff"]["after"]
    shown = json.dumps({k: v for k, v in result.items() if k != "env"})
    assert A not in shown and B not in shown

    result = keep(store, ["SECRET_KEY=" + A], T0)
    assert store.read()["current"]["fingerprint"] == FB and result["event"] == "secret_key_rotated"
    again = keep(store, ["SECRET_KEY=" + B, "SECRET_KEY_FALLBACKS=" + result["env"]], T0 + 60)
    assert not again["changed"] and again["env"] == result["env"]


def test_module_puts_a_loosened_record_back_to_0600(tmp_path):
    store = SecretKeyStore(str(tmp_path / "state"), "sms")
    store.write(record(B))
    os.chmod(store.path, 0o644)
    result = keep(store, ["SECRET_KEY=" + B], T0)
    assert result["changed"] and not result["rotated"] and store.mode() == 0o600
