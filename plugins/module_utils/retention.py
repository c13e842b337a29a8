"""Retention of Rollcall's own outputs: audit log, reports, incident bundles (through ``output_retention``).

``plan()`` decides, without touching anything, what to rotate, gzip and delete in one directory, from a listing
of its entries (name, kind, mtime, size) and a policy: gzip after N days, delete after M days, a cap on the total
size. The rest of this file carries a plan out inside one directory opened once (``dir_fd``), never following a
symlink and never naming anything outside that directory:

- rotation of a live append-only file (``audit.jsonl`` -> ``audit-YYYY-MM.jsonl``) is a hard link under the new
  name, then an unlink of the old name. A writer that opened the file before keeps writing into the same inode,
  now under the new name; the next writer creates a new live file (``release.py`` opens with ``O_APPEND |
  O_CREAT`` for every line). No line is lost.
- gzip writes ``.<name>.gz.<random>.rc-tmp``, fsyncs it, gives it the original's mode and mtime (its age keeps
  counting from the last write), renames it to ``<name>.gz`` without replacing anything, fsyncs the directory,
  and only then removes the original, and only if the original did not change meanwhile (else the ``.gz`` is
  dropped and the file is tried again on the next run).
"""

import contextlib
import datetime
import errno
import fnmatch
import gzip
import json
import os
import re
import secrets
import shutil
import stat

DAY = 86400
TMP_SUFFIX = ".rc-tmp"
# A temp file of a gzip that was interrupted (crash, kill) is removed once it is this old.
TMP_GRACE_S = 3600
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})")


class RetentionError(ValueError):
    """A policy or an input that cannot be planned or carried out; the message says what to change."""


# ------------------------------------------------------------------------------------------------ policy
def parse_size(value):
    """Bytes of ``value``: an int, or '0', '500M', '10G', '10GB', '10 GiB' (1024-based). 0 means no cap."""
    if isinstance(value, bool):
        raise RetentionError("max_total_size %r is not a size: use bytes or a number with K, M, G or T" % (value,))
    if isinstance(value, int):
        if value < 0:
            raise RetentionError("max_total_size %d is negative: use 0 (no cap) or a size such as 10G" % value)
        return value
    match = _SIZE_RE.match(str(value))
    if not match:
        raise RetentionError("max_total_size %r is not a size: use bytes or a number with K, M, G or T "
                             "(for example 10G; 0 for no cap)" % (value,))
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def check_policy(gzip_after_days, delete_after_days, max_total_bytes):
    """Raise RetentionError for a policy that cannot be meant: negative figures, delete before gzip."""
    for label, figure in (("gzip_after_days", gzip_after_days), ("delete_after_days", delete_after_days),
                          ("max_total_size", max_total_bytes)):
        if figure < 0:
            raise RetentionError("%s is %s: use 0 (never) or a positive number" % (label, figure))
    if gzip_after_days and delete_after_days and delete_after_days <= gzip_after_days:
        raise RetentionError("delete_after_days (%d) must be more than gzip_after_days (%d), or 0 to never delete"
                             % (delete_after_days, gzip_after_days))


# ------------------------------------------------------------------------------------------------ rotation
def month_of(stamp):
    """'YYYY-MM' of an ISO time ('2026-01-31T23:59:59Z'), or None."""
    match = _MONTH_RE.match(stamp) if isinstance(stamp, str) else None
    if not match or not 1 <= int(match.group(2)) <= 12:
        return None
    return "%s-%s" % match.groups()


def first_month(lines, field="at"):
    """The month of the first line (of ``lines``) that is a JSON object with an ISO time in ``field``; None when
    none is (an empty file, or only torn lines)."""
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        month = month_of(doc.get(field)) if isinstance(doc, dict) else None
        if month:
            return month
    return None


def rotated_name(live, month, taken):
    """``audit.jsonl`` + '2026-01' -> ``audit-2026-01.jsonl``; ``audit-2026-01-2.jsonl`` and so on when that
    name (or its .gz) is in ``taken``."""
    stem, ext = os.path.splitext(live)
    n = 1
    while True:
        name = "%s-%s%s%s" % (stem, month, "" if n == 1 else "-%d" % n, ext)
        if name not in taken and name + ".gz" not in taken:
            return name
        n += 1


# ------------------------------------------------------------------------------------------------ the plan
def _managed(name, patterns):
    return not name.startswith(".") and any(fnmatch.fnmatchcase(name, p) for p in patterns)


def plan(entries, now, patterns=("*",), gzip_after_days=0, delete_after_days=0, max_total_bytes=0,
         rotate=None, rotate_month=None, directories=False):
    """What to do in one directory. Pure.

    entries: dicts with name, kind ('file', 'dir', 'link' or 'other'), mtime (epoch seconds), size (bytes; a
    directory's: everything under it). now: epoch seconds. patterns: shell patterns of the names this policy
    manages (other names are not looked at; names starting with '.' never match). rotate: the name of a live
    append-only file, never gzipped or deleted, rotated when ``rotate_month`` (the month of its first line) is
    before now's month. directories: whether matching directories may be deleted (never gzipped).

    Returns {'rotate': {'from', 'to'} or None, 'gzip': [names], 'delete': [names], 'kept': [names],
    'untouched': {name: reason}, 'reasons': {name: reason}}, names oldest first.
    """
    check_policy(gzip_after_days, delete_after_days, max_total_bytes)
    names = {e["name"] for e in entries}
    out = {"rotate": None, "gzip": [], "delete": [], "kept": [], "untouched": {}, "reasons": {}}
    candidates = []
    for entry in sorted(entries, key=lambda e: (e["mtime"], e["name"])):
        name, kind, age = entry["name"], entry["kind"], now - entry["mtime"]
        if rotate and name == rotate:
            if kind != "file":
                out["untouched"][name] = "the live file is a %s, not a regular file; not rotated" % kind
                continue
            this_month = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m")
            if rotate_month and rotate_month < this_month:
                out["rotate"] = {"from": name, "to": rotated_name(name, rotate_month, names)}
                out["reasons"][name] = "starts in %s, before %s: rotated" % (rotate_month, this_month)
            continue
        if name.startswith(".") and name.endswith(TMP_SUFFIX) and kind == "file":
            if age >= TMP_GRACE_S:
                out["delete"].append(name)
                out["reasons"][name] = "left over by an interrupted gzip"
            continue
        if not _managed(name, patterns):
            continue
        if kind == "link":
            out["untouched"][name] = "a symlink: not followed, not touched"
            continue
        if kind == "other" or (kind == "dir" and not directories):
            out["untouched"][name] = "a %s: not touched" % ("directory" if kind == "dir" else "special file")
            continue
        if delete_after_days and age >= delete_after_days * DAY:
            out["delete"].append(name)
            out["reasons"][name] = "older than %d days" % delete_after_days
            continue
        if kind == "file" and gzip_after_days and age >= gzip_after_days * DAY and not name.endswith(".gz"):
            if name + ".gz" in names:
                out["untouched"][name] = "%s.gz exists already: not gzipped" % name
            else:
                out["gzip"].append(name)
                out["reasons"][name] = "older than %d days" % gzip_after_days
        candidates.append(entry)
    if max_total_bytes:
        total = sum(e["size"] for e in candidates)
        for entry in candidates:  # oldest first
            if total <= max_total_bytes:
                break
            name = entry["name"]
            total -= entry["size"]
            if name in out["gzip"]:
                out["gzip"].remove(name)
            out["delete"].append(name)
            out["reasons"][name] = "the oldest while over the size cap of %d bytes" % max_total_bytes
    deleted = set(out["delete"])
    out["kept"] = [e["name"] for e in candidates if e["name"] not in deleted]
    return out


# ------------------------------------------------------------------------------------------------ carrying out
def open_directory(path):
    """An fd of directory ``path``; refuses a symlink (the caller gives the real path)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise RetentionError("%s is a symlink; retention never follows symlinks: give the directory it "
                                 "points to" % path) from None
        raise


def _tree_size(dir_fd, name):
    total = 0
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return 0
    try:
        with os.scandir(fd) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    total += _tree_size(fd, entry.name)
                else:
                    total += st.st_size
    finally:
        os.close(fd)
    return total


def list_entries(dir_fd):
    """The directory's entries as plan() takes them (symlinks are listed as links, never followed)."""
    out = []
    with os.scandir(dir_fd) as it:
        for entry in it:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                kind = "link"
            elif stat.S_ISREG(st.st_mode):
                kind = "file"
            elif stat.S_ISDIR(st.st_mode):
                kind = "dir"
            else:
                kind = "other"
            size = _tree_size(dir_fd, entry.name) if kind == "dir" else st.st_size
            out.append({"name": entry.name, "kind": kind, "mtime": st.st_mtime, "size": size})
    return out


def read_head(dir_fd, name, limit=65536):
    """The complete lines among the first ``limit`` bytes of regular file ``name`` (not followed if a link)."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        data = os.read(fd, limit)
    finally:
        os.close(fd)
    lines = data.split(b"\n")
    if len(data) == limit:
        lines = lines[:-1]  # the last one may be cut
    return [line.decode("utf-8", "replace") for line in lines if line.strip()]


def rotate_file(dir_fd, src, dst):
    """Give live file ``src`` the name ``dst`` (never replacing one), then drop the old name."""
    os.link(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    os.unlink(src, dir_fd=dir_fd)
    os.fsync(dir_fd)


def gzip_file(dir_fd, name):
    """Replace regular file ``name`` by ``name.gz`` atomically (see the module docstring). Returns False, with
    nothing changed, when the file changed while it was being compressed."""
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    tmp = ".%s.gz.%s%s" % (name, secrets.token_hex(4), TMP_SUFFIX)
    try:
        before = os.fstat(src)
        if not stat.S_ISREG(before.st_mode):
            raise RetentionError("%s is not a regular file; not gzipped" % name)
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, stat.S_IMODE(before.st_mode),
                      dir_fd=dir_fd)
        try:
            with os.fdopen(out, "wb", closefd=False) as raw:
                with gzip.GzipFile(filename=name, mode="wb", fileobj=raw, mtime=int(before.st_mtime)) as gz:
                    while True:
                        chunk = os.read(src, 1 << 20)
                        if not chunk:
                            break
                        gz.write(chunk)
                raw.flush()
            os.fchmod(out, stat.S_IMODE(before.st_mode))
            os.utime(out, ns=(before.st_atime_ns, before.st_mtime_ns))
            os.fsync(out)
        finally:
            os.close(out)
        after = os.fstat(src)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            os.unlink(tmp, dir_fd=dir_fd)
            return False
        # link + unlink: never replaces a .gz that appeared meanwhile (EEXIST)
        os.link(tmp, name + ".gz", src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        os.unlink(tmp, dir_fd=dir_fd)
        os.fsync(dir_fd)
        os.unlink(name, dir_fd=dir_fd)
        os.fsync(dir_fd)
        return True
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    finally:
        os.close(src)


def delete_entry(dir_fd, name):
    """Remove file or directory ``name`` (a directory with all under it; symlinks inside are removed, never
    followed)."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)
