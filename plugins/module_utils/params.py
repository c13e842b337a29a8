# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by the backup modules (documented in doc_fragments/backup.py)."""

TARGET_ARGS = dict(
    engine=dict(type="str", required=True, choices=["postgresql", "mysql", "sqlite", "mssql"]),
    database=dict(type="str"),
    host=dict(type="str", default="127.0.0.1"),
    port=dict(type="int"),
    user=dict(type="str"),
    password=dict(type="str", no_log=True),
    path=dict(type="path"),
    container=dict(type="str"),
    docker_host=dict(type="str"),
    jobs=dict(type="int", default=1),
    server_directory=dict(type="path"),
    local_directory=dict(type="path"),
)

# Where a database is, without the backup-only options (db_maintenance, db_diagnostics; doc_fragments/database.py).
DATABASE_ARGS = dict((k, v) for k, v in TARGET_ARGS.items()
                     if k not in ("jobs", "server_directory", "local_directory"))

# The backup key, and the key ring: previous keys, for reading backups made before a key rotation (keyring.py).
KEY_ARGS = dict(
    encryption_key=dict(type="str", no_log=True),
    encryption_key_file=dict(type="path"),
    encryption_keys=dict(type="list", elements="str", no_log=True),
    encryption_key_files=dict(type="list", elements="path", no_log=False),  # paths, not keys
)

ARTIFACT_ARGS = dict(
    directory=dict(type="path", required=True),
    project=dict(type="str"),
    **KEY_ARGS,
)

# For modules that read backups: whether an unsigned manifest is acceptable although a key is given.
READ_ARGS = dict(
    allow_unsigned=dict(type="bool", default=False),
)

KEY_EXCLUSIVE = [("encryption_key", "encryption_key_file")]


def spec(*parts, **extra):
    merged = {}
    for part in parts:
        merged.update(part)
    merged.update(extra)
    return merged
