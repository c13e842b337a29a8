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


# ------------------------------------------------------------------------ which build a deploy of a version uses
def refresh_key(version):
    """``(date, n)`` of a refreshed version (``1.0.0-p20261202.2`` -> ``("20261202", 2)``), None when it is not one."""
    match = SUFFIX.search(str(version or ""))
    if not match or not base_version(version) or base_version(version) == str(version):
        return None
    return match.group("date"), int(match.group("n") or 1)


def withdrawn_versions(history):
    """Refreshed versions a rollback went back from (and that were not deployed again since): a deploy of their base
    version must not pick them again. ``history``: the release history (releases.json), oldest first."""
    withdrawn, current = set(), None
    for entry in history or ():
        if entry.get("outcome") != "success":
            continue
        version = entry.get("version")
        if entry.get("kind") == "rollback":
            if current is not None and current != version and refresh_key(current):
                withdrawn.add(current)
        else:
            withdrawn.discard(version)
        current = version
    return withdrawn


def pick_build(requested, candidates, use_refreshed=True, withdrawn=()):
    """Which build a deploy of ``requested`` releases: ``{"version", "why"}``.

    - a refreshed version asked for by name (``1.0.0-p20261202``): that one, as asked;
    - ``use_refreshed`` false (``rollcall_app_refreshed_builds: false``): the version as asked (the unrefreshed build);
    - otherwise the newest refreshed build of ``requested`` among ``candidates`` (refreshed versions on the host:
      recorded releases whose image is still there, or the repository's tags), leaving out ``withdrawn`` ones;
    - none: the version as asked.
    """
    requested = str(requested)
    if refresh_key(requested):
        return {"version": requested, "why": "a refreshed build asked for by name"}
    if not use_refreshed:
        return {"version": requested, "why": "refreshed builds are not used (asked so)"}
    found = sorted({str(c) for c in candidates or () if refresh_key(c) and base_version(c) == requested
                    and str(c) not in set(withdrawn or ())}, key=refresh_key)
    if not found:
        return {"version": requested, "why": "no refreshed build of %s on this host" % requested}
    return {"version": found[-1], "why": "the newest refreshed build of %s (patching); %s asks for the "
                                         "unrefreshed one" % (requested, "rollcall_app_refreshed_builds=false")}


def pick_image(ref, tags, use_refreshed=True, withdrawn=()):
    """``pick_build`` for an image reference and the tags its repository has on the host: ``{"image", "why"}``."""
    repo, tag = split_ref(ref)
    picked = pick_build(tag, tags, use_refreshed, withdrawn)
    return {"image": "%s:%s" % (repo, picked["version"]), "why": picked["why"]}


# ------------------------------------------------------------------------------- the database engine's update
ENGINES = ("postgresql", "mariadb")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,63}$")
VERSION_NUMBER = re.compile(r"([0-9]+)\.([0-9]+)(?:\.([0-9]+))?")


def db_refresh_decide(the_plan, engine, backup_age_s, max_age_s, force=False):
    """Whether the database image is refreshed and the database recreated on it: ``{"action", "why"}``.

    ``action``: ``nothing`` (SQLite, or nothing pending and not forced), ``stop`` (no verified backup newer than
    ``max_age_s``: the database is never restarted on a new image without one) or ``refresh``.
    """
    if engine not in ENGINES:
        return {"action": "nothing", "why": "%s runs in no database container of ours" % engine}
    decision = decide(the_plan, force)
    if decision["action"] == "nothing":
        return decision
    if backup_age_s is None or float(backup_age_s) > float(max_age_s):
        return {"action": "stop", "why": "no verified backup of the database newer than %d h (%s): the database "
                "is not restarted on a new image without one; take one (playbooks/backup.yml) and run again" % (
                    int(max_age_s) // 3600, "none found" if backup_age_s is None else
                    "the newest is %d h old" % (int(float(backup_age_s)) // 3600))}
    return {"action": "refresh", "why": decision["why"] + "; a verified backup is %d min old" % (
        int(float(backup_age_s)) // 60)}


def quote_ident(engine, name):
    """An identifier quoted for ``engine`` (only plain names: letters, digits, underscore, $)."""
    if not IDENT.match(name or ""):
        raise ImageError("unexpected table name %r" % (name,))
    return ('"%s"' if engine == "postgresql" else "`%s`") % name


def tables_query(engine, database):
    """SQL listing the base tables of the app's database (PostgreSQL: schema public), one name a line."""
    if engine == "postgresql":
        return ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "AND table_type = 'BASE TABLE' ORDER BY 1")
    if not IDENT.match(database or ""):
        raise ImageError("unexpected database name %r" % (database,))
    query = "SELECT table_name FROM information_schema.tables WHERE table_schema = '%s' " % database  # noqa: S608
    return query + "AND table_type = 'BASE TABLE' ORDER BY 1"


def count_query(engine, tables):
    """SQL giving ``name<TAB>count`` for each table (exact counts, one statement)."""
    if not tables:
        return "SELECT 'none', 0"
    # quote_ident refuses anything but plain identifiers, so the name is safe in both places
    return " UNION ALL ".join("SELECT '%s', COUNT(*) FROM %s" % (t, quote_ident(engine, t))  # noqa: S608
                              for t in tables)


def parse_counts(output):
    """``{table: rows}`` from ``count_query``'s tab-separated output (``none`` 0: no tables)."""
    counts = {}
    for line in (output or "").splitlines():
        name, sep, value = line.strip().partition("\t")
        if sep and name != "none":
            counts[name] = int(value)
    return counts


def engine_version(text):
    """``"15.10"`` (major.minor[.patch]) from what the server says (``SHOW server_version``, ``SELECT VERSION()``)."""
    match = VERSION_NUMBER.search(text or "")
    if not match:
        raise ImageError("the database did not say its version: %r" % (text or "")[:200])
    return ".".join(g for g in match.groups() if g is not None)


def db_checks(before, after, ready):
    """The data checks after the database came back on the new image: ``{"ok", "problems", "summary"}``.

    ``before``/``after``: ``{"version": "15.10", "counts": {table: rows}}``; ``ready``: the app answered
    /health/ready (None: no app to ask). A changed major version, a table with other rows or gone, or an app
    that is not ready is a problem.
    """
    problems = []
    major = [str(x.get("version") or "").split(".", maxsplit=1)[0] for x in (before, after)]
    if major[0] != major[1]:
        problems.append("the engine's major version changed: %s -> %s" % (before.get("version"), after.get("version")))
    for table in sorted(set(before.get("counts", {})) | set(after.get("counts", {}))):
        was, now = before.get("counts", {}).get(table), after.get("counts", {}).get(table)
        if was != now:
            problems.append("table %s: %s rows before, %s after" % (
                table, "no" if was is None else was, "gone" if now is None else now))
    if ready is False:
        problems.append("the app does not answer /health/ready")
    summary = "engine %s -> %s, %d table(s) with the same row counts%s" % (
        before.get("version"), after.get("version"), len(before.get("counts", {})),
        "" if ready is None else ", the app is ready")
    return {"ok": not problems, "problems": problems, "summary": summary if not problems else "; ".join(problems)}


def db_on_failure(host, old_image, new_image, stage, error):
    """What to do when the database update failed at ``stage``: ``{"restore", "remove", "msg"}``.

    Before the container was recreated (``build``, ``before``: the data read first) nothing is put back; after
    (``recreate``, ``checks``) the container is recreated on ``old_image`` (same volume, same settings). A built
    ``new_image`` is removed either way (a later deploy would otherwise pick it as the newest refreshed build).
    """
    error = str(error or "failed").strip()
    remove = bool(new_image) and new_image != old_image
    if stage in ("build", "before"):
        return {"restore": False, "remove": remove,
                "msg": "Patching stopped on %s: the database update of %s failed before the database was touched "
                       "(%s: %s)%s; the hosts after it were not patched." % (
                           host, old_image, stage, error, (" and %s was removed" % new_image) if remove else "")}
    return {"restore": True, "remove": remove,
            "msg": "Patching failed on %s at the database update (%s: %s). The database container was recreated on "
                   "%s again (same volume and settings) and %s removed; the hosts after it were not patched. The "
                   "verified backup taken before is there if the data needs it (playbooks/restore.yml)." % (
                       host, stage, error, old_image, new_image)}


# --------------------------------------------------------------------- a recorded refreshed image a deploy keeps
def recorded_image(ref, record, present_tags, use_refreshed=True):
    """Which image a deploy runs for ``ref`` (``rollcall/postgres:15``, ``rollcall/proxy:1``) when patching recorded
    a refreshed build of it (``database-image.json``, ``proxy-image.json``: ``{"image": ...}``): ``{"image", "why"}``.

    ``record``: the record (None: none); ``present_tags``: the tags of the recorded image's repository on the host.
    The recorded image is kept when it is a refreshed build of ``ref`` (same repository, base tag ``ref``'s) still
    on the host and ``use_refreshed``; otherwise ``ref`` itself.
    """
    try:
        repo, tag = split_ref(ref)
    except ImageError:
        return {"image": ref, "why": "%s is not REPOSITORY:TAG: run as it is" % ref}
    recorded = str((record or {}).get("image") or "") if isinstance(record, dict) else ""
    if not recorded:
        return {"image": ref, "why": "no refreshed build of %s is recorded" % ref}
    try:
        rec_repo, rec_tag = split_ref(recorded)
    except ImageError:
        return {"image": ref, "why": "the record names no usable image (%r): %s is run" % (recorded[:80], ref)}
    if rec_repo != repo or base_version(rec_tag) != tag or not refresh_key(rec_tag):
        return {"image": ref, "why": "the recorded %s is not a refreshed build of %s" % (recorded, ref)}
    if rec_tag not in set(present_tags or ()):
        return {"image": ref, "why": "the recorded %s is no longer on this host: %s is run" % (recorded, ref)}
    return pick_image(ref, [rec_tag], use_refreshed)


# ------------------------------------------------------------------------------------------ the proxy's refresh
UPSTREAM_LINE = re.compile(r'^\s*set\s+\$rollcall_upstream\s+"(?P<target>[^"]*)"\s*;\s*$')
UPSTREAM_TARGET = re.compile(r"^[A-Za-z0-9_.-]+:[0-9]{1,5}$")
PROXY_DEFAULT_UPSTREAM = "127.0.0.1:9"  # images/proxy/upstream.conf: the image's own, serves nothing


def proxy_upstream(conf):
    """The live upstream (``HOST:PORT``) the proxy serves, from its ``/etc/nginx/rollcall/upstream.conf`` (the one
    ``set $rollcall_upstream "HOST:PORT";`` line rollcall-switch writes). Refused (ImageError): no such line, more
    than one, an invalid target, or the image's default (the proxy serves no app: nothing to carry over)."""
    found = [m.group("target") for m in map(UPSTREAM_LINE.match, (conf or "").splitlines()) if m]
    if not found:
        raise ImageError("the proxy's upstream.conf has no 'set $rollcall_upstream \"HOST:PORT\";' line: %r"
                         % (conf or "")[:200])
    if len(found) > 1:
        raise ImageError("the proxy's upstream.conf names %d upstreams (%s); rollcall-switch writes one"
                         % (len(found), ", ".join(found)))
    target = found[0]
    if not UPSTREAM_TARGET.match(target):
        raise ImageError("the proxy's upstream %r is not HOST:PORT" % target)
    if target == PROXY_DEFAULT_UPSTREAM:
        raise ImageError("the proxy still has the image's default upstream (%s): it serves no app release; deploy "
                         "first (playbooks/deploy.yml)" % target)
    return target


def proxy_on_failure(host, old_image, new_image, stage, error, upstream=None, drained=False):
    """What to do when the proxy's refresh failed at ``stage``: ``{"restore", "remove", "msg"}``.

    ``build`` and ``before`` (the upstream read, the drain): the proxy was not touched, nothing is put back; after
    (``recreate``, ``gate``) it is recreated on ``old_image`` with the same ``upstream`` and gated again. A built
    ``new_image`` is removed either way (a later deploy would otherwise keep it). ``drained``: the host left the load
    balancer's pool and stays out (fail closed; the message says so).
    """
    error = str(error or "failed").strip()
    remove = bool(new_image) and new_image != old_image
    out = " %s stays out of the load balancer's pool until someone re-adds it;" % host if drained else ""
    if stage in ("build", "before"):
        return {"restore": False, "remove": remove,
                "msg": "Patching stopped on %s: the proxy refresh of %s failed before the proxy was touched "
                       "(%s: %s)%s;%s the hosts after it were not patched." % (
                           host, old_image, stage, error, (" and %s was removed" % new_image) if remove else "", out)}
    return {"restore": True, "remove": remove,
            "msg": "Patching failed on %s at the proxy refresh (%s: %s). The proxy was recreated on %s again%s "
                   "and %s removed;%s the hosts after it were not patched." % (
                       host, stage, error, old_image, (" serving %s" % upstream) if upstream else "",
                       new_image or "nothing", out)}
