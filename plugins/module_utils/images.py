# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image refresh decisions (issue 13 item 5), pure: which of an image's Debian packages have updates, which tag the
refreshed image gets, what its build file says, whether there is anything to do. No Docker here; the module
``image_refresh`` feeds these functions what the engine and apt say (plugins/module_utils/docker.py's client).

- ``split_ref`` / ``refreshed_version`` / ``refreshed_tag``: ``<repo>:<version>`` becomes
  ``<repo>:<version>-p<YYYYMMDD>`` (``.2``, ``.3``... when that tag exists; never an existing tag). A refresh of a
  refreshed image starts again from its base version (``1.0.0-p20261202`` -> ``1.0.0-p20261203``).
- ``base_version``: the version an application reports inside a refreshed image (its release version without the
  ``-pYYYYMMDD[.n]`` suffix); the ``release_app_version`` filter is this function.
- ``sources_script``: the shell lines that add the image's Debian security and updates suites for the plan or the
  build (base images often list only the main suite, so apt would never see a security update).
- ``plan``: apt's simulation inside the image (``patching.parse_simulation``) as the pending changes and a summary.
- ``plan_still_holds`` / ``replan``: a plan made moments ago of the same image ID stands in for a new one.
- ``decide``: build or not (nothing pending: nothing to do, unless forced).
- ``dockerfile``: the build file of the refreshed image (FROM the current image, upgrade, clean, labels, its user).
"""

import json
import re

from ansible_collections.rollcall.ops.plugins.module_utils import patching

SUFFIX = re.compile(r"-p(?P<date>[0-9]{8})(?:\.(?P<n>[0-9]+))?$")
DATE = re.compile(r"^[0-9]{8}$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
CODENAME = re.compile(r"^[a-z]+$")
MIRROR = re.compile(r"^https?://[A-Za-z0-9.:/_-]+$")
LABEL_FROM = "rollcall.refreshed-from"
LABEL_AT = "rollcall.refreshed-at"
LABEL_PACKAGES = "rollcall.refreshed-packages"
LABEL_LIMIT = 4000  # characters of the package list kept in a label
SOURCES_FILE = "/etc/apt/sources.list.d/rollcall-refresh.list"
OS_RELEASE_SCRIPT = "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null || true"


class ImageError(Exception):
    """Input these functions cannot use; the message says what."""


def split_ref(ref):
    """``(repository, tag)`` of an image reference; a reference without a tag is refused (``latest`` moves)."""
    ref = (ref or "").strip()
    if not ref or "@" in ref:
        raise ImageError("image must be REPOSITORY:TAG (not a digest, not empty): %r" % ref)
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag or not repo:
        raise ImageError("image %r has no tag: name it as REPOSITORY:TAG (e.g. rollcall/sms-app:1.0.0)" % ref)
    if not TAG.match(tag):
        raise ImageError("image %r has an invalid tag %r" % (ref, tag))
    return repo, tag


def base_version(version):
    """The version without a refresh suffix: ``1.0.0-p20261202.2`` -> ``1.0.0``; other versions unchanged."""
    version = "" if version is None else str(version)
    stripped = SUFFIX.sub("", version)
    return stripped or version


def refreshed_version(version, date, existing=()):
    """``<base version>-p<date>``, or ``.2``, ``.3``... after it when that version is in ``existing`` (tags)."""
    if not DATE.match(str(date)):
        raise ImageError("date must be YYYYMMDD, not %r" % (date,))
    base = base_version(version)
    if not base:
        raise ImageError("the image to refresh has no version (tag)")
    taken = set(existing or ())
    candidate = "%s-p%s" % (base, date)
    n = 1
    while candidate in taken:
        n += 1
        candidate = "%s-p%s.%d" % (base, date, n)
    if not TAG.match(candidate):
        raise ImageError("the refreshed tag %r is not a valid tag (the base tag is too long)" % candidate)
    return candidate


def refreshed_tag(ref, date, existing_tags=()):
    """The refreshed image's reference for ``ref`` (``repo:tag``); ``existing_tags``: the repository's tags now."""
    repo, tag = split_ref(ref)
    return "%s:%s" % (repo, refreshed_version(tag, date, existing_tags))


def debian_codename(os_release):
    """``VERSION_CODENAME`` of an ``/etc/os-release`` text when its ``ID`` is debian, else None (Ubuntu and others
    keep their own sources: the Debian suites would not fit them)."""
    fields = {}
    for line in (os_release or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"').strip("'")
    return (fields.get("VERSION_CODENAME") or None) if fields.get("ID") == "debian" else None


def sources_script(codename, mirror="http://deb.debian.org", security=True):
    """Shell lines writing SOURCES_FILE with the security and updates suites of ``codename``; "" when not wanted.

    An image that is not Debian (no codename) gets none: apt then sees what its own sources offer.
    """
    if not security or not codename:
        return ""
    if not CODENAME.match(codename):
        raise ImageError("unexpected Debian codename %r in the image's /etc/os-release" % codename)
    mirror = (mirror or "").rstrip("/")
    if not MIRROR.match(mirror):
        raise ImageError("mirror must be an http(s) URL without spaces or quotes, not %r" % mirror)
    lines = ["deb %s/debian-security %s-security main" % (mirror, codename),
             "deb %s/debian %s-updates main" % (mirror, codename)]
    return "printf '%%s\\n' %s > %s" % (" ".join("'%s'" % line for line in lines), SOURCES_FILE)


def probe_script(mirror="http://deb.debian.org", security=True, codename=None):
    """The script run (as root) in a throwaway container of the image: add the suites, refresh, simulate."""
    add = sources_script(codename, mirror, security) if codename else ""
    return "set -e; %sapt-get update -qq >/dev/null; LC_ALL=C apt-get -s upgrade" % ((add + "; ") if add else "")


def plan(image, image_id, simulation):
    """The pending changes of ``image`` from apt's simulation (``apt-get -s upgrade``) and a one-line summary."""
    changes = [{k: c.get(k) for k in ("package", "from", "to", "security", "action")}
               for c in patching.parse_simulation(simulation or "")]
    if changes:
        return _summed(image, image_id, changes)
    return {"image": image, "image_id": image_id, "changes": [], "pending": 0, "security": 0,
            "summary": "%s: its base has no pending updates" % image}


def plan_still_holds(known, image_id):
    """A plan made moments ago may stand in for a new one: it is of this very image ID and lists its changes."""
    return bool(known) and known.get("image_id") == image_id and isinstance(known.get("changes"), list)


def replan(image, image_id, changes):
    """``plan``'s result from already parsed changes (a plan that still holds)."""
    the_plan = plan(image, image_id, "")
    if not changes:
        return the_plan
    keys = ("package", "from", "to", "security", "action")
    lines = []
    for c in changes:
        missing = [k for k in ("package", "from", "to") if k not in c]
        if missing:
            raise ImageError("known_plan's changes lack %s: %r" % (", ".join(missing), c))
        lines.append({k: c.get(k) for k in keys})
    return _summed(image, image_id, lines)


def _summed(image, image_id, changes):
    security = sum(1 for c in changes if c["security"])
    summary = "%s: %d package update%s pending in the image (%d security): %s" % (
        image, len(changes), "" if len(changes) == 1 else "s", security,
        ", ".join("%s %s -> %s" % (c["package"], c["from"] or "new", c["to"] or "removed") for c in changes[:8])
        + (", ..." if len(changes) > 8 else ""))
    return {"image": image, "image_id": image_id, "changes": changes, "pending": len(changes),
            "security": security, "summary": summary}


def decide(the_plan, force=False):
    """``build`` (with why) or ``nothing``: an image is rebuilt only when its base has updates, or when forced."""
    if the_plan["pending"]:
        return {"action": "build", "why": "%d package update%s pending" % (
            the_plan["pending"], "" if the_plan["pending"] == 1 else "s")}
    if force:
        return {"action": "build", "why": "forced (nothing pending)"}
    return {"action": "nothing", "why": "nothing pending"}


def labels(source_id, at, changes):
    """The refreshed image's labels: where it came from, when, which packages changed (cut at LABEL_LIMIT)."""
    listed = " ".join("%s=%s" % (c["package"], c["to"] or "removed") for c in changes)
    if len(listed) > LABEL_LIMIT:
        listed = listed[:LABEL_LIMIT - 4].rsplit(" ", 1)[0] + " ..."
    return {LABEL_FROM: source_id, LABEL_AT: at, LABEL_PACKAGES: listed}


def dockerfile(source, user, codename=None, mirror="http://deb.debian.org", security=True, the_labels=None):
    """The build file: FROM ``source`` (a reference or ID), upgrade as root, clean up, back to the image's user."""
    add = sources_script(codename, mirror, security) if codename else ""
    steps = ([add] if add else []) + [
        "apt-get update -qq",
        "DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Options::=--force-confold upgrade",
        "apt-get clean",
        "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin %s" % SOURCES_FILE,
    ]
    lines = ["FROM %s" % source, "USER root", "RUN set -e; " + " && ".join(steps), "USER %s" % (user or "root")]
    if the_labels:
        lines.append("LABEL " + " ".join("%s=%s" % (k, json.dumps(str(v))) for k, v in sorted(the_labels.items())))
    return "\n".join(lines) + "\n"
