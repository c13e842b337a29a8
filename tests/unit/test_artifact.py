"""plugins/module_utils/artifact.py: names, atomic writes, streams, and every way an artifact can be bad."""

import datetime
import hashlib
import os

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import artifact
from ansible_collections.rollcall.ops.plugins.module_utils.artifact import ArtifactError

KEY = bytes(range(32))
WHEN = datetime.datetime(2026, 11, 25, 3, 4, 5, tzinfo=datetime.UTC)


def payload(size=3 * artifact.CHUNK + 12345):
    """Deterministic, poorly compressible bytes (sha256 chain)."""
    out, block = bytearray(), b"seed"
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def write(tmp_path, data, name="postgresql-sms-20261125T030405Z-full", **options):
    with artifact.ArtifactWriter(str(tmp_path), name, **options) as writer:
        for start in range(0, len(data), 100_000):
            writer.write(data[start:start + 100_000])
        return writer.close()


def read_back(tmp_path, info, **options):
    return b"".join(artifact.read_plain(str(tmp_path / info["file"]), compression=info["compression"],
                                        expected_sha256=info["sha256"], **options))


def test_names_sort_by_time_and_parse():
    name = artifact.artifact_name("postgresql", "sms", WHEN)
    assert name == "postgresql-sms-20261125T030405Z-full"
    assert artifact.parse_name(name) == {"engine": "postgresql", "database": "sms", "stamp": "20261125T030405Z",
                                         "type": "full"}
    later = artifact.artifact_name("postgresql", "sms", WHEN + datetime.timedelta(seconds=1), "differential")
    assert sorted([later, name]) == [name, later]


@pytest.mark.parametrize("database", ["../etc", "a/b", "x;DROP TABLE students", "", ".hidden", "a" * 64, "a..b",
                                      "sms\n", "名前"])
def test_unsafe_database_names_are_refused(database):
    with pytest.raises(ArtifactError, match="cannot be used in a backup name"):
        artifact.artifact_name("postgresql", database, WHEN)


@pytest.mark.parametrize("options", [{}, {"compression": "gzip"}, {"key": KEY}, {"compression": "gzip", "key": KEY}])
def test_round_trip(tmp_path, options):
    data = payload()
    info = write(tmp_path, data, **options)
    assert info["dump_size"] == len(data)
    assert info["size"] == os.path.getsize(tmp_path / info["file"])
    assert info["encrypted"] is ("key" in options)
    assert read_back(tmp_path, info, key=options.get("key")) == data
    assert [p.name for p in tmp_path.iterdir()] == [info["file"]], "no temporary file is left"
    assert (tmp_path / info["file"]).stat().st_mode & 0o777 == 0o600


def test_empty_dump_round_trips(tmp_path):
    info = write(tmp_path, b"", compression="gzip", key=KEY)
    assert read_back(tmp_path, info, key=KEY) == b""


def test_never_overwrites_an_existing_backup(tmp_path):
    info = write(tmp_path, b"first")
    with pytest.raises(ArtifactError, match="already exists; refusing to overwrite"):
        write(tmp_path, b"second")
    assert (tmp_path / info["file"]).read_bytes() == b"first"


def test_failure_while_writing_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), artifact.ArtifactWriter(str(tmp_path), "sqlite-sms-20261125T030405Z-full",
                                                              compression="gzip") as writer:
        writer.write(b"partial dump")
        raise RuntimeError("database killed")
    assert list(tmp_path.iterdir()) == []


def test_key_never_lands_in_the_file_or_facts(tmp_path):
    info = write(tmp_path, payload(10_000), key=KEY)
    stored = (tmp_path / info["file"]).read_bytes()
    assert KEY not in stored and KEY.hex().encode() not in stored
    assert KEY.hex() not in repr(info)
    assert info["key_id"] == artifact.key_id(KEY) and len(info["key_id"]) == 16


def flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("options", [{}, {"compression": "gzip"}, {"key": KEY}])
def test_a_flipped_byte_in_the_middle_is_detected(tmp_path, options):
    info = write(tmp_path, payload(), **options)
    path = tmp_path / info["file"]
    flip(path, path.stat().st_size // 2)
    with pytest.raises(ArtifactError, match="checksum mismatch|corrupt"):
        read_back(tmp_path, info, key=options.get("key"))


@pytest.mark.parametrize("options", [{"compression": "gzip"}, {"key": KEY}, {"compression": "gzip", "key": KEY}])
def test_truncation_is_detected_even_without_the_manifest_checksum(tmp_path, options):
    info = write(tmp_path, payload(), **options)
    path = tmp_path / info["file"]
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 1000)
    with pytest.raises(ArtifactError, match="truncated|corrupt"):
        b"".join(artifact.read_plain(str(path), compression=info["compression"], key=options.get("key")))


def test_truncation_at_a_chunk_boundary_is_detected(tmp_path):
    info = write(tmp_path, payload(), key=KEY)
    path = tmp_path / info["file"]
    header = len(artifact.ENC_MAGIC) + 16 + 8
    first_chunk = header + 4 + artifact.CHUNK + 16
    with open(path, "r+b") as handle:
        handle.truncate(first_chunk)
    with pytest.raises(ArtifactError, match="truncated"):
        b"".join(artifact.read_plain(str(path), key=KEY))


def test_wrong_key_and_missing_key(tmp_path):
    info = write(tmp_path, b"secret rows", key=KEY)
    other = bytes(32)
    with pytest.raises(ArtifactError, match="wrong key: .* key id %s" % artifact.key_id(KEY)):
        read_back(tmp_path, info, key=other)
    with pytest.raises(ArtifactError, match="is encrypted; give the key"):
        read_back(tmp_path, info)


def test_load_key_forms(tmp_path):
    assert artifact.load_key(KEY.hex()) == KEY
    import base64

    assert artifact.load_key(base64.b64encode(KEY).decode()) == KEY
    raw = tmp_path / "raw.key"
    raw.write_bytes(KEY)
    assert artifact.load_key(key_file=str(raw)) == KEY
    hexfile = tmp_path / "hex.key"
    hexfile.write_text(KEY.hex() + "\n")
    assert artifact.load_key(key_file=str(hexfile)) == KEY
    assert artifact.load_key() is None
    with pytest.raises(ArtifactError, match="must be 32 bytes") as error:
        artifact.load_key("not-a-key-but-a-password")
    assert "not-a-key-but-a-password" not in str(error.value)
    with pytest.raises(ArtifactError, match="cannot read the key file"):
        artifact.load_key(key_file=str(tmp_path / "missing.key"))


def test_manifest_is_what_makes_a_backup_complete(tmp_path):
    d = str(tmp_path)
    complete = "sqlite-sms-20261125T030405Z-full"
    orphan = "sqlite-sms-20261125T040000Z-full"
    write(tmp_path, b"a", name=complete)
    write(tmp_path, b"b", name=orphan)  # data without manifest: an interrupted backup
    artifact.write_manifest(d, complete, {"engine": "sqlite"})
    (tmp_path / "notes.txt").write_text("not a backup")
    assert artifact.list_backups(d) == [complete]
    assert artifact.read_manifest(d, complete)["manifest_version"] == artifact.MANIFEST_VERSION
    with pytest.raises(ArtifactError, match="has no manifest"):
        artifact.read_manifest(d, orphan)
    with pytest.raises(ArtifactError, match="refusing to overwrite"):
        artifact.write_manifest(d, complete, {"engine": "sqlite"})
    (tmp_path / (orphan + ".manifest.json")).write_text("{broken")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        artifact.read_manifest(d, orphan)


def test_verification_record_is_replaced(tmp_path):
    d = str(tmp_path)
    name = "sqlite-sms-20261125T030405Z-full"
    assert artifact.read_verification(d, name) is None
    artifact.record_verification(d, name, {"level": "restore", "status": "passed"})
    artifact.record_verification(d, name, {"level": "checksum", "status": "failed"})
    record = artifact.read_verification(d, name)
    assert record["latest"] == {"level": "checksum", "status": "failed"}
    assert record["by_level"]["restore"]["status"] == "passed"


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist; create it first"):
        artifact.ArtifactWriter(str(tmp_path / "nope"), "sqlite-sms-20261125T030405Z-full")
