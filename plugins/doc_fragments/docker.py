# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # The Docker engine a module talks to through module_utils/docker.py: stack_remove, container_health.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker engine.
    type: str
    default: unix:///var/run/docker.sock
requirements:
  - docker (Python SDK)
"""
