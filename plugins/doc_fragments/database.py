# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # Where the database is and how to reach it: every module that talks to a database (db_backup, backup_verify,
    # db_restore, mssql_plan, mssql_validate, db_maintenance, db_diagnostics). Backup-only options: backup.TARGET.
    DOCUMENTATION = r"""
options:
  engine:
    description:
      - The database engine. V(mysql) covers MySQL and MariaDB; V(mssql) is Microsoft SQL Server (native
        C(BACKUP DATABASE) / C(RESTORE DATABASE) through the Python package C(pymssql) where the module runs).
    type: str
    choices: [postgresql, mysql, sqlite, mssql]
    required: true
  database:
    description:
      - The database name. For SQLite, defaults to the file name without extension.
    type: str
  host:
    description:
      - Server address as the client tools see it (inside O(container) when that is set).
    type: str
    default: 127.0.0.1
  port:
    description:
      - Server port; the engine's default when omitted.
    type: int
  user:
    description:
      - Login user.
    type: str
  password:
    description:
      - Login password. Passed to the client tools through their environment, never on a command line
        (SQL Server - to C(pymssql) directly). Never logged, never in an error message.
    type: str
  path:
    description:
      - SQLite only. The database file (inside O(container) when that is set).
    type: path
  container:
    description:
      - Run the client tools inside this running container (usually the database's own) with C(docker exec),
        streaming. Without it the tools run on the managed host and reach the server over the network.
      - Not used with O(engine=mssql), which always connects over the network.
    type: str
  docker_host:
    description:
      - The Docker engine to use with O(container).
    type: str
"""
