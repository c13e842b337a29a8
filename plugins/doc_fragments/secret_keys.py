# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # Which earlier SECRET_KEYs the app keeps accepting, decided on an app host (module_utils/secret_keys.py):
    # secret_keys, app_standby.
    DOCUMENTATION = r"""
options:
  app:
    description:
      - Name of the application; the directory under O(state_dir) that holds its release state.
    type: str
    required: true
  state_dir:
    description:
      - Directory holding the release state of every application on the host (an absolute path).
    type: path
    default: /var/lib/rollcall
  key:
    description:
      - The C(SECRET_KEY) the app is to run with (from the inventory or vault), at least O(min_length) characters.
    type: str
    required: true
  container:
    description:
      - Name of the live app container, whose environment says which key signs today. A container that does not
        exist means there is no live key (a first deploy).
    type: str
    required: true
  docker_host:
    description:
      - The Docker engine's address; default the environment's (C(DOCKER_HOST)) or the local socket.
    type: str
  grace_hours:
    description:
      - How long, in hours, the key being replaced keeps verifying what it signed. V(0) keeps no fallback at all.
      - Applies to the key replaced by this run; recorded fallbacks keep the expiry they were given.
    type: float
    default: 168
  min_length:
    description:
      - The shortest key the app accepts (seed 002 - 48). A previous key shorter than this is not kept.
    type: int
    default: 48
"""
