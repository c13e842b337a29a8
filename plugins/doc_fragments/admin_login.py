# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # How a module reaches the server as its admin, through the port published on the db host (roles/database's
    # database_admin_login): db_login_plan, db_role_matrix.
    DOCUMENTATION = r"""
options:
  login_host:
    description: Where the server answers (on the db host, the address its port is published on).
    type: str
    default: 127.0.0.1
  login_port:
    description: The server's port on O(login_host).
    type: int
    required: true
  login_password:
    description: The admin's password.
    type: str
    required: true
"""
