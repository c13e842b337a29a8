# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup artifacts: naming, the manifest, atomic writes, and the checksum / compression / encryption streams.

A backup is two files in one directory:

``<name>.dump[.gz][.enc]``  the engine's dump, optionally gzip-compressed, then optionally encrypted;
``<name>.manifest.json``    written last: its presence is what makes a backup complete.

``<name>`` is ``<engine>-<database>-<UTC YYYYmmddTHHMMSSZ>-<type>`` so names sort by time per database.
Data files are written under a temporary name, fsync'd, then linked into place with ``os.link`` (which, unlike
``rename``, refuses to replace an existing file), so an interrupted backup leaves no file that looks complete
and never touches an existing backup. Verification results go to ``<name>.verify.json``.

Encryption is AES-256-GCM in 1 MiB chunks (each chunk its own nonce and tag, the chunk index and a final-chunk
flag bound into the associated data), so memory stays constant and truncation, reordering or a flipped byte
anywhere is detected. The key never appears in the manifest, only a key id derived from it.

With a key, the manifest is also signed (``signature``: HMAC-SHA256 over its canonical JSON, which holds the
sha256 and size of every stored part, with a signing key derived from the backup key). That makes a backup
tamper-evident even when its data is stored plain: a dump altered together with the checksum in its manifest
no longer matches the signature. See ``check_signature`` for what an unsigned manifest means.
"""

import base64
import binascii
import contextlib
import datetime
import errno
import fcntl
import hashlib
import hmac
import json
import os
import re
import struct
import time
import zlib

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported by the modules when encryption is asked for
    HAS_CRYPTOGRAPHY = False
    InvalidTag = Exception

# 2: manifests made with a key carry a signature. Version 1 manifests predate signing.
MANIFEST_VERSION = 2
SIGNING_INFO = b"rollcall manifest signing"
CHUNK = 1024 * 1024
ENC_MAGIC = b"RCENC1\n"
NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
NAME_RE = re.compile(r"^(?P<engine>[a-z]+)-(?P<database>[A-Za-z0-9][A-Za-z0-9_.-]*)-(?P<stamp>\d{8}T\d{6}Z)-"
                     r"(?P<type>full|differential)$")
STAMP = "%Y%m%dT%H%M%SZ"


class ArtifactError(Exception):
    """Something about an artifact is wrong; the message says what and what to do."""


class WrongKey(ArtifactError):
    """The key given does not fit the backup (another key, or none for an encrypted one): about the key the caller
    gives, not the backup, so a verification that stops on it does not mark the backup failed."""


# ---------------------------------------------------------------------------------------------- naming
def safe_part(value, what):
    """``value`` when it is safe in a file name (no separators, no traversal), else ArtifactError."""
    if not isinstance(value, str) or not NAME_PART.fullmatch(value) or ".." in value:
        raise ArtifactError("%s %r cannot be used in a backup name: use letters, digits, '_', '-' or '.', "
                            "starting with a letter or digit, at most 63 characters" % (what, value))
    return value


def artifact_name(engine, database, when, kind="full"):
    if kind not in ("full", "differential"):
        raise ArtifactError("backup type must be full or differential, not %r" % kind)
    return "%s-%s-%s-%s" % (safe_part(engine, "engine"), safe_part(database, "database name"),
                            when.astimezone(datetime.timezone.utc).strftime(STAMP), kind)


class NameReservation:
    """A new backup's name, held while it is written: names have whole seconds, so a second run started in the same
    second (a schedule beside a manual run) waits for the next second instead of writing the same name and failing
    at its very end ("appeared while it was being written"). The hold is a ``.<name>.reserved`` file made with
    ``O_EXCL``; ``release()`` removes it (a run killed hard leaves it, naming a second that has passed)."""

    def __init__(self, directory, engine, database, kind="full", now=None, sleep=None, tries=10):
        now, sleep = now or utcnow, sleep or time.sleep
        self.marker = None
        for _attempt in range(tries):
            self.started = now()
            self.name = artifact_name(engine, database, self.started, kind)
            if not os.path.lexists(manifest_path(directory, self.name)):
                marker = os.path.join(directory, ".%s.reserved" % self.name)
                try:
                    os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                except FileExistsError:
                    pass
                except OSError:
                    return  # unwritable: the writer says so in its own words
                else:
                    self.marker = marker
                    return
            sleep(max(0.05, 1.0 - self.started.microsecond / 1e6))
        raise ArtifactError("no free backup name in %s: a backup of %s was started in each of the last %d seconds; "
                            "run again" % (directory, database, tries))

    def release(self):
        if self.marker:
            with contextlib.suppress(OSError):
                os.unlink(self.marker)
            self.marker = None


# A writer's temporary file (ArtifactWriter, write_json_atomic): ".<file>.<pid>.tmp"; a name reservation.
TEMP_RE = re.compile(r"^\.(?P<file>.+)\.(?P<pid>\d+)\.tmp$")
RESERVED_RE = re.compile(r"^\..+\.reserved$")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: alive
    return True


def stale_leftovers(directory, now=None, alive=_pid_alive, min_age_s=600, reserved_age_s=3600):
    """[(entry, bytes)] a writer killed hard (SIGKILL, the OOM killer, a reboot) left in ``directory``: its
    temporary file, when its process is gone and nothing wrote to it for ``min_age_s`` (a live writer keeps it
    fresh), and name reservations older than ``reserved_age_s`` (one matters only within its second). Nothing
    else is ever listed. A killed dump's temporary file is as large as the dump: each one left took that much
    space for good."""
    now = time.time() if now is None else now
    found = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return found
    for entry in sorted(entries):
        temp, reserved = TEMP_RE.match(entry), RESERVED_RE.match(entry)
        if not temp and not reserved:
            continue
        try:
            info = os.lstat(os.path.join(directory, entry))
        except OSError:
            continue
        age = now - info.st_mtime
        if (temp and age >= min_age_s and not alive(int(temp.group("pid")))) or (reserved and age >= reserved_age_s):
            found.append((entry, info.st_size))
    return found


def remove_stale_leftovers(directory, **kwargs):
    """Remove ``stale_leftovers``; returns what was removed, [(entry, bytes)]."""
    removed = []
    for entry, size in stale_leftovers(directory, **kwargs):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, entry))
            removed.append((entry, size))
    return removed


def parse_name(name):
    match = NAME_RE.fullmatch(name)
    return match.groupdict() if match else None


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def isoformat(when):
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------- keys
def load_key(key=None, key_file=None):
    """32 raw bytes from a variable or a file holding 64 hex characters, base64 of 32 bytes, or 32 raw bytes."""
    if key is None and key_file is None:
        return None
    if key_file is not None:
        try:
            with open(key_file, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise ArtifactError("cannot read the key file %s: %s" % (key_file, exc.strerror)) from None
        if len(raw) == 32:
            return raw
        key = raw.decode("ascii", "replace")
    text = key.strip() if isinstance(key, str) else key
    for decode in (bytes.fromhex, lambda s: base64.b64decode(s, validate=True)):
        try:
            value = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(value) == 32:
            return value
    raise ArtifactError("the encryption key must be 32 bytes: 64 hexadecimal characters or base64 of 32 bytes "
                        "(make one with: openssl rand -hex 32)")


def key_id(key):
    """A short public name for a key: tells which key a backup needs without revealing anything about it."""
    return hashlib.sha256(b"rollcall-backup-key-id\0" + key).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- signatures
def signing_key(key):
    """The manifest signing key: derived from the backup key, never the encryption key itself."""
    return hmac.new(key, SIGNING_INFO, hashlib.sha256).digest()


def canonical_manifest(manifest):
    """The bytes a signature covers: the manifest without its signature, as sorted, compact, ASCII JSON."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign_manifest(manifest, key):
    value = hmac.new(signing_key(key), canonical_manifest(manifest), hashlib.sha256).hexdigest()
    return dict(manifest, signature={"algorithm": "hmac-sha256", "key_id": key_id(key), "value": value})


def stored_parts(manifest):
    """Every stored file of a backup set: the dump, then its files parts (uploads)."""
    return [manifest["data"]] + list((manifest.get("files") or {}).values())


def check_signature(manifest, key, allow_unsigned=False):
    """A line saying how the manifest's authenticity was established, or ArtifactError. Pure.

    - signed, key given: the HMAC must match (a wrong key is named as such);
    - signed, no key: cannot be checked, said so (the data checks still run);
    - unsigned, no key: nothing to check;
    - unsigned, key given: a failure, because backups made with a key are signed - except a manifest that
      predates signing (manifest_version 1) whose every part is encrypted with this key (AES-GCM authenticates
      its data), or when ``allow_unsigned`` says an unsigned manifest is expected (a plain backup made without a
      key). Stripping a signature and claiming version 1 does not help a plain backup: it is not encrypted.
    """
    name = manifest.get("name", "?")
    signature = manifest.get("signature")
    if key is None:
        if signature:
            return "manifest signed with key id %s; not checked: no key given" % signature.get("key_id")
        return "manifest not signed (no key given)"
    if signature:
        if signature.get("key_id") != key_id(key):
            raise WrongKey("wrong key for backup %s: its manifest was signed with key id %s, the key given has "
                           "id %s; give the key the backup was made with"
                           % (name, signature.get("key_id"), key_id(key)))
        wanted = hmac.new(signing_key(key), canonical_manifest(manifest), hashlib.sha256).hexdigest()
        if signature.get("algorithm") != "hmac-sha256" or not hmac.compare_digest(wanted, str(signature.get("value"))):
            raise ArtifactError("the manifest of backup %s does not match its signature: the manifest, or the data "
                                "it describes, was changed after the backup was made; do not restore it" % name)
        return "manifest signature valid (key id %s)" % signature["key_id"]
    encrypted = all(p.get("encrypted") and p.get("key_id") == key_id(key) for p in stored_parts(manifest))
    if manifest.get("manifest_version", 1) < 2 and encrypted:
        return "manifest not signed (made before manifests were signed); its data is authenticated by its encryption"
    if allow_unsigned:
        return "manifest not signed; accepted because allow_unsigned is set"
    raise ArtifactError("the manifest of backup %s is not signed, but a key was given: backups made with a key are "
                        "signed, so it was made without a key or its signature was removed; if it is a plain backup "
                        "made without a key, run again with allow_unsigned=true (rotate_backup_key.yml: "
                        "-e allow_unsigned=true)" % name)


def check_stored_files(directory, manifest, key):
    """Cheap checks before reading anything: every part is there, has the recorded size, and the key fits."""
    for part in stored_parts(manifest):
        path = os.path.join(directory, part["file"])
        try:
            size = os.stat(path).st_size
        except OSError as exc:
            raise ArtifactError("backup %s: cannot read %s (%s); the backup set is incomplete"
                                % (manifest["name"], part["file"], exc.strerror)) from None
        if "size" in part and size != part["size"]:
            raise ArtifactError("backup %s: %s is %d bytes, the manifest says %d (truncated or replaced)"
                                % (manifest["name"], part["file"], size, part["size"]))
        if part.get("encrypted") and key is None:
            raise WrongKey("backup %s is encrypted (key id %s); give the key" % (manifest["name"], part["key_id"]))
        if part.get("encrypted") and key_id(key) != part["key_id"]:
            raise WrongKey("wrong key for backup %s: it needs key id %s, the key given has id %s"
                           % (manifest["name"], part["key_id"], key_id(key)))


# ---------------------------------------------------------------------------------------------- storage errors
def storage_error(directory, exc, what):
    """ArtifactError text for an OSError while writing into the backup directory: what failed, what to do."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EROFS:
        advice = ("the backup directory %s is on a read-only file system; mount it read-write or choose a "
                  "writable directory (rollcall_backup_dir, or the module's directory option)" % directory)
    elif exc.errno in (errno.EACCES, errno.EPERM):
        advice = ("the backup directory %s is not writable by user %s (uid %d); make it writable for that user "
                  "(Rollcall creates it owner-only, mode 0700) or choose another directory (rollcall_backup_dir)"
                  % (directory, _user_name(), os.geteuid()))
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "free space in %s or choose a directory with more room (rollcall_backup_dir)" % directory
    else:
        advice = "check the backup directory %s" % directory
    return "%s failed: %s; %s" % (what, reason, advice)


def _user_name():
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return "?"


# ---------------------------------------------------------------------------------------------- streams
class _Encryptor:
    def __init__(self, key, sink):
        if not HAS_CRYPTOGRAPHY:
            raise ArtifactError("encryption needs the Python package 'cryptography' on the managed host")
        self.aead = AESGCM(key)
        self.prefix = os.urandom(8)
        self.header = ENC_MAGIC + key_id(key).encode() + self.prefix
        self.sink = sink
        self.index = 0
        self.buffer = bytearray()
        sink(self.header)

    def _seal(self, data, final):
        nonce = self.prefix + struct.pack(">I", self.index)
        aad = self.header + struct.pack(">IB", self.index, 1 if final else 0)
        sealed = self.aead.encrypt(nonce, bytes(data), aad)
        self.sink(struct.pack(">I", len(sealed)) + sealed)
        self.index += 1

    def write(self, data):
        self.buffer += data
        while len(self.buffer) > CHUNK:
            self._seal(self.buffer[:CHUNK], False)
            del self.buffer[:CHUNK]

    def close(self):
        self._seal(self.buffer, True)
        self.buffer = bytearray()


def decrypt_chunks(read, key):
    """Yield plaintext chunks from ``read(n)``; ArtifactError on a wrong key, tampering or truncation."""
    if not HAS_CRYPTOGRAPHY:
        raise ArtifactError("decryption needs the Python package 'cryptography' on the managed host")
    header = _read_exact(read, len(ENC_MAGIC) + 16 + 8)
    if header is None or not header.startswith(ENC_MAGIC):
        raise ArtifactError("not an encrypted Rollcall artifact (bad header)")
    wanted = header[len(ENC_MAGIC):len(ENC_MAGIC) + 16].decode("ascii", "replace")
    if wanted != key_id(key):
        raise ArtifactError("wrong key: this artifact was encrypted with key id %s, the key given has id %s"
                            % (wanted, key_id(key)))
    aead, prefix, index = AESGCM(key), header[-8:], 0
    while True:
        size = _read_exact(read, 4)
        if size is None:
            raise ArtifactError("truncated: the encrypted stream ends before its final chunk")
        sealed = _read_exact(read, struct.unpack(">I", size)[0])
        if sealed is None:
            raise ArtifactError("truncated: encrypted chunk %d is incomplete" % index)
        nonce = prefix + struct.pack(">I", index)
        for final in (0, 1):
            try:
                plain = aead.decrypt(nonce, sealed, header + struct.pack(">IB", index, final))
                break
            except InvalidTag:
                plain = None
        if plain is None:
            raise ArtifactError("corrupt: encrypted chunk %d fails authentication (tampered or damaged)" % index)
        yield plain
        index += 1
        if final:
            if read(1):
                raise ArtifactError("corrupt: data after the final encrypted chunk")
            return


def _read_exact(read, size):
    parts, missing = [], size
    while missing:
        data = read(missing)
        if not data:
            return None  # short: the caller reports truncation
        parts.append(data)
        missing -= len(data)
    return b"".join(parts)


class ArtifactWriter:
    """Stream into ``<directory>/<name>.<part>[.gz][.enc]`` atomically; ``close()`` returns the file's facts.

    ``part`` is ``dump`` for the database, ``uploads.tar`` for a files part of the same backup set.
    Use as a context manager: leaving with an exception removes the temporary file and leaves nothing behind.
    """

    def __init__(self, directory, name, compression="none", key=None, compress_level=6, part="dump"):
        if compression not in ("none", "gzip"):
            raise ArtifactError("compression must be none or gzip, not %r" % compression)
        if not os.path.isdir(directory):
            raise ArtifactError("backup directory %s does not exist; create it first" % directory)
        self.directory = directory
        self.name = name
        suffix = "." + part + (".gz" if compression == "gzip" else "") + (".enc" if key else "")
        self.filename = name + suffix
        self.path = os.path.join(directory, self.filename)
        if os.path.lexists(self.path) or os.path.lexists(manifest_path(directory, name)):
            raise ArtifactError("backup %s already exists; refusing to overwrite it" % name)
        self.temp = os.path.join(directory, ".%s.%d.tmp" % (self.filename, os.getpid()))
        # Backups hold personal data: owner-only from the first byte.
        try:
            self.handle = os.fdopen(os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        except OSError as exc:
            raise ArtifactError(storage_error(directory, exc, "writing backup %s" % name) + "; nothing was kept") \
                from None
        self.sha256 = hashlib.sha256()
        self.stored_bytes = 0
        self.dump_bytes = 0
        self.compression = compression
        self.key_id = key_id(key) if key else None
        self._compressor = zlib.compressobj(compress_level, zlib.DEFLATED, 31) if compression == "gzip" else None
        self._encryptor = _Encryptor(key, self._store) if key else None
        self.closed = False

    def _store(self, data):
        if data:
            self.sha256.update(data)
            self.stored_bytes += len(data)
            self.handle.write(data)

    def _encrypted(self, data):
        if self._encryptor:
            self._encryptor.write(data)
        else:
            self._store(data)

    def write(self, data):
        self.dump_bytes += len(data)
        if self._compressor:
            data = self._compressor.compress(data)
        if data:
            self._encrypted(data)

    def close(self):
        """Finish the streams, fsync, link into place (never replacing a file) and return the file's facts."""
        if self._compressor:
            self._encrypted(self._compressor.flush())
        if self._encryptor:
            self._encryptor.close()
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        try:
            os.link(self.temp, self.path)
        except FileExistsError:
            raise ArtifactError("backup %s appeared while it was being written; keeping the existing one"
                                % self.filename) from None
        finally:
            os.unlink(self.temp)
        fsync_directory(self.directory)
        self.closed = True
        return {"file": self.filename, "sha256": self.sha256.hexdigest(), "size": self.stored_bytes,
                "dump_size": self.dump_bytes, "compression": self.compression, "encrypted": bool(self.key_id),
                "key_id": self.key_id}

    def abort(self):
        """Remove the temporary file; never raises (closing may fail again on a full disk)."""
        try:
            if not self.handle.closed:
                self.handle.close()
        except OSError:
            pass
        if os.path.exists(self.temp):
            os.unlink(self.temp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not self.closed:
            self.abort()
        return False


def read_plain(path, compression="none", key=None, expected_sha256=None, chunk=CHUNK):
    """Yield the dump's bytes from a stored file, checking sha256, authentication and gzip integrity.

    Raises ArtifactError at the first problem; after the last chunk every check has passed.
    """
    digest = hashlib.sha256()
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with block below
    except OSError as exc:
        raise ArtifactError("cannot open %s: %s" % (path, exc.strerror)) from None
    with handle:
        def read(size):
            data = handle.read(size)
            digest.update(data)
            return data

        encrypted = path.endswith(".enc")
        if encrypted and key is None:
            raise ArtifactError("%s is encrypted; give the key (key or key_file)" % os.path.basename(path))
        chunks = decrypt_chunks(read, key) if encrypted else iter(lambda: read(chunk), b"")
        decompressor = zlib.decompressobj(31) if compression == "gzip" else None
        try:
            for data in chunks:
                if decompressor:
                    data = decompressor.decompress(data)
                if data:
                    yield data
            if decompressor:
                tail = decompressor.flush()
                if tail:
                    yield tail
                if not decompressor.eof:
                    raise ArtifactError("truncated: the gzip stream of %s ends early" % os.path.basename(path))
        except zlib.error as exc:
            raise ArtifactError("corrupt: gzip data of %s is damaged (%s)" % (os.path.basename(path), exc)) from None
        rest = handle.read()  # an encrypted stream stops at its final chunk; hash what follows too
        digest.update(rest)
    if expected_sha256 and digest.hexdigest() != expected_sha256:
        raise ArtifactError("checksum mismatch: %s has sha256 %s, the manifest says %s"
                            % (os.path.basename(path), digest.hexdigest(), expected_sha256))


# ---------------------------------------------------------------------------------------------- files
def manifest_path(directory, name):
    return os.path.join(directory, name + ".manifest.json")


def verify_path(directory, name):
    return os.path.join(directory, name + ".verify.json")


def fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path, document, replace=False):
    """Write JSON to ``path`` via temp + fsync + link/rename. ``replace=False`` never overwrites."""
    directory = os.path.dirname(path) or "."
    temp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    try:
        with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        if os.path.exists(temp):
            os.unlink(temp)
        raise ArtifactError(storage_error(directory, exc, "writing %s" % os.path.basename(path))) from None
    try:
        if replace:
            os.replace(temp, path)
        else:
            os.link(temp, path)
    except FileExistsError:
        raise ArtifactError("%s already exists; refusing to overwrite it" % path) from None
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    fsync_directory(directory)


def write_manifest(directory, name, manifest, key=None):
    """Write the manifest (never over an existing one); signed when a key is given."""
    manifest = dict(manifest, manifest_version=MANIFEST_VERSION, name=name)
    if key is not None:
        manifest = sign_manifest(manifest, key)
    write_json_atomic(manifest_path(directory, name), manifest)
    return manifest


class InUse(ArtifactError):
    """A backup that a restore or verification is reading now (``reading``): not deleted this time."""


@contextlib.contextmanager
def reading(directory, names):
    """Hold the backups ``names`` against deletion while they are read: a shared flock on each manifest, released
    when the block ends. ``delete_backup`` takes it exclusively without waiting and keeps a backup in use (before,
    a backup.yml's retention beside a restore.yml of an older backup could delete the files under the restore).
    A manifest that is not there is left to the reader to report."""
    with contextlib.ExitStack() as stack:
        for name in names:
            try:
                handle = stack.enter_context(open(manifest_path(directory, name), "rb"))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ArtifactError(storage_error(directory, exc, "opening the manifest of %s" % name)) from None
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        yield


@contextlib.contextmanager
def deleting(directory, name):
    """The exclusive side of ``reading``: InUse at once when a reader holds ``name``."""
    try:
        fd = os.open(manifest_path(directory, name), os.O_RDONLY)
    except FileNotFoundError:
        raise ArtifactError("backup %s has no manifest in %s (incomplete or not a backup)" % (name, directory)) \
            from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InUse("backup %s is being read now (a restore or a verification): kept this time" % name) \
                from None
        yield
    finally:
        os.close(fd)


def read_manifest(directory, name):
    path = manifest_path(directory, name)
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise ArtifactError("backup %s has no manifest in %s (incomplete or not a backup)" % (name, directory)) \
            from None
    except ValueError:
        raise ArtifactError("the manifest of %s is not valid JSON (damaged)" % name) from None
    if manifest.get("name") != name:
        raise ArtifactError("the manifest %s names another backup (%s)" % (path, manifest.get("name")))
    return manifest


def list_backups(directory):
    """Names of complete backups (those with a manifest) in ``directory``, oldest first."""
    if not os.path.isdir(directory):
        return []
    names = []
    for entry in os.listdir(directory):
        if entry.endswith(".manifest.json") and not entry.startswith("."):
            name = entry[:-len(".manifest.json")]
            parsed = parse_name(name)
            if parsed:
                names.append((parsed["stamp"], name))
    return [entry[1] for entry in sorted(names)]


def record_verification(directory, name, result):
    """Keep verification results next to the backup: the latest, and the latest of each level."""
    record = read_verification(directory, name) or {}
    by_level = dict(record.get("by_level") or {})
    by_level[result["level"]] = result
    write_json_atomic(verify_path(directory, name), {"latest": result, "by_level": by_level}, replace=True)


def read_verification(directory, name):
    try:
        with open(verify_path(directory, name), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
