# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # The backup modules' own target options. Where the database is and how to reach it is the fragment
    # rollcall.ops.database (shared with db_maintenance and db_diagnostics); modules extend both.
    TARGET = r"""
options:
  jobs:
    description:
      - PostgreSQL directory-format archives only. Parallel jobs for C(pg_dump -Fd) and C(pg_restore -j).
    type: int
    default: 1
  server_directory:
    description:
      - SQL Server only, and required for it. A directory on the SQL Server machine, as the server sees it
        (for example C(/var/opt/mssql/backup) or C(D:\Backup)), where the server writes each backup file and
        reads the copies made for verification and restore. Rollcall deletes every file it puts there.
    type: path
  local_directory:
    description:
      - SQL Server only. The same directory as O(server_directory), as seen from where the module runs (a
        mounted share, or the same path when the module runs on the SQL Server machine). Backups are streamed
        from it into O(directory); copies for verification and restore are written into it.
      - Defaults to O(server_directory).
    type: path
"""

    # Where artifacts live and how they are protected.
    ARTIFACT = r"""
options:
  directory:
    description:
      - The backup directory on the managed host. It must exist.
    type: path
    required: true
  project:
    description:
      - The stack the backups belong to (C(rollcall_project)), for a backup directory that several stacks share.
        A new backup records it in its manifest; picking the newest backup and restoring take only backups of
        this project (or backups that record none, made before projects were recorded), and a restore of a
        backup made of another project's database is refused before anything is read.
    type: str
  encryption_key:
    description:
      - AES-256 key as 64 hexadecimal characters or base64 of 32 bytes. Never logged, never in a manifest.
      - Mutually exclusive with O(encryption_key_file).
      - With a key, every new manifest is also signed (HMAC-SHA256 over the manifest, which records the sha256
        and size of every stored file, with a signing key derived from this key), and a signed manifest is
        checked first whenever the backup is verified or restored with the key.
    type: str
  encryption_key_file:
    description:
      - File on the managed host holding the key (32 raw bytes, hex or base64).
    type: path
  encryption_keys:
    description:
      - The key ring - previous backup keys (same forms as O(encryption_key)), for reading backups made before a
        key rotation. Never logged. The playbooks pass C(rollcall_backup_old_keys) here.
      - A module that reads a backup picks the key by the key id recorded in its manifest (the signature's and every
        encrypted file's) from O(encryption_key) and this list. A backup whose key id is in neither fails with an
        error naming that key id and saying to add its key to C(rollcall_backup_old_keys).
      - New backups (M(rollcall.ops.db_backup), and the safety backup of M(rollcall.ops.db_restore)) always use
        O(encryption_key) or O(encryption_key_file), never a key of this list.
      - An entry that is not a key (truncated, empty) fails the task, naming its place in the list, never its value.
    type: list
    elements: str
  encryption_key_files:
    description:
      - Like O(encryption_keys), with each previous key in a file on the managed host.
    type: list
    elements: path
"""

    # Reading backups back (backup_verify, db_restore): signatures.
    READ = r"""
options:
  allow_unsigned:
    description:
      - With a key given, a backup whose manifest is not signed fails verification and is not restored (backups
        made with a key are signed, so a missing signature means it was made without a key or the signature was
        removed). Set V(true) to accept an unsigned manifest, for a plain backup made without a key.
      - Encrypted backups made before manifests were signed (manifest version 1) are accepted without this
        option, because their data is authenticated by the encryption itself.
      - A wrong key is reported as such, naming the key id the backup needs.
    type: bool
    default: false
"""
