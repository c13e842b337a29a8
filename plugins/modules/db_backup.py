#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: db_backup
short_description: Make one verified-ready backup artifact of one database, with its manifest
version_added: "0.2.0"
description:
  - Dumps one database with the engine's own tool (PostgreSQL C(pg_dump -Fc); MySQL and MariaDB C(mysqldump);
    SQLite the online backup API; SQL Server C(BACKUP DATABASE ... WITH CHECKSUM)) into a new artifact in
    O(directory), optionally gzip-compressed and AES-256-GCM encrypted, streaming with constant memory.
  - SQL Server writes the backup file itself into O(server_directory); the module streams it from
    O(local_directory) (the same directory as seen from here) into the artifact and deletes it. The manifest
    records the backup's LSNs; per-table row counts are taken right after the backup, not in its snapshot.
  - Writes a JSON manifest next to it (engine, versions, schema revision, per-table row counts from the dump's own
    snapshot, times, sizes, sha256, compression, key id). The manifest is written last; an interrupted backup
    (database killed, disk full, SIGTERM) leaves nothing that looks complete and never touches existing backups.
  - Every run makes a new backup, so the task always reports RV(ignore:changed=true); in check mode it reports
    what it would make.
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.database
  - rollcall.ops.backup.target
  - rollcall.ops.backup.artifact
options:
  type:
    description:
      - Backup type. V(differential) is for O(engine=mssql) only (other engines refuse it); it holds the changes
        since the newest full, non-copy-only SQL Server backup of the same database in O(directory), which it
        records as its parent and which is restored with it. Without a full backup there, it fails (take a full
        backup first); when another full backup was taken outside Rollcall in between, it fails and keeps
        nothing.
    type: str
    choices: [full, differential]
    default: full
  archive_format:
    description:
      - PostgreSQL only. V(custom) is one C(pg_dump -Fc) stream; V(directory) runs C(pg_dump -Fd) with O(jobs)
        parallel workers in a work directory where the tools run (it needs room for the dump there) and stores
        it as a tar stream, restored with C(pg_restore -j).
    type: str
    choices: [custom, directory]
    default: custom
  encrypt:
    description:
      - With a key (O(encryption_key) or O(encryption_key_file)), encrypt the stored data. V(false) stores it
        plain but still signs the manifest with the key, so an altered dump (even with its checksum recomputed
        in the manifest) fails verification and is not restored.
    type: bool
    default: true
  compression:
    description:
      - Compress the dump with gzip before encryption. PostgreSQL's custom format is already compressed.
    type: str
    choices: [none, gzip]
    default: none
  app_version:
    description:
      - Version of the application using the database, recorded in the manifest.
    type: str
  labels:
    description:
      - Free-form labels recorded in the manifest (for example the reason for the backup).
    type: dict
    default: {}
  uploads_path:
    description:
      - A directory to include in the same backup set (the SMS uploads volume), as a tar part with its own
        checksum, compressed and encrypted like the dump. It is restored together with the database.
      - It is read inside O(uploads_container) when that is set, else on the managed host.
    type: str
  uploads_container:
    description:
      - The container in which O(uploads_path) is (for the SMS, the app container).
    type: str
  uploads_table:
    description:
      - The table with one row per file in O(uploads_path) (for the SMS, C(uploads)), recorded in the manifest.
      - Verification (M(rollcall.ops.backup_verify), level native or restore) then warns when the archive holds
        fewer files than that table has rows in the backup, that is when files were already missing from the live
        directory, whose downloads answer 404 now and after a restore.
    type: str
  key_lost:
    description:
      - Before anything is written, the newest backup of this database in O(directory) (of O(project) when given)
        names the key it was made with; when that key is neither O(encryption_key) nor in the key ring
        (O(encryption_keys)), the backup is refused (a deleted or regenerated key file, a wrong vault or
        credential would otherwise start another key without a word). V(true) takes it anyway, for an old key
        that is lost for good.
    type: bool
    default: false
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: Back up the database and the uploads volume as one set
  rollcall.ops.db_backup:
    engine: postgresql
    container: rollcall-db
    database: sms
    user: sms
    password: "{{ rollcall_db_password }}"
    directory: /var/backups/rollcall
    uploads_path: /data/uploads
    uploads_container: rollcall-app

- name: Back up the SMS database from its container, encrypted
  rollcall.ops.db_backup:
    engine: postgresql
    container: rollcall-db
    database: sms
    user: sms
    password: "{{ rollcall_db_password }}"
    directory: /var/backups/rollcall
    encryption_key_file: /etc/rollcall/backup.key
    app_version: 1.0.0

- name: Back up a SQL Server database - a full backup on Sunday, differentials on the other days
  rollcall.ops.db_backup:
    engine: mssql
    host: sql01.example.org
    database: sms
    user: rollcall_backup
    password: "{{ rollcall_mssql_password }}"
    server_directory: /var/opt/mssql/backup
    local_directory: /mnt/sql01-backup
    directory: /var/backups/rollcall
    type: "{{ 'full' if ansible_facts.date_time.weekday == 'Sunday' else 'differential' }}"
    encryption_key_file: /etc/rollcall/backup.key

- name: Back up an SQLite database file
  rollcall.ops.db_backup:
    engine: sqlite
    path: /srv/sms/sms.sqlite3
    directory: /var/backups/rollcall
    compression: gzip
"""

RETURN = r"""
name:
  description: Name of the backup (engine-database-UTC timestamp-type).
  returned: always
  type: str
  sample: postgresql-sms-20261125T030405Z-full
path:
  description: Path of the data file.
  returned: success, not in check mode
  type: str
manifest:
  description: The manifest as written.
  returned: success, not in check mode
  type: dict
removed_leftovers:
  description: Temporary files of backups killed hard (their process gone, untouched for 10 minutes) and stale name
    reservations, removed from O(directory) before this backup; each with its size.
  returned: success, not in check mode
  type: list
  elements: dict
  sample: [{"file": ".postgresql-sms-20261207T030000Z-full.dump.enc.4242.tmp", "bytes": 1073741824}]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, backup, keyring
from ansible_collections.rollcall.ops.plugins.module_utils.params import ARTIFACT_ARGS, KEY_EXCLUSIVE, TARGET_ARGS, spec


def main():
    module = AnsibleModule(
        argument_spec=spec(TARGET_ARGS, ARTIFACT_ARGS,
                           type=dict(type="str", default="full", choices=["full", "differential"]),
                           archive_format=dict(type="str", default="custom", choices=["custom", "directory"]),
                           compression=dict(type="str", default="none", choices=["none", "gzip"]),
                           encrypt=dict(type="bool", default=True),
                           app_version=dict(type="str"),
                           labels=dict(type="dict", default={}),
                           uploads_path=dict(type="str"),
                           uploads_container=dict(type="str"),
                           uploads_table=dict(type="str"),
                           key_lost=dict(type="bool", default=False)),
        mutually_exclusive=KEY_EXCLUSIVE,
        supports_check_mode=True,
    )
    p = module.params
    try:
        ring = keyring.ring_from_params(p)
        key = ring.current
        target = backup.target_from_params(p)
        name = artifact.artifact_name(p["engine"], target.database, artifact.utcnow(), p["type"])
        if p["type"] == "differential" and p["engine"] != "mssql":
            raise backup.EngineError("type differential is for SQL Server (engine mssql) only; %s backups are "
                                     "always full" % p["engine"])
        engine = backup.open_engine(target)
        if p["archive_format"] != "custom":
            if p["engine"] != "postgresql":
                raise artifact.ArtifactError("archive_format %s is for PostgreSQL only" % p["archive_format"])
            engine.archive_format = p["archive_format"]
        if not os.path.isdir(p["directory"]):
            raise artifact.ArtifactError("backup directory %s does not exist; create it first" % p["directory"])
        if not p["key_lost"]:
            def ours(manifest):
                return bool(backup.select([manifest], p["engine"], target.database)) and (
                    not p["project"] or manifest.get("project") == p["project"])
            problem = keyring.key_break(keyring.newest_keyed(p["directory"], ours), ring, target.database)
            if problem:
                raise artifact.ArtifactError(problem)
        if module.check_mode:
            backup.require_database(engine)
            if p["type"] == "differential":
                backup.chain_parent(p["directory"], p["engine"], target.database)
            message = "would back up %s into %s" % (target.database, p["directory"])
            module.exit_json(changed=True, name=name, msg=message)
        # what backups killed hard left (their temporary files are as large as their dumps)
        removed = artifact.remove_stale_leftovers(p["directory"])
        files = {"path": p["uploads_path"], "container": p["uploads_container"],
                 "docker_host": p["docker_host"], "table": p["uploads_table"]} if p["uploads_path"] else None
        manifest = backup.take_backup(engine, p["directory"], p["type"], p["compression"], key, p["app_version"],
                                      p["labels"], files=files, encrypt=p["encrypt"], project=p["project"])
    except backup.ERRORS + (backup.Interrupted,) as exc:
        module.fail_json(msg="backup failed: %s" % exc)
    module.exit_json(changed=True, name=manifest["name"], manifest=manifest,
                     path=os.path.join(p["directory"], manifest["data"]["file"]),
                     removed_leftovers=[{"file": entry, "bytes": size} for entry, size in removed])


if __name__ == "__main__":
    main()
