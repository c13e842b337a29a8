# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app's two database logins, and which one it uses: how its password rotates without a failed request.

A database password cannot change under a running app without refusing its next connection, and neither
PostgreSQL nor MariaDB keeps two passwords for one login. So the app has two logins with the same rights, used in
turn: ``sms`` (``rollcall_db_user``) and ``sms_alt``. On PostgreSQL ``sms_alt`` is a member of ``sms`` (it has
what ``sms`` is granted); on MariaDB it gets the same grants. One of them is in use; the other is idle (PostgreSQL
NOLOGIN without a password, MariaDB locked).

There is no record of which one is in use: **the inventory's password says it**. ``rollcall_db_password`` opens
exactly one login, and that is the app's. A rotation (``playbooks/rotate_db_passwords.yml``) starts when the
inventory holds a new password that opens neither: the idle login gets it, the app is released again with that
login (the usual zero-downtime switch), and the login it used before is made idle.

This file holds the decision (``plan``, pure) and the two questions it needs the server to answer
(``logins_state``: which logins exist and may log in, asked as the admin; ``opens``: does a password open a login).
"""

ALTERNATE_SUFFIX = "_alt"

# What a driver says when the password is wrong or the login may not log in (as opposed to an unreachable server).
PG_REFUSALS = ("password authentication failed", "is not permitted to log in", "no password supplied")
MYSQL_REFUSALS = (1045, 4151, 3118)  # access denied; MariaDB account locked; MySQL account locked


class LoginError(Exception):
    """A decision that refuses, or a server that did not answer; the message says what to do."""


def login_names(app_user):
    """(primary, alternate): the app's two logins."""
    return app_user, app_user + ALTERNATE_SUFFIX


def plan(logins, app_user, rotate=False, live=None):
    """Which login the app is to use, and what to change for it.

    logins: {name: {"exists": bool, "enabled": bool, "opens": bool}} for both names of ``login_names``; "opens":
    the inventory's password opens it. rotate: a rotation was asked for (a new password in the inventory is
    expected). live: the login the running app uses, when known (the rotation reads it from the app container).

    Returns {"use", "set_password", "retire", "rotated", "summary"}: the app's login; whether that login's
    password is set to the inventory's and it is allowed to log in (before the app switches to it); the login to
    make idle after the app switched (or None); whether this is a rotation. Raises LoginError to refuse.
    """
    primary, alternate = login_names(app_user)
    state = {name: dict({"exists": False, "enabled": False, "opens": False}, **(logins.get(name) or {}))
             for name in (primary, alternate)}
    opening = [name for name in (primary, alternate) if state[name]["opens"]]
    enabled = [name for name in (primary, alternate) if state[name]["exists"] and state[name]["enabled"]]

    if len(opening) == 2:
        raise LoginError(
            "rollcall_db_password opens both app logins (%s and %s), so it cannot say which one the app uses. Put a "
            "new password in the inventory and run playbooks/rotate_db_passwords.yml." % (primary, alternate))

    if len(opening) == 1:
        use = opening[0]
        other = alternate if use == primary else primary
        # A rotation that stopped after its new login was made: finish it (the app moves to `use`, `other` goes idle).
        retire = other if other in enabled and rotate else None
        if retire:
            summary = "%s opens with the inventory's password; the app moves to it and %s is made idle" % (use, other)
        elif rotate:
            summary = ("nothing to rotate: the inventory's password is the one %s uses already; put the new password "
                       "in the inventory (vault) first" % use)
        else:
            summary = "the app uses %s" % use
            if other in enabled:
                summary += "; %s may log in too (an unfinished rotation: run rotate_db_passwords.yml)" % other
        return {"use": use, "set_password": False, "retire": retire, "rotated": bool(retire), "summary": summary}

    if not rotate:
        raise LoginError(
            "rollcall_db_password opens neither app login (%s, %s). If you put a new password in the inventory to "
            "rotate it, run playbooks/rotate_db_passwords.yml (it switches the app without a failed request); "
            "otherwise put back the password the app uses. Nothing was changed." % (primary, alternate))

    # A rotation: the idle login takes the new password, the app moves to it, the one in use goes idle.
    if len(enabled) == 2:
        if live not in (primary, alternate):
            raise LoginError(
                "Both app logins (%s, %s) may log in and neither opens with the inventory's password: a rotation "
                "stopped half-way and the password changed again. Put back the password of the login the app uses "
                "(label rollcall.db-login of the app container) and run the rotation again. Nothing was changed."
                % (primary, alternate))
        current = live
    elif len(enabled) == 1:
        current = enabled[0]
    else:
        current = live if live in (primary, alternate) else None
    use = primary if current == alternate else alternate
    retire = current if current in enabled else None
    summary = "%s gets the new password and the app moves to it" % use
    if retire:
        summary += "; %s, in use until then, is made idle" % retire
    return {"use": use, "set_password": True, "retire": retire, "rotated": True, "summary": summary}


def refused(engine, error):
    """True when a driver error means "this password does not open this login", False for anything else."""
    if engine == "postgresql":
        text = str(error)
        return any(marker in text for marker in PG_REFUSALS)
    args = getattr(error, "args", ())
    return bool(args) and args[0] in MYSQL_REFUSALS


def connect(engine, host, port, user, password, database, timeout=10):
    """A driver connection (psycopg2 or PyMySQL), the way community.postgresql / community.mysql connect."""
    if engine == "postgresql":
        import psycopg2
        return psycopg2.connect(host=host, port=int(port), user=user, password=password, dbname=database,
                                connect_timeout=timeout, application_name="rollcall-login-check")
    import pymysql
    return pymysql.connect(host=host, port=int(port), user=user, password=password, connect_timeout=timeout)


def opens(engine, host, port, user, password, database):
    """Does ``password`` open ``user``? Raises what the driver raised when the server did not answer at all."""
    try:
        connect(engine, host, port, user, password, database).close()
    except Exception as exc:  # the drivers' own error classes; anything but a refusal goes up
        if refused(engine, exc):
            return False
        raise
    return True


STATE_SQL = {
    "postgresql": "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN (%s, %s)",
    # MariaDB 10.4+ keeps an account's lock in the JSON of mysql.global_priv ("account_locked": true).
    "mariadb": "SELECT User, IFNULL(JSON_EXTRACT(Priv, '$.account_locked'), 'false') <> 'true' FROM mysql.global_priv "
               "WHERE Host = '%%' AND User IN (%s, %s)",
}


def logins_state(connection, engine, names):
    """{name: {"exists", "enabled"}} for the names, read through an admin connection."""
    cursor = connection.cursor()
    try:
        cursor.execute(STATE_SQL[engine], tuple(names))
        found = {row[0]: bool(row[1]) for row in cursor.fetchall()}
    finally:
        cursor.close()
    return {name: {"exists": name in found, "enabled": found.get(name, False)} for name in names}
