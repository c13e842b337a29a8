"""artifact: manifest signatures (item 22), cheap file checks, and what a write into an unusable directory says."""

import errno
import os

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import artifact
from ansible_collections.rollcall.ops.plugins.module_utils.artifact import ArtifactError

KEY = bytes(range(32))
OTHER = bytes(32)
PLAIN = {"file": "x.dump", "sha256": "ab" * 32, "size": 10, "encrypted": False, "key_id": None}
ENCRYPTED = dict(PLAIN, file="x.dump.enc", encrypted=True, key_id=artifact.key_id(KEY))


def manifest(data=PLAIN, version=artifact.MANIFEST_VERSION, **extra):
    return dict({"name": "postgresql-sms-20261201T030000Z-full", "manifest_version": version, "data": data,
                 "row_counts": {"public.t": 3}, "app_version": "1.0.0", "files": {}}, **extra)


def test_a_signed_manifest_passes_with_its_key():
    signed = artifact.sign_manifest(manifest(), KEY)
    assert signed["signature"]["algorithm"] == "hmac-sha256" and signed["signature"]["key_id"] == artifact.key_id(KEY)
    assert artifact.check_signature(signed, KEY).startswith("manifest signature valid")


@pytest.mark.parametrize("change", [
    lambda m: m["data"].update(sha256="cd" * 32),  # the dump replaced, its checksum recomputed
    lambda m: m["data"].update(size=11),
    lambda m: m["row_counts"].update({"public.t": 4}),
    lambda m: m.update(app_version="1.1.0"),
    lambda m: m.update(name="postgresql-sms-20261202T030000Z-full"),
])
def test_any_change_breaks_the_signature(change):
    signed = artifact.sign_manifest(manifest(data=dict(PLAIN)), KEY)
    signed["row_counts"] = dict(signed["row_counts"])
    change(signed)
    with pytest.raises(ArtifactError, match="does not match its signature.*do not restore it"):
        artifact.check_signature(signed, KEY)


def test_a_wrong_key_is_named_as_such():
    signed = artifact.sign_manifest(manifest(), KEY)
    with pytest.raises(ArtifactError, match="wrong key .*signed with key id %s, the key given has id %s"
                       % (artifact.key_id(KEY), artifact.key_id(OTHER))):
        artifact.check_signature(signed, OTHER)


def test_the_signature_survives_the_json_round_trip(tmp_path):
    written = artifact.write_manifest(str(tmp_path), "postgresql-sms-20261201T030000Z-full",
                                      dict(manifest(), duration_s=1.234, labels={"reason": "é ✓"}), key=KEY)
    again = artifact.read_manifest(str(tmp_path), written["name"])
    assert again["signature"] == written["signature"] and artifact.check_signature(again, KEY)


def test_unsigned_with_a_key_fails_unless_allowed():
    with pytest.raises(ArtifactError, match="is not signed, but a key was given.*allow_unsigned=true"):
        artifact.check_signature(manifest(), KEY)
    # Stripping the signature and claiming an old manifest version does not help a plain backup.
    with pytest.raises(ArtifactError, match="is not signed"):
        artifact.check_signature(manifest(version=1), KEY)
    assert "accepted because allow_unsigned" in artifact.check_signature(manifest(), KEY, allow_unsigned=True)


def test_an_encrypted_backup_from_before_signing_passes():
    detail = artifact.check_signature(manifest(data=ENCRYPTED, version=1), KEY)
    assert "made before manifests were signed" in detail
    with pytest.raises(ArtifactError):  # a new-version manifest must be signed
        artifact.check_signature(manifest(data=ENCRYPTED), KEY)


def test_without_a_key_nothing_can_be_checked_and_that_is_said():
    assert artifact.check_signature(manifest(), None) == "manifest not signed (no key given)"
    signed = artifact.sign_manifest(manifest(), KEY)
    assert "not checked: no key given" in artifact.check_signature(signed, None)


def test_stored_files_are_checked_cheaply(tmp_path):
    (tmp_path / "x.dump").write_bytes(b"0123456789")
    artifact.check_stored_files(str(tmp_path), manifest(), None)
    (tmp_path / "x.dump").write_bytes(b"012345678")
    with pytest.raises(ArtifactError, match="x.dump is 9 bytes, the manifest says 10"):
        artifact.check_stored_files(str(tmp_path), manifest(), None)
    with pytest.raises(ArtifactError, match="cannot read x.dump.enc"):
        artifact.check_stored_files(str(tmp_path), manifest(data=ENCRYPTED), KEY)
    (tmp_path / "x.dump.enc").write_bytes(b"0123456789")
    with pytest.raises(ArtifactError, match="wrong key"):
        artifact.check_stored_files(str(tmp_path), manifest(data=ENCRYPTED), OTHER)
    with pytest.raises(ArtifactError, match="is encrypted .*give the key"):
        artifact.check_stored_files(str(tmp_path), manifest(data=ENCRYPTED), None)


@pytest.mark.parametrize("code,expected", [
    (errno.EROFS, "Read-only file system; the backup directory /b is on a read-only file system; mount it "
                  "read-write or choose a writable directory"),
    (errno.EACCES, "Permission denied; the backup directory /b is not writable by user "),
    (errno.ENOSPC, "No space left on device; free space in /b"),
])
def test_storage_errors_say_what_failed_and_what_to_do(code, expected):
    text = artifact.storage_error("/b", OSError(code, os.strerror(code)), "writing backup X")
    assert text.startswith("writing backup X failed: ") and expected in text


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_backup_into_an_unwritable_directory_fails_clearly(tmp_path, monkeypatch, code):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path / ".x.tmp"))

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ArtifactError) as caught:
        artifact.ArtifactWriter(str(tmp_path), "postgresql-sms-20261201T030000Z-full")
    message = str(caught.value)
    assert "[Errno" not in message and "nothing was kept" in message and "rollcall_backup_dir" in message
    with pytest.raises(ArtifactError, match="writing x.json failed: .*rollcall_backup_dir"):
        artifact.write_json_atomic(str(tmp_path / "x.json"), {})
