"""plugins/module_utils/keyring.py: the backup key ring, the key report, and re-encryption that never loses a backup."""

import hashlib
import os

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, backup, keyring
from ansible_collections.rollcall.ops.plugins.module_utils.artifact import ArtifactError
from ansible_collections.rollcall.ops.plugins.module_utils.keyring import KeyRing

A = bytes(range(32))
B = bytes(range(1, 33))
C = bytes(range(2, 34))
ID_A, ID_B, ID_C = artifact.key_id(A), artifact.key_id(B), artifact.key_id(C)
DUMP = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(50_000))  # ~1.6 MB: more than one chunk
UPLOADS = b"uploads tar bytes " * 1000


def make(directory, stamp="20261125T030405Z", key=A, compression="gzip", encrypt=True, uploads=True, project=None,
         engine="postgresql"):
    """A backup set as take_backup writes it: parts, then the manifest (signed when there is a key)."""
    name = "%s-sms-%s-full" % (engine, stamp)
    data_key = key if encrypt else None
    with artifact.ArtifactWriter(str(directory), name, compression, data_key) as writer:
        writer.write(DUMP)
        data = writer.close()
    files = {}
    if uploads:
        with artifact.ArtifactWriter(str(directory), name, compression, data_key, part="uploads.tar") as writer:
            writer.write(UPLOADS)
            files["uploads"] = dict(writer.close(), path="/data/uploads", container="app")
    manifest = {"engine": engine, "database": "sms", "type": "full", "parent": None,
                "finished_at": "2026-11-25T03:04:06Z", "row_counts": {"public.t": 3}, "data": data, "files": files}
    if project:
        manifest["project"] = project
    return artifact.write_manifest(str(directory), name, manifest, key=key)


def plain(directory, manifest, key, slot="data"):
    part = manifest["data"] if slot == "data" else manifest["files"][slot]
    return b"".join(backup.plain_stream(str(directory), manifest, key, data=part))


def snapshot(directory):
    return {entry: (directory / entry).read_bytes() for entry in sorted(os.listdir(directory))}


# ------------------------------------------------------------------------------------------- the ring
def test_load_ring_current_first_old_keys_after_without_repeats():
    ring = keyring.load_ring(B.hex(), keys=[A.hex(), B.hex(), __import__("base64").b64encode(C).decode()])
    assert ring.current == B and ring.current_id == ID_B
    assert ring.ids() == [ID_B, ID_A, ID_C]


def test_a_ring_of_old_keys_only_has_no_current_key():
    ring = keyring.load_ring(keys=[A.hex()])
    assert ring.current is None and ring.current_id is None and ring.ids() == [ID_A]


@pytest.mark.parametrize("bad", [A.hex()[:-2], "", "not a key at all"])
def test_a_truncated_or_empty_ring_entry_is_named_by_its_place_never_its_value(bad):
    with pytest.raises(ArtifactError, match="entry 2 of encryption_keys .*rollcall_backup_old_keys.*must be 32 bytes") \
            as caught:
        keyring.load_ring(B.hex(), keys=[C.hex(), bad])
    assert (bad not in str(caught.value)) or not bad


def test_a_bad_key_file_in_the_ring_is_named(tmp_path):
    good, short = tmp_path / "a.key", tmp_path / "short.key"
    good.write_text(A.hex())
    short.write_text("abcd")
    assert keyring.load_ring(key_files=[str(good)]).ids() == [ID_A]
    with pytest.raises(ArtifactError, match="entry 2 of encryption_key_files"):
        keyring.load_ring(key_files=[str(good), str(short)])
    with pytest.raises(ArtifactError, match="entry 1 of encryption_key_files .*cannot read the key file"):
        keyring.load_ring(key_files=[str(tmp_path / "missing.key")])


def test_the_backups_key_id_picks_the_key(tmp_path):
    made = make(tmp_path, key=A)
    assert keyring.needed_ids(made) == [ID_A]
    assert KeyRing(B, [A]).key_for(made) == A
    assert KeyRing(A).key_for(made) == A


def test_a_key_missing_from_the_ring_names_its_id_and_where_to_add_it(tmp_path):
    made = make(tmp_path, key=A)
    with pytest.raises(ArtifactError) as caught:
        KeyRing(B, [C]).key_for(made)
    text = str(caught.value)
    assert "wrong key for backup %s" % made["name"] in text and "key id %s" % ID_A in text
    assert "key ids given: %s, %s" % (ID_B, ID_C) in text and "rollcall_backup_old_keys" in text
    assert A.hex() not in text and B.hex() not in text


def test_an_empty_ring_leaves_the_missing_key_to_the_readers(tmp_path):
    made = make(tmp_path, key=A)
    assert KeyRing().key_for(made) is None
    with pytest.raises(ArtifactError, match="is encrypted .*key id %s.*give the key" % ID_A):
        backup.check_before_reading(str(tmp_path), made, KeyRing())


def test_a_backup_made_without_a_key_gets_the_current_key_as_before(tmp_path):
    made = make(tmp_path, key=None)
    assert keyring.needed_ids(made) == [] and KeyRing(B, [A]).key_for(made) == B


def test_a_manifest_naming_two_key_ids_is_refused(tmp_path):
    made = make(tmp_path, key=A)
    made["data"] = dict(made["data"], key_id=ID_B)
    with pytest.raises(ArtifactError, match="more than one key id .*%s, %s.*do not restore it" % (ID_A, ID_B)):
        KeyRing(B, [A]).key_for(made)


def test_resolve_passes_a_single_key_through():
    assert keyring.resolve(A, {"data": {}}) == A and keyring.resolve(None, {"data": {}}) is None


def test_the_readers_pick_each_backups_key_from_the_ring(tmp_path):
    old = make(tmp_path, "20261125T030405Z", key=A)
    new = make(tmp_path, "20261126T030405Z", key=B)
    ring = KeyRing(B, [A])
    for made in (old, new):
        chain, detail = backup.check_before_reading(str(tmp_path), made, ring)
        assert "signature valid" in detail and plain(tmp_path, made, ring) == DUMP
        assert plain(tmp_path, made, ring, "uploads") == UPLOADS
        assert backup.verify_backup(str(tmp_path), made["name"], "checksum", key=ring)["status"] == "passed"
    result = backup.verify_backup(str(tmp_path), old["name"], "checksum", key=KeyRing(B), record=False)
    # the key given, not the backup: "error" (not verified, not failed), with its cause
    assert result["status"] == "error" and result["steps"][-1]["cause"] == "key"
    assert ID_A in result["steps"][-1]["detail"]
    assert "rollcall_backup_old_keys" in result["steps"][-1]["detail"]


# ------------------------------------------------------------------------------------------- the report
def test_the_report_says_which_backup_uses_which_key(tmp_path):
    old = make(tmp_path, "20261125T030405Z", key=A)
    new = make(tmp_path, "20261126T030405Z", key=B)
    bare = make(tmp_path, "20261124T030405Z", key=None, uploads=False)
    report = keyring.key_report(str(tmp_path), KeyRing(B, [A]))
    assert report["by_key"] == {ID_B: [new["name"]], ID_A: [old["name"]], "none": [bare["name"]]}
    assert report["ring"] == [ID_B, ID_A] and report["current_key_id"] == ID_B
    byname = {i["name"]: i for i in report["backups"]}
    assert byname[old["name"]]["in_ring"] and not byname[old["name"]]["current"] and byname[new["name"]]["current"]
    assert byname[old["name"]]["encrypted"] and byname[old["name"]]["signed"]
    # the plain backup made without a key: not signed, so with a key given it needs allow_unsigned
    assert report["unreadable"] == [bare["name"]] and "allow_unsigned" in byname[bare["name"]]["problem"]
    assert keyring.key_report(str(tmp_path), KeyRing(B, [A]), allow_unsigned=True)["unreadable"] == []


def test_the_report_names_backups_the_ring_cannot_read(tmp_path):
    old = make(tmp_path, "20261125T030405Z", key=A)
    report = keyring.key_report(str(tmp_path), KeyRing(B))
    assert report["unreadable"] == [old["name"]]
    message = keyring.unreadable_message(report)
    assert message.startswith("1 backup cannot be read") and ID_A in message and "rollcall_backup_old_keys" in message


def test_the_report_lists_a_damaged_manifest_and_a_missing_file(tmp_path):
    broken = make(tmp_path, "20261125T030405Z", key=A)
    (tmp_path / (broken["name"] + ".manifest.json")).write_text("{not json")
    gone = make(tmp_path, "20261126T030405Z", key=A)
    os.unlink(tmp_path / gone["files"]["uploads"]["file"])
    report = keyring.key_report(str(tmp_path), KeyRing(A))
    assert sorted(report["unreadable"]) == sorted([broken["name"], gone["name"]])
    problems = {i["name"]: i["problem"] for i in report["backups"]}
    assert "not valid JSON" in problems[broken["name"]] and "incomplete" in problems[gone["name"]]


def test_the_report_filters_by_database(tmp_path):
    make(tmp_path, key=A)
    assert keyring.key_report(str(tmp_path), KeyRing(A), database="other")["backups"] == []
    assert len(keyring.key_report(str(tmp_path), KeyRing(A), database="sms")["backups"]) == 1


def test_leftovers_are_only_unreferenced_part_files_rollcall_writes(tmp_path):
    made = make(tmp_path, key=A)
    name = made["name"]
    for extra in (name + ".key-0123abcd.dump.gz.enc", name + ".dump", name + ".uploads.tar.enc"):
        (tmp_path / extra).write_bytes(b"x")
    for kept in (name + ".dump.gz.enc.bak", name + ".notes.txt", "other.dump", name + ".key-XYZ.dump"):
        (tmp_path / kept).write_bytes(b"x")
    expected = sorted([name + ".key-0123abcd.dump.gz.enc", name + ".dump", name + ".uploads.tar.enc"])
    assert keyring.leftovers(str(tmp_path), made) == expected
    assert keyring.remove_leftovers(str(tmp_path), made) == expected
    assert keyring.leftovers(str(tmp_path), made) == []
    assert (tmp_path / (name + ".dump.gz.enc.bak")).exists() and (tmp_path / made["data"]["file"]).exists()


# ------------------------------------------------------------------------------------------- nothing to rotate
def test_a_rotation_whose_key_every_backup_already_uses_has_nothing_to_do(tmp_path):
    make(tmp_path, "20261125T030405Z", key=A)
    why = keyring.nothing_to_rotate(keyring.key_report(str(tmp_path), KeyRing(A)))
    assert why.startswith("the 1 kept backup was made with key id %s" % ID_A)
    assert "rollcall_backup_key" in why and "rollcall_backup_old_keys" in why and "generate=true" in why
    make(tmp_path, "20261126T030405Z", key=A)
    # old keys still in the ring do not matter: no kept backup needs them (the rotation is done)
    assert "all 2 kept backups were" in keyring.nothing_to_rotate(keyring.key_report(str(tmp_path), KeyRing(A, [B])))


def test_a_rotation_has_work_when_a_backup_is_on_another_key_or_on_none():
    assert keyring.nothing_to_rotate({"backups": [], "current_key_id": ID_A}) is None  # nothing tells new from old
    for other in (ID_B, None):  # made with the previous key (the new one is set), or before there was any key
        items = [dict(item("n2", ID_A), current=True), dict(item("n1", other), current=False)]
        assert keyring.nothing_to_rotate({"backups": items, "current_key_id": ID_A}) is None


def test_a_rotation_to_a_new_key_has_work(tmp_path):
    make(tmp_path, key=A)
    assert keyring.nothing_to_rotate(keyring.key_report(str(tmp_path), KeyRing(B, [A]))) is None


# ------------------------------------------------------------------------------------------- the plan
def item(name, key_id, readable=True):
    return {"name": name, "key_id": key_id, "readable": readable, "problem": None if readable else "why"}


def test_the_plan_reencrypts_old_keys_oldest_first_and_skips_the_rest():
    items = [item("n3", ID_B), item("n2", ID_A), item("n1", ID_C), item("n0", None)]  # newest first
    todo, skipped = keyring.reencrypt_plan(items, ID_B)
    assert todo == ["n1", "n2"]
    assert "already on the current key" in skipped["n3"] and "made without a key" in skipped["n0"]


def test_the_plan_needs_the_new_key():
    with pytest.raises(ArtifactError, match="needs the new key: set rollcall_backup_key"):
        keyring.reencrypt_plan([item("n1", ID_A)], None)


def test_the_plan_refuses_everything_when_one_backup_is_unreadable():
    with pytest.raises(ArtifactError, match="nothing was re-encrypted: 1 backup cannot be read .*n2: why"):
        keyring.reencrypt_plan([item("n1", ID_A), item("n2", ID_C, readable=False)], ID_B)


def test_nothing_to_do_when_everything_is_on_the_current_key():
    assert keyring.reencrypt_plan([item("n1", ID_B)], ID_B)[0] == []


# ------------------------------------------------------------------------------------------- re-encryption
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_reencryption_moves_a_backup_to_the_new_key(tmp_path, compression):
    made = make(tmp_path, key=A, compression=compression)
    ring = KeyRing(B, [A])
    outcome = keyring.reencrypt_backup(str(tmp_path), made["name"], ring)
    assert outcome["from_key_id"] == ID_A and outcome["to_key_id"] == ID_B
    assert sorted(outcome["removed"]) == sorted(p["file"] for p in artifact.stored_parts(made))
    after = artifact.read_manifest(str(tmp_path), made["name"])
    assert keyring.needed_ids(after) == [ID_B] and after["signature"]["key_id"] == ID_B
    assert after["data"]["file"].startswith(made["name"] + ".key-%s.dump" % ID_B[:8])
    assert after["files"]["uploads"]["path"] == "/data/uploads" and after["row_counts"] == made["row_counts"]
    assert after["reencrypted"][0]["from_key_id"] == ID_A and after["reencrypted"][0]["previous_files"]
    # the old key is no longer needed; nothing else is left in the directory
    alone = KeyRing(B)
    assert backup.check_before_reading(str(tmp_path), after, alone)[1].startswith("manifest signature valid")
    assert plain(tmp_path, after, alone) == DUMP and plain(tmp_path, after, alone, "uploads") == UPLOADS
    assert sorted(os.listdir(tmp_path)) == sorted([made["name"] + ".manifest.json"]
                                                  + [p["file"] for p in artifact.stored_parts(after)])
    assert all(os.stat(tmp_path / f).st_mode & 0o777 == 0o600 for f in os.listdir(tmp_path))


def test_a_signed_plain_backup_is_signed_again_and_stays_plain(tmp_path):
    made = make(tmp_path, key=A, encrypt=False, compression="none")
    keyring.reencrypt_backup(str(tmp_path), made["name"], KeyRing(B, [A]))
    after = artifact.read_manifest(str(tmp_path), made["name"])
    assert not after["data"]["encrypted"] and after["signature"]["key_id"] == ID_B
    assert plain(tmp_path, after, KeyRing(B)) == DUMP


def test_a_failure_before_the_switch_leaves_the_old_backup_as_it_was(tmp_path, monkeypatch):
    made = make(tmp_path, key=A)
    before = snapshot(tmp_path)

    def fail(*args, **kwargs):
        raise ArtifactError("disk full")

    monkeypatch.setattr(artifact, "write_json_atomic", fail)
    with pytest.raises(ArtifactError, match="disk full"):
        keyring.reencrypt_backup(str(tmp_path), made["name"], KeyRing(B, [A]))
    assert snapshot(tmp_path) == before
    assert backup.verify_backup(str(tmp_path), made["name"], "checksum", key=A, record=False)["status"] == "passed"


def test_an_interruption_while_copying_the_second_part_removes_the_first_new_file(tmp_path, monkeypatch):
    made = make(tmp_path, key=A)
    before = snapshot(tmp_path)
    real, calls = keyring._copy_part, []

    def copy_then_interrupt(*args):
        calls.append(args)
        if len(calls) == 2:
            raise backup.Interrupted("interrupted by SIGTERM")
        return real(*args)

    monkeypatch.setattr(keyring, "_copy_part", copy_then_interrupt)
    with pytest.raises(backup.Interrupted):
        keyring.reencrypt_backup(str(tmp_path), made["name"], KeyRing(B, [A]))
    assert snapshot(tmp_path) == before


def test_a_damaged_old_backup_is_not_reencrypted_and_nothing_new_is_kept(tmp_path):
    made = make(tmp_path, key=A, uploads=False)
    path = tmp_path / made["data"]["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    before = snapshot(tmp_path)
    with pytest.raises(ArtifactError, match="fails authentication|checksum mismatch"):
        keyring.reencrypt_backup(str(tmp_path), made["name"], KeyRing(B, [A]))
    assert snapshot(tmp_path) == before


def test_a_new_copy_that_does_not_read_back_is_removed(tmp_path, monkeypatch):
    made = make(tmp_path, key=A, uploads=False)
    before = snapshot(tmp_path)
    real = artifact.read_plain

    def reads_other_bytes(path, *args, **kwargs):
        for chunk in real(path, *args, **kwargs):
            yield chunk if ".key-" not in path else chunk[:-1]

    monkeypatch.setattr(artifact, "read_plain", reads_other_bytes)
    with pytest.raises(ArtifactError, match="does not read back the data of"):
        keyring.reencrypt_backup(str(tmp_path), made["name"], KeyRing(B, [A]))
    assert snapshot(tmp_path) == before


def test_files_left_by_a_killed_run_are_cleaned_up_by_the_next(tmp_path):
    made = make(tmp_path, key=A)
    # killed after linking a new part: an unreferenced file with the name the next run needs
    orphan = "%s.key-%s.dump.gz.enc" % (made["name"], ID_B[:8])
    (tmp_path / orphan).write_bytes(b"half")
    outcome = keyring.reencrypt_backup(str(tmp_path), made["name"], KeyRing(B, [A]))
    assert orphan in outcome["removed"]
    after = artifact.read_manifest(str(tmp_path), made["name"])
    assert plain(tmp_path, after, KeyRing(B)) == DUMP and keyring.leftovers(str(tmp_path), after) == []


def test_killed_after_the_switch_the_new_set_is_the_backup_and_the_old_files_are_leftovers(tmp_path):
    made = make(tmp_path, key=A)
    old_files = {f: (tmp_path / f).read_bytes() for f in (p["file"] for p in artifact.stored_parts(made))}
    keyring.reencrypt_backup(str(tmp_path), made["name"], KeyRing(B, [A]))
    for name, content in old_files.items():  # as if killed before the old files were removed
        (tmp_path / name).write_bytes(content)
    after = artifact.read_manifest(str(tmp_path), made["name"])
    report = keyring.key_report(str(tmp_path), KeyRing(B))
    assert report["unreadable"] == [] and report["backups"][0]["leftovers"] == sorted(old_files)
    assert keyring.reencrypt_plan(report["backups"], ID_B)[0] == []
    assert sorted(keyring.remove_leftovers(str(tmp_path), after)) == sorted(old_files)


def test_reencryption_needs_the_new_key_and_the_old_one(tmp_path):
    made = make(tmp_path, key=A)
    with pytest.raises(ArtifactError, match="needs the new key"):
        keyring.reencrypt_backup(str(tmp_path), made["name"], KeyRing(None, [A]))
    with pytest.raises(ArtifactError, match="key id %s, which is not in the key ring" % ID_A):
        keyring.reencrypt_backup(str(tmp_path), made["name"], KeyRing(B))


def test_the_verification_record_of_a_reencryption():
    record = keyring.verification_result({"name": "n", "from_key_id": ID_A, "to_key_id": ID_B}, "t", 1.5)
    assert record["status"] == "passed" and record["level"] == "checksum"
    assert ID_A in record["steps"][0]["detail"] and ID_B in record["steps"][0]["detail"]


def test_the_module_keeps_to_its_stack_in_a_shared_directory(tmp_path):
    """rollcall.ops.backup_keys with engine and project (roles/backup tasks/rotate_key.yml): in a backup directory
    other stacks share, their backups (another project's with a key this ring lacks, another engine's) are neither
    judged nor re-encrypted. Without the filter the other project's backup made the rotation refuse ("cannot be
    read"), and with a shared key it would have been re-encrypted to a key its own inventory does not have."""
    from modules import run_module

    ours = make(tmp_path, "20261125T030405Z", key=A, project="pa")
    theirs = make(tmp_path, "20261126T030405Z", key=B, project="pb")
    other_engine = make(tmp_path, "20261127T030405Z", key=A, project="pa", engine="mysql")
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path) if not n.startswith(ours["name"])}
    args = {"directory": str(tmp_path), "engine": "postgresql", "database": "sms", "project": "pa",
            "encryption_key": C.hex(), "encryption_keys": [A.hex()]}
    rc, result, _ = run_module("backup_keys", dict(args, require_readable=True))
    assert rc == 0, result.get("msg")
    assert [i["name"] for i in result["backups"]] == [ours["name"]], result["backups"]
    rc, result, _ = run_module("backup_keys", dict(args, action="reencrypt"))
    assert rc == 0 and result["changed"], result.get("msg")
    assert [r["name"] for r in result["reencrypted"]] == [ours["name"]], result["reencrypted"]
    after = {n: (tmp_path / n).read_bytes() for n in before}
    assert after == before, "another stack's backup changed"
    assert artifact.read_manifest(str(tmp_path), theirs["name"])["data"]["key_id"] == ID_B
    assert artifact.read_manifest(str(tmp_path), other_engine["name"])["data"]["key_id"] == ID_A
    assert plain(tmp_path, artifact.read_manifest(str(tmp_path), ours["name"]), C) == DUMP


# ------------------------------------------------------------------------------------------- continuity
def everything(manifest):
    return True


def test_newest_keyed_skips_other_stacks_unkeyed_and_damaged_backups(tmp_path):
    assert keyring.newest_keyed(str(tmp_path), everything) is None
    make(tmp_path, "20261125T010000Z", key=A, project="sms")
    make(tmp_path, "20261125T020000Z", key=B, project="other")
    make(tmp_path, "20261125T030000Z", key=None, encrypt=False, project="sms")
    (tmp_path / "postgresql-sms-20261125T040000Z-full.manifest.json").write_text("{not json")
    ours = keyring.newest_keyed(str(tmp_path), lambda m: m.get("project") == "sms")
    assert ours == ("postgresql-sms-20261125T010000Z-full", ID_A)
    assert keyring.newest_keyed(str(tmp_path), everything) == ("postgresql-sms-20261125T020000Z-full", ID_B)


def test_the_key_that_made_the_newest_backup_or_a_ring_holding_it_passes():
    assert keyring.key_break(None, KeyRing(A), "sms") is None  # no backup names a key: a first key, or plain ones
    assert keyring.key_break(("n", ID_A), KeyRing(A), "sms") is None
    assert keyring.key_break(("n", ID_A), KeyRing(B, [A]), "sms") is None  # a rotation keeps the old key


def test_another_key_is_refused_naming_both_ids_and_the_ways_on():
    said = keyring.key_break(("postgresql-sms-20261125T010000Z-full", ID_A), KeyRing(B, [C]), "sms")
    assert said.startswith("Nothing was backed up: the newest backup of sms here, postgresql-sms-20261125T010000Z-"
                           "full, was made with key id %s, and the key given now has key id %s, with %s not in the "
                           "key ring" % (ID_A, ID_B, ID_A))
    assert "playbooks/rotate_backup_key.yml" in said and "-e rollcall_backup_key_lost=true" in said
    assert A.hex() not in said and B.hex() not in said


def test_no_key_after_keyed_backups_is_refused_too():
    said = keyring.key_break(("n", ID_A), KeyRing(None), "sms")
    assert "and no backup key is given now, with %s not in the key ring" % ID_A in said
