# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup key ring: which key reads which backup, the key report, and re-encryption to the current key.

A ring is the current key (``encryption_key``: what new backups are made with) and the previous keys
(``encryption_keys``; the playbooks fill it from ``rollcall_backup_old_keys``). Every backup names the key it was
made with by key id (the manifest's signature and each encrypted part); reading a backup picks that key from the
ring. A backup whose key is not in the ring fails with an error naming its key id and the variable to add it to.

Re-encryption (``reencrypt_backup``) never touches the old files until the new set is complete and read back:

1. copy every part (checked read of the old one: sha256, authentication) into new files ``<name>.key-<id8>.<part>``
   encrypted with the current key, then read each new file back (sha256, decryption) and compare its plain bytes
   with the old part's;
2. replace the manifest in one rename (signed with the current key, naming the new files): before that rename the
   old set is the backup, after it the new one, and each is complete at every moment;
3. only then remove the old files. Whatever fails or interrupts steps 1-2, the new files are removed and the old
   backup is as it was; files left by a hard kill are never referenced by a manifest and are removed by the next
   run (``leftovers``).
"""

import contextlib
import hashlib
import os
import re

from . import artifact
from .artifact import ArtifactError, WrongKey

RING_VARIABLE = "rollcall_backup_old_keys"
CURRENT_VARIABLE = "rollcall_backup_key"
HOW_TO_ADD = ("add the key it was made with to the key ring: the inventory variable %s (a list, in the vault; the "
              "modules' option encryption_keys), and keep %s for the new key" % (RING_VARIABLE, CURRENT_VARIABLE))


class KeyRing:
    """The current key (or None) and every key that may read a backup, by key id."""

    def __init__(self, current=None, old=()):
        self.current = current
        self.keys = {}
        for key in ([current] if current is not None else []) + list(old):
            self.keys.setdefault(artifact.key_id(key), key)

    @property
    def current_id(self):
        return artifact.key_id(self.current) if self.current is not None else None

    def ids(self):
        return list(self.keys)

    def key_for(self, manifest):
        """The key that reads ``manifest``'s backup; None when the ring is empty (the readers then say the key is
        missing, or that a signature could not be checked). ArtifactError when the ring lacks the backup's key."""
        ids = needed_ids(manifest)
        name = manifest.get("name", "?")
        if not ids:
            return self.current  # made without a key: the same as a single key today (check_signature decides)
        if len(ids) > 1:
            raise ArtifactError("backup %s names more than one key id (%s): its manifest does not match its data; do "
                                "not restore it" % (name, ", ".join(ids)))
        if ids[0] in self.keys:
            return self.keys[ids[0]]
        if not self.keys:
            return None
        raise WrongKey("wrong key for backup %s: it was made with key id %s, which is not in the key ring (key "
                       "ids given: %s); %s" % (name, ids[0], ", ".join(self.keys), HOW_TO_ADD))


def resolve(key, manifest):
    """The key for ``manifest``: picked from a KeyRing, or the single key (or None) as given."""
    return key.key_for(manifest) if isinstance(key, KeyRing) else key


def needed_ids(manifest):
    """Key ids a backup was made with, in order, without repeats: its signature's, then each encrypted part's."""
    ids = []
    signature = manifest.get("signature") or {}
    candidates = [signature.get("key_id")] + [p.get("key_id") for p in artifact.stored_parts(manifest)
                                              if p.get("encrypted")]
    for kid in candidates:
        if kid and kid not in ids:
            ids.append(kid)
    return ids


def load_ring(key=None, key_file=None, keys=None, key_files=None):
    """A KeyRing from the modules' options; a bad entry is named by its place in the list, never by its value."""
    current = artifact.load_key(key, key_file)
    old = []
    for option, values, load in (("encryption_keys", keys, artifact.load_key),
                                 ("encryption_key_files", key_files, lambda v: artifact.load_key(key_file=v))):
        for index, value in enumerate(values or []):
            try:
                old.append(load(value))
            except ArtifactError as exc:
                raise ArtifactError("entry %d of %s (the key ring, %s) is not usable: %s; fix or remove that entry"
                                    % (index + 1, option, RING_VARIABLE, exc)) from None
    return KeyRing(current, old)


def ring_from_params(params):
    return load_ring(params.get("encryption_key"), params.get("encryption_key_file"), params.get("encryption_keys"),
                     params.get("encryption_key_files"))


# ---------------------------------------------------------------------------------------------- continuity
LOST_SWITCH = "rollcall_backup_key_lost"


def first_keyed(manifests):
    """(name, key id) of the first of ``manifests`` ((name, manifest) pairs, newest first) that names a key; None
    when none does (all made without a key, or none at all)."""
    for name, manifest in manifests:
        ids = needed_ids(manifest)
        if ids:
            return name, ids[0]
    return None


def newest_keyed(directory, keep):
    """``first_keyed`` over the backups in ``directory`` whose manifest ``keep`` accepts, newest first. Reads
    manifests only; a damaged one is skipped (the verification names it)."""
    def kept():
        for name in reversed(artifact.list_backups(directory)):
            try:
                manifest = artifact.read_manifest(directory, name)
            except ArtifactError:
                continue
            if keep(manifest):
                yield name, manifest

    return first_keyed(kept())


def key_break(newest, ring, database, lead="Nothing was backed up", subject=None, lost_way=None):
    """Why a new backup with ``ring``'s current key would silently leave the older backups unreadable, or None.
    Pure. ``newest``: ``newest_keyed``'s answer for this database.

    The newest backup names the key it was made with; when that key is neither the current one nor in the ring,
    the key the inventory gives now is another one: a deleted or regenerated key file (the demo makes a new one
    when the file is missing), a wrong vault or AWX credential. A rotation keeps the old key in the ring, so it
    passes; a stack whose backups were all made without a key passes too. ``lead`` and ``subject`` word it for
    another artifact (the archived binary log: "Nothing was archived", "the newest archived log file"), and
    ``lost_way`` says what to do when the old key is lost for good (default: ``-e rollcall_backup_key_lost=true``)."""
    if newest is None:
        return None
    name, made_with = newest
    if made_with in ring.keys:
        return None
    given = ("the key given now has key id %s" % ring.current_id) if ring.current is not None else \
        "no backup key is given now"
    return ("%s: %s, %s, was made with key id %s, and %s, with %s not in the key ring. Going on would start another "
            "key without a word and leave what was made before unreadable with this inventory's keys. If the key "
            "was changed or lost by mistake, put it back where the "
            "inventory reads it (%s or rollcall_backup_key_file; the demo keeps it in .secrets/local/backup_key and "
            "makes a new one when that file is missing). To change the key on purpose: "
            "playbooks/rotate_backup_key.yml (the old key goes into %s). If the old key is lost for good: %s."
            % (lead, subject or "the newest backup of %s here" % database, name, made_with, given, made_with,
               CURRENT_VARIABLE, RING_VARIABLE,
               lost_way or "-e %s=true (the module's option key_lost)" % LOST_SWITCH))


# ---------------------------------------------------------------------------------------------- report
LEFTOVER = r"^%s\.(key-[0-9a-f]{8}\.)?(dump|[a-z]+\.tar)(\.gz)?(\.enc)?$"


def leftovers(directory, manifest):
    """Part files of this backup that its manifest does not name: an interrupted re-encryption's new files, or the
    old files of a finished one. Only names Rollcall writes match; nothing else is ever listed."""
    pattern = re.compile(LEFTOVER % re.escape(manifest["name"]))
    used = {p["file"] for p in artifact.stored_parts(manifest)}
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    return sorted(e for e in entries if pattern.fullmatch(e) and e not in used)


def key_report(directory, ring, database=None, allow_unsigned=False, keep=None):
    """Which backups use which key id, and whether the ring reads each (signature and files checked, no data read).

    Newest first. ``readable`` is false with a ``problem`` for a backup the ring cannot read or that is damaged.
    ``keep``: a manifest -> bool filter (the module passes backup.select's engine, database and project: a backup
    directory shared by stacks holds other stacks' backups, which this stack's key ring must neither judge nor
    re-encrypt); damaged manifests are always listed.
    """
    items = []
    for name in reversed(artifact.list_backups(directory)):
        try:
            manifest = artifact.read_manifest(directory, name)
        except ArtifactError as exc:
            items.append({"name": name, "database": None, "key_id": None, "readable": False, "problem": str(exc),
                          "in_ring": False, "current": False, "encrypted": None, "signed": None, "leftovers": []})
            continue
        if database is not None and manifest.get("database") != database:
            continue
        if keep is not None and not keep(manifest):
            continue
        ids = needed_ids(manifest)
        item = {"name": name, "database": manifest.get("database"), "key_id": ids[0] if ids else None,
                "encrypted": any(p.get("encrypted") for p in artifact.stored_parts(manifest)),
                "signed": bool(manifest.get("signature")), "in_ring": bool(ids) and ids[0] in ring.keys,
                "current": bool(ids) and ids[0] == ring.current_id, "readable": True, "problem": None,
                "leftovers": leftovers(directory, manifest)}
        try:
            key = ring.key_for(manifest)
            artifact.check_signature(manifest, key, allow_unsigned)
            artifact.check_stored_files(directory, manifest, key)
        except (ArtifactError, KeyError, TypeError) as exc:
            item.update(readable=False, problem=str(exc))
        items.append(item)
    by_key = {}
    for item in items:
        by_key.setdefault(item["key_id"] or "none", []).append(item["name"])
    return {"backups": items, "by_key": by_key, "unreadable": [i["name"] for i in items if not i["readable"]],
            "ring": ring.ids(), "current_key_id": ring.current_id}


def unreadable_message(report):
    """One line naming every backup the ring cannot read and why (the problems name the key ids)."""
    bad = [i for i in report["backups"] if not i["readable"]]
    return "%d backup%s cannot be read with the key ring: %s" % (
        len(bad), "" if len(bad) == 1 else "s", "; ".join("%s: %s" % (i["name"], i["problem"]) for i in bad))


def nothing_to_rotate(report):
    """Why a key rotation has nothing to do, from ``key_report``; None when it has. Pure.

    Nothing to do when backups are kept and every one was made with the current key: that key is already the one in
    use, so it is not a new one (the new key was not set yet, or this rotation is done and the backups on the old
    keys were re-encrypted or have gone). Without kept backups there is nothing to tell a new key from an old one.
    """
    items = report["backups"]
    if not items or not all(i["current"] for i in items):
        return None
    return ("%s made with key id %s, the current key (%s), so it is not a new key; to rotate, "
            "set the new key as %s and move this one into %s first (docs/backups.md, \"Rotating the backup key\"; "
            "the demo inventory makes its own with -e generate=true)" % (
                "the 1 kept backup was" if len(items) == 1 else "all %d kept backups were" % len(items),
                report["current_key_id"], CURRENT_VARIABLE, CURRENT_VARIABLE, RING_VARIABLE))


# ---------------------------------------------------------------------------------------------- re-encryption
def reencrypt_plan(items, current_id):
    """(names to re-encrypt oldest first, {name: why skipped}) from ``key_report`` items. Pure.

    Refuses (ArtifactError, nothing done) without a current key or when any backup cannot be read with the ring.
    """
    if current_id is None:
        raise ArtifactError("re-encryption needs the new key: set %s (the modules' encryption_key or "
                            "encryption_key_file)" % CURRENT_VARIABLE)
    bad = [i for i in items if not i["readable"]]
    if bad:
        raise ArtifactError("nothing was re-encrypted: " + unreadable_message({"backups": items}))
    todo, skipped = [], {}
    for item in reversed(items):  # items are newest first
        if item["key_id"] is None:
            skipped[item["name"]] = "made without a key (plain and unsigned): nothing to re-encrypt"
        elif item["key_id"] == current_id:
            skipped[item["name"]] = "already on the current key %s" % current_id
        else:
            todo.append(item["name"])
    return todo, skipped


def part_kind(slot):
    """The ``part`` argument of ArtifactWriter for a stored part: the dump, or ``<files key>.tar``."""
    return "dump" if slot == "data" else "%s.tar" % slot


def remove_leftovers(directory, manifest):
    removed = []
    for entry in leftovers(directory, manifest):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, entry))
        removed.append(entry)
    if removed:
        artifact.fsync_directory(directory)
    return removed


def _copy_part(directory, stem, part, kind, old_key, new_key):
    """Write ``part`` again under ``stem`` with ``new_key`` (when it was encrypted), then read the new file back.

    Returns the new file's facts; the new file is removed when anything fails."""
    source = os.path.join(directory, part["file"])
    compression = part.get("compression") or "none"
    plain = hashlib.sha256()
    try:
        with artifact.ArtifactWriter(directory, stem, compression, new_key if part.get("encrypted") else None,
                                     part=kind) as writer:
            for chunk in artifact.read_plain(source, compression, key=old_key, expected_sha256=part["sha256"]):
                plain.update(chunk)
                writer.write(chunk)
            facts = writer.close()
    except OSError as exc:
        raise ArtifactError(artifact.storage_error(directory, exc, "re-encrypting %s" % part["file"])) from None
    target = os.path.join(directory, facts["file"])
    try:
        again = hashlib.sha256()
        for chunk in artifact.read_plain(target, compression, key=new_key, expected_sha256=facts["sha256"]):
            again.update(chunk)
        if again.digest() != plain.digest():
            raise ArtifactError("the re-encrypted copy %s does not read back the data of %s"
                                % (facts["file"], part["file"]))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    return facts


def reencrypt_backup(directory, name, ring, allow_unsigned=False, now=None):
    """Re-encrypt one backup set to the ring's current key (see the module docstring for the order of steps).

    Returns {"name", "from_key_id", "to_key_id", "files", "removed"}; ArtifactError with the old backup intact."""
    if ring.current is None:
        raise ArtifactError("re-encryption needs the new key: set %s" % CURRENT_VARIABLE)
    manifest = artifact.read_manifest(directory, name)
    old_key = ring.key_for(manifest)
    artifact.check_signature(manifest, old_key, allow_unsigned)
    artifact.check_stored_files(directory, manifest, old_key)
    from_ids = needed_ids(manifest)
    new_id = ring.current_id
    stale = remove_leftovers(directory, manifest)
    stem = "%s.key-%s" % (name, new_id[:8])
    slots = [("data", manifest["data"])] + sorted((manifest.get("files") or {}).items())
    written = []
    try:
        new_parts = {}
        for slot, part in slots:
            facts = _copy_part(directory, stem, part, part_kind(slot), old_key, ring.current)
            written.append(facts["file"])
            new_parts[slot] = dict(part, **facts)
        updated = dict(manifest, manifest_version=artifact.MANIFEST_VERSION, data=new_parts.pop("data"))
        if manifest.get("files"):
            updated["files"] = new_parts
        updated["reencrypted"] = list(manifest.get("reencrypted") or []) + [{
            "at": artifact.isoformat(now or artifact.utcnow()), "from_key_id": from_ids[0] if from_ids else None,
            "to_key_id": new_id, "previous_files": [p["file"] for p in artifact.stored_parts(manifest)]}]
        signed = artifact.sign_manifest(updated, ring.current)
        # The switch: one rename. Before it the old set is the backup, after it the new one.
        artifact.write_json_atomic(artifact.manifest_path(directory, name), signed, replace=True)
    except BaseException:
        for entry in written:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, entry))
        raise
    removed = []
    for part in artifact.stored_parts(manifest):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, part["file"]))
            removed.append(part["file"])
    artifact.fsync_directory(directory)
    return {"name": name, "from_key_id": from_ids[0] if from_ids else None, "to_key_id": new_id, "files": written,
            "removed": stale + removed}


def verification_result(outcome, started, duration_s):
    """The checksum-level verification record of a finished re-encryption (kept in ``<name>.verify.json``)."""
    return {"name": outcome["name"], "level": "checksum", "status": "passed", "verified_at": started,
            "duration_s": duration_s, "steps": [{
                "level": "checksum", "status": "passed",
                "detail": "re-encrypted from key id %s to %s: every part read back (sha256, decryption) with the "
                          "same data; manifest signed with key id %s"
                          % (outcome["from_key_id"], outcome["to_key_id"], outcome["to_key_id"])}]}
