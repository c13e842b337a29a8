"""sms-app: serve | migrate | seed | check-config | revision.

On success the last line on stdout is one JSON object (with --json it is the only line). Every failure ends in
one line on stderr starting with "sms-app:" and a non-zero exit (2 configuration, 3 database unreachable,
1 anything else); never a traceback, never a password or the secret key.
"""

import argparse
import json
import os
import sys

from . import APP_VERSION, expected_head
from .config import ConfigError, load


def _engine(config):
    from .db import connect_or_fail, make_engine

    engine = make_engine(config.database_url, swap_wait=0)  # a command says at once that it cannot connect
    connect_or_fail(engine, config.database_url).close()
    return engine


def cmd_serve(args, config):
    os.makedirs(config.upload_dir, exist_ok=True)
    argv = ["gunicorn", "--bind", "0.0.0.0:%d" % args.port, "--workers", "1", "--threads", str(args.threads),
            "--worker-class", "gthread", "--graceful-timeout", "10", "--timeout", "60", "--error-logfile", "-",
            "--log-level", "warning", "sms_app.wsgi:app"]
    os.execvp(argv[0], argv)  # noqa: S606 - fixed argv, replaces this process


def cmd_migrate(args, config):
    from .migrate import migrate, plan

    target = args.to or expected_head()
    if args.database:
        config = config.on_database(args.database)
    if args.check:
        before, target, problems = plan(_engine(config), target)
        _report(args, {"changed": False, "from": before, "to": target, "possible": not problems,
                       "blockers": problems, "version": APP_VERSION},
                "can migrate %s -> %s" % (before, target) if not problems else "; ".join(problems))
        return
    before, after = migrate(_engine(config), target)
    _report(args, {"changed": before != after, "from": before, "to": after, "version": APP_VERSION},
            "schema %s -> %s" % (before, after) if before != after else "schema already at %s" % after)


def cmd_seed(args, config):
    from .db import make_session_factory
    from .seed import seed

    if args.students < 0:
        raise ConfigError("--students must be 0 or more")
    with make_session_factory(_engine(config))() as session:
        added = seed(session, args.students)
    changed = any(added[k] for k in ("students", "courses", "enrollments", "grades", "attendance"))
    _report(args, dict(changed=changed, requested=args.students, **added),
            "added %(students)d students (%(total_students)d in all)" % added)


def cmd_check_config(args, config):
    _engine(config).dispose()
    _report(args, {"ok": True, "database": config.database_location(), "version": APP_VERSION},
            "configuration ok; database at %s answers" % config.database_location())


def cmd_revision(args, config):
    from .db import current_revision

    with _engine(config).connect() as connection:
        revision = current_revision(connection)
    _report(args, {"revision": revision, "expected": expected_head(), "version": APP_VERSION}, None)


def _report(args, data, text):
    """A line for people (unless --json or ``text`` is None), then the result as one JSON line, always last."""
    if text is not None and not getattr(args, "json", False):
        print(text)
    print(json.dumps(data), flush=True)


def parser():
    p = argparse.ArgumentParser(prog="sms-app", description="Reference student-management system (%s)" % APP_VERSION)
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="validate the configuration and serve HTTP on 0.0.0.0:PORT")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--threads", type=int, default=8)
    migrate = sub.add_parser("migrate", help="migrate the schema to this release's head (or --to REV)")
    migrate.add_argument("--to", help="target revision; lower than the current one downgrades")
    migrate.add_argument("--check", action="store_true", help="say whether it can be done; change nothing")
    migrate.add_argument("--database", help="migrate this database (or SQLite file) on the same server instead; "
                                            "a restore migrates its side database before swapping it in")
    seed = sub.add_parser("seed", help="load deterministic demo data (idempotent)")
    seed.add_argument("--students", type=int, default=50)
    sub.add_parser("check-config", help="validate settings and that the database answers")
    sub.add_parser("revision", help="print the schema revision (JSON)")
    for name in ("migrate", "seed", "check-config", "revision"):
        sub.choices[name].add_argument("--json", action="store_true", help="print one JSON line")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        # Only serving needs the secret key; maintenance commands run without it.
        config = load(require_secret=args.command in ("serve", "check-config"))
        {"serve": cmd_serve, "migrate": cmd_migrate, "seed": cmd_seed, "check-config": cmd_check_config,
         "revision": cmd_revision}[args.command](args, config)
    except ConfigError as exc:
        print("sms-app: %s" % exc, file=sys.stderr, flush=True)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - last resort: one line, no traceback, no URL
        from .db import short_reason

        print("sms-app: %s failed: %s" % (args.command, short_reason(exc)), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
