# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which database engine an existing SMS stack holds, and whether a deploy may use another one.

A stack records its engine in what it already runs and keeps: the app container's DATABASE_URL, the database
container's image, the ``rollcall.engine`` label of the database volume (set when the volume is created), and,
for stacks older than that label, the files in the volumes. Changing the engine of a stack that holds data would
start an empty database of the new engine (on the same volume for PostgreSQL <-> MariaDB), so a deploy refuses it.

It also tells who holds the app's port: a deploy whose proxy cannot publish ``rollcall_app_port`` because
another container or program holds it would fail half-way (the database started, the proxy container left
created) with the engine's raw error, so it is refused first (``port_conflict``).

The pure functions here decide; ``gather`` (Docker SDK) and ``ports.py`` only collect the evidence.
"""

from .docker import run_once
from .ports import EVERY_ADDRESS, what_holds

ENGINES = ("postgresql", "mariadb", "sqlite")
ENGINE_LABEL = "rollcall.engine"


def engine_of_url(url):
    """The engine a SQLAlchemy-style DATABASE_URL points at, or None."""
    scheme = (url or "").split(":", 1)[0].split("+", 1)[0].lower()
    return {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mariadb", "mariadb": "mariadb",
            "sqlite": "sqlite"}.get(scheme)


def engine_of_image(image):
    """The engine of a database image name (rollcall/postgres:15, rollcall/mariadb:10.11, mysql:8 ...), or None."""
    repository = (image or "").rsplit("/", 1)[-1].split(":", 1)[0].lower()
    if repository.startswith("postgres"):
        return "postgresql"
    if repository.startswith(("mariadb", "mysql")):
        return "mariadb"
    return None


def engine_of_files(names):
    """The engine whose files a data directory's top-level ``names`` show, or None (empty or unknown)."""
    names = set(names or ())
    if "PG_VERSION" in names:
        return "postgresql"
    if names & {"ibdata1", "aria_log_control", "mysql", "ib_logfile0", "mysql_upgrade_info"}:
        return "mariadb"
    if any(name.endswith((".sqlite3", ".sqlite", ".db")) for name in names):
        return "sqlite"
    return None


def engine_conflict(wanted, evidence):
    """Why a deploy of ``wanted`` must not touch this stack, or None.

    ``evidence``: list of {"source": text, "engine": name}. No evidence is a new stack (any engine); evidence of
    one engine equal to ``wanted`` is the same stack; anything else is refused with the way out.
    """
    found = sorted({item["engine"] for item in evidence if item.get("engine")})
    if not found or found == [wanted]:
        return None
    where = "; ".join("%s: %s" % (item["source"], item["engine"]) for item in evidence if item.get("engine"))
    if len(found) > 1:
        held = "holds data of more than one engine (%s)" % where
    else:
        held = "already runs %s (%s)" % (found[0], where)
    return ("This stack %s, and rollcall_db_engine is %s. A deploy never changes the engine of a stack that "
            "holds data: it would start an empty %s database and the school's data would be left behind. Nothing "
            "was changed. Keep rollcall_db_engine=%s, or, to move to %s on purpose: take a backup "
            "(playbooks/backup.yml), export the data, remove the stack with playbooks/teardown.yml "
            "-e teardown_volumes=true -e confirm=yes, deploy with the new engine and load the data "
            "(docs/releases.md, 'Changing the database engine')."
            % (held, wanted, wanted, found[0] if len(found) == 1 else "the engine it runs", wanted))


def volume_exists(client, volume):
    import docker.errors  # the module reports a missing SDK before calling this

    try:
        client.api.inspect_volume(volume)
    except docker.errors.NotFound:
        return False
    return True


def gather(client, project, db_container, db_volume, sqlite_volume, app_container=None, peek_image=None, seen=None):
    """Evidence of the engine(s) a stack holds on one Docker engine (read-only).

    ``peek_image``: an image on the host used to list a volume's files when neither a container nor a label
    tells (a stack made before volumes were labelled); None skips that look. ``seen`` (a dict), when given, gets
    each volume's name -> whether it exists.
    """
    seen = {} if seen is None else seen
    import docker.errors  # the module reports a missing SDK before calling this

    evidence = []
    app_container = app_container or project + "-app"
    for name in (app_container, app_container + "-next"):
        try:
            env = client.api.inspect_container(name)["Config"].get("Env") or []
        except docker.errors.NotFound:
            continue
        url = next((item.split("=", 1)[1] for item in env if item.startswith("DATABASE_URL=")), "")
        if engine_of_url(url):
            evidence.append({"source": "container %s (DATABASE_URL)" % name, "engine": engine_of_url(url)})
            break
    try:
        image = client.api.inspect_container(db_container)["Config"].get("Image")
        if engine_of_image(image):
            evidence.append({"source": "container %s (image %s)" % (db_container, image),
                             "engine": engine_of_image(image)})
    except docker.errors.NotFound:
        pass
    peek = peek_image if not evidence else None  # a running stack already says what it is
    if peek:
        try:
            client.images.get(peek)
        except docker.errors.ImageNotFound:
            peek = None  # never pull (there may be no registry); the deploy reports the missing image itself
    for volume in (db_volume, sqlite_volume):
        try:
            attrs = client.api.inspect_volume(volume)
        except docker.errors.NotFound:
            seen[volume] = False
            continue
        seen[volume] = True
        labelled = (attrs.get("Labels") or {}).get(ENGINE_LABEL)
        if labelled:
            evidence.append({"source": "volume %s (label %s)" % (volume, ENGINE_LABEL), "engine": labelled})
        elif peek:
            code, names = run_once(client, peek, ["-A", "/v"], entrypoint=["ls"], network_mode="none",
                                   volumes={volume: {"bind": "/v", "mode": "ro"}})
            if code != 0:
                raise RuntimeError("listing volume %s with %s failed (exit code %s)" % (volume, peek, code))
            engine = engine_of_files(names.decode("utf-8", "replace").split())
            if engine:
                evidence.append({"source": "volume %s (its files)" % volume, "engine": engine})
    return evidence


def lost_data(engine, volume, volume_exists, served, host, rebuild=False, pitr=False, database="sms"):
    """Why a deploy must not start an empty database for a stack that has served, or None. Pure.

    ``volume``: the data volume this host keeps for ``engine`` (the database's on a db host, the SQLite file's on an
    app host); ``volume_exists``: it is there. ``served``: the live releases the app hosts' release histories record
    (dicts with ``host``, ``version``, ``deployed_at``); empty for a new stack, or after ``teardown.yml -e
    teardown_volumes=true`` (it forgets the history). A stack with a live release whose data volume is gone lost its
    data (a disk replaced, a ``docker volume rm``): a deploy would start an empty database, migrate and seed it and
    serve it, with users writing into it, and say it is healthy. ``rebuild`` (``-e rollcall_db_rebuild=true``) is
    the operator saying that is what they want, before a restore."""
    if volume_exists or rebuild or not served:
        return None
    live = served[0]
    where = ("the SQLite file's volume" if engine == "sqlite" else "the database volume")
    restore = ("playbooks/restore.yml -e to_time=latest -e pitr_from_repo=<its point-in-time repository> -e confirm=%s "
               "to recover to its last archived write (a new rollcall_pitr_repo first: docs/pitr.md, After losing "
               "the database), or playbooks/restore.yml -e confirm=%s for the newest verified backup"
               % (database, database)) if pitr else \
        "playbooks/restore.yml -e confirm=%s (the newest verified backup; backup_info lists them)" % database
    return ("Nothing was changed: %s %s does not exist on %s, but this stack has served: %s is live on %s "
            "(deployed %s, the release history says). Its data is lost, not new, and this deploy would start an "
            "empty %s database, migrate it and serve it. To rebuild it and bring the data back: "
            "playbooks/deploy.yml -e rollcall_db_rebuild=true, then %s. To start afresh instead, remove the stack "
            "first: playbooks/teardown.yml -e teardown_volumes=true -e confirm=yes (it forgets the release history; "
            "backups are kept)."
            % (where, volume, host, live.get("version"), live.get("host"), live.get("deployed_at"), engine, restore))


def lost_uploads(volume, volume_exists, served, host, database="sms"):
    """What to say when an app host's uploads volume was gone at a deploy of a stack that has served, or None.
    Pure. Not a refusal like ``lost_data``: the database is whole and the app is down (a volume in use cannot be
    removed), so the deploy brings it back with an empty volume, and this says what is missing and what brings it
    back. Shared uploads (``rollcall_uploads_host``) live elsewhere and are not asked about."""
    if volume_exists or not served:
        return None
    live = served[0]
    return ("The uploads volume %s did not exist on %s, although this stack has served (%s live since %s): it was "
            "made anew, empty, and the files uploaded before are missing there. They are in the backups (the "
            "database and the uploads in one set): playbooks/restore.yml -e confirm=%s brings both back as of the "
            "newest verified backup (it first takes a safety backup of the database as it is now; changes made "
            "since that backup are then in the safety backup only)."
            % (volume, host, live.get("version"), live.get("deployed_at"), database))


def port_conflict(project, host, address, port, holders, bind_error=None, setting="rollcall_app_port",
                  service="app", ours=None):
    """Why this stack's proxy (``service`` "app") or database ("database") cannot publish ``address:port`` on
    ``host``, or None. Pure.

    ``holders``: the running containers of the host's engine that publish that host port, as (name, "ip:port");
    ``bind_error``: None when the port could be bound on the host (nothing listens there), else the error's text
    (asked only when no container of this stack holds the port). The stack's own container holding it is a
    re-deploy: the proxy, or the app container from before the proxy; the database container (``ours``)."""
    ours = ours or ((project + "-proxy", project + "-app") if service == "app" else (project + "-db",))
    held = what_holds(holders, ours, bool(holders), bind_error)  # holders left after the others: ours
    if held is None:
        return None
    if held[0] == "container":
        taken = "container %s publishes %s" % held[1:]
    else:
        taken = "another program listens there (%s%s)" % (
            held[1], "; a database server installed on the host?" if service == "database" else "")
    return ("Nothing was changed: the %s's port %s:%s on %s is taken: %s, not this stack's %s (%s). "
            "Stop what holds it, or give this stack another port: -e %s=PORT%s."
            % (service, address or EVERY_ADDRESS, port, host, taken, "proxy" if service == "app" else "database",
               ours[0], setting, " (in the inventory to keep it)" if setting.startswith("rollcall_") else ""))
