# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The warm standby: which container answers as "this release with these settings", and traffic back to it.

A release runs under a network alias made of its settings and image ID (``<project>-`` + the first 12 hex digits of
sha256(settings as sorted JSON + image ID)); roles/sms_app computes it with these functions too (the filters
``release_config_hash`` and ``release_alias``, plugins/filter/release.py); the release that was live
before a deploy stays running as the warm standby under its alias. A rollback to that release asks the proxy to
fetch the standby's ``/health/ready`` through the alias of *today's* settings: only a container started with
exactly this image and these settings answers, and ``/health/ready`` includes the app's schema check, so one that
answers serves correctly on the schema as it is now. On 200 the proxy switches to it (``rollcall-switch``, the
proxy image's one switch); otherwise nothing changes and the caller starts the release as usual.

``settings`` must give what the role's ``sms_app_env`` gives (``combine``), and the hash what releases deployed
before it moved here carry (Jinja's ``to_json(sort_keys=True)`` then ``hash('sha256')``): a different text means
no standby is ever found and every host redeploys once (a slow rollback, never a wrong one).
tests/unit/test_standby.py compares them with Ansible's own filters, vaulted settings included.

No Ansible here: the module ``app_standby`` is a thin wrapper.
"""

import hashlib
import json

from .secret_keys import ENV as FALLBACKS_ENV

SWITCH_SCRIPT = ('curl -fsS --max-time 5 -o /dev/null "http://$1/health/ready"'
                 ' && { [ "$2" = ask ] || exec rollcall-switch "$1"; }')
PORT = 8000


def settings(base, fallbacks_env, extra=None):
    """The release's settings: ``base``, then SECRET_KEY_FALLBACKS when there are fallbacks, then ``extra``
    (rollcall_app_extra_env) over both - the role's ``sms_app_env``."""
    env = dict(base)
    if fallbacks_env:
        env[FALLBACKS_ENV] = fallbacks_env
    env.update(extra or {})
    return env


def config_hash(env, image_id):
    """What identifies a running release: sha256 of its settings ``env`` as sorted JSON, then its image ID (the
    containers' ``rollcall.config-hash`` label and the history's ``config_hash``; a deploy whose hash matches the
    live container's changes nothing)."""
    text = json.dumps(env, sort_keys=True) + (image_id or "")
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def alias_of(project, digest):
    """The network alias of the release whose config hash is ``digest``."""
    return "%s-%s" % (project, digest[:12])


def alias(project, env, image_id):
    """The network alias a release with settings ``env`` on image ``image_id`` runs under."""
    return alias_of(project, config_hash(env, image_id))


def switch_argv(address, ask_only):
    """The command run in the proxy: fetch ``address``'s /health/ready and, unless ``ask_only``, switch to it.
    Exit 0: it answered (and traffic now goes there); anything else: it did not, nothing changed."""
    return ["sh", "-c", SWITCH_SCRIPT, "rollcall-standby", address, "ask" if ask_only else "switch"]
