"""plugins/module_utils/standby.py and the app_standby module's switch: the alias must be exactly what the role's
Jinja computed (roles/sms_app vars: sms_app_env, sms_app_alias; now the filters over this module), or no rollback
finds its warm standby."""

import json
import os
import subprocess
import sys

import docker.errors
import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.rollcall.ops.plugins.module_utils import standby
from ansible_collections.rollcall.ops.plugins.modules import app_standby

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")  # the one beside this Python, not PATH's

BASE = {"DATABASE_URL": "postgresql://sms_app_a:pa%24s@10.0.0.3:5432/sms", "SECRET_KEY": "k" * 48,
        "RATE_LIMIT_PER_MINUTE": "60", "TRUST_PROXY": "1"}
FALLBACKS = '[{"expires":"2026-12-11T10:00:00Z","key":"%s"}]' % ("é" * 48)
IMAGE = "sha256:" + "ab" * 32
ROLE = ("{{ project }}-{{ ((base | combine(fallbacks_env, extra) | to_json(sort_keys=True) ~ image_id)"
        " | hash('sha256'))[:12] }}")


def role_alias(fallbacks, extra):
    """What roles/sms_app computes: sms_app_env = base + fallbacks (when any) + extra, then the alias."""
    variables = {"project": "sms", "base": BASE, "extra": extra, "image_id": IMAGE,
                 "fallbacks_env": {"SECRET_KEY_FALLBACKS": fallbacks} if fallbacks else {}}
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(ROLE))


@pytest.mark.parametrize("fallbacks, extra", [
    ("", {}),                                              # no fallbacks: the variable is left out
    (FALLBACKS, {}),                                       # fallbacks (non-ASCII text escaped as to_json does)
    (FALLBACKS, {"WORKERS": 3, "DEBUG": False}),           # extra settings with other types
    (FALLBACKS, {"SECRET_KEY_FALLBACKS": "[]"}),           # extra over the fallbacks, as combine does
])
def test_the_alias_is_the_roles(fallbacks, extra):
    env = standby.settings(BASE, fallbacks, extra)
    assert standby.alias("sms", env, IMAGE) == role_alias(fallbacks, extra)


def test_settings_leave_out_empty_fallbacks_and_let_extra_win():
    assert "SECRET_KEY_FALLBACKS" not in standby.settings(BASE, "", {})
    assert standby.settings(BASE, FALLBACKS, None)["SECRET_KEY_FALLBACKS"] == FALLBACKS
    assert standby.settings(BASE, FALLBACKS, {"TRUST_PROXY": "0"})["TRUST_PROXY"] == "0"
    assert BASE["TRUST_PROXY"] == "1", "the caller's settings are not changed"


def test_another_image_or_setting_is_another_alias():
    env = standby.settings(BASE, "", {})
    assert standby.alias("sms", env, IMAGE) != standby.alias("sms", env, "sha256:" + "cd" * 32)
    assert standby.alias("sms", env, IMAGE) != standby.alias("sms", dict(env, RATE_LIMIT_PER_MINUTE="61"), IMAGE)
    assert standby.alias("sms", env, IMAGE).startswith("sms-") and len(standby.alias("sms", env, IMAGE)) == 16


def test_switch_argv_asks_or_switches_without_a_shell_string_of_input():
    ask = standby.switch_argv("sms-0123456789ab:8000", ask_only=True)
    assert ask[:2] == ["sh", "-c"] and ask[-2:] == ["sms-0123456789ab:8000", "ask"]
    assert "sms-0123456789ab" not in ask[2], "the address is an argument, never part of the script"
    assert standby.switch_argv("a:8000", ask_only=False)[-1] == "switch"


class FakeContainer:
    def __init__(self, code):
        self.code, self.argv = code, None

    def exec_run(self, argv):
        self.argv = argv
        return self.code, b""


class FakeApi:
    def __init__(self, container):
        self.containers = self
        self.container = container

    def get(self, name):
        if self.container is None:
            raise docker.errors.NotFound("no such container: %s" % name)
        return self.container


@pytest.mark.parametrize("code, ready", [(0, True), (22, False), (7, False)])
def test_the_switch_is_taken_only_when_the_standby_answered(code, ready):
    proxy = FakeContainer(code)
    assert app_standby.ask_and_switch(FakeApi(proxy), "sms-proxy", "sms-x:8000", ask_only=False) is ready
    assert proxy.argv[-2:] == ["sms-x:8000", "switch"]


def test_no_proxy_means_no_standby_not_a_failure():
    assert app_standby.ask_and_switch(FakeApi(None), "sms-proxy", "sms-x:8000", ask_only=True) is False


@pytest.mark.parametrize("fallbacks, extra", [("", {}), (FALLBACKS, {"WORKERS": 3, "DEBUG": False})])
def test_the_roles_filters_give_the_alias_releases_carry_vaulted_settings_included(tmp_path, fallbacks, extra):
    """roles/sms_app computes the alias with the filters over this module (plugins/filter/release.py), run here as
    a playbook runs them: the same text as the Jinja it replaced (containers started before keep their standby),
    and a Vault-encrypted setting hashes as its plain text, as the module (which gets it decrypted) hashes it."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    password = "rollcall-test-vault-password"
    (tmp_path / "pw").write_text(password)
    ciphertext = VaultLib([("default", VaultSecret(password.encode()))]).encrypt(BASE["SECRET_KEY"]).decode()
    variables = {"project": "sms", "extra": extra, "image_id": IMAGE,
                 "base": {k: v for k, v in BASE.items() if k != "SECRET_KEY"},
                 "fallbacks_env": {"SECRET_KEY_FALLBACKS": fallbacks} if fallbacks else {}}
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    (tmp_path / "key.yml").write_text("secret_key: !vault |\n" + "".join(
        "  %s\n" % line for line in ciphertext.splitlines()))
    base = "(base | combine({'SECRET_KEY': secret_key}))"
    now = ("{{ (%s | combine(fallbacks_env, extra)) | rollcall.ops.release_config_hash(image_id)"
           " | rollcall.ops.release_alias(project) }}" % base)
    before = ("{{ project }}-{{ ((%s | combine(fallbacks_env, extra) | to_json(sort_keys=True) ~ image_id)"
              " | hash('sha256'))[:12] }}" % base)
    out = subprocess.run(
        [ANSIBLE, "localhost", "-m", "ansible.builtin.debug", "-a", "msg='%s %s'" % (now, before),
         "-e", "@%s" % (tmp_path / "vars.json"), "-e", "@%s" % (tmp_path / "key.yml"),
         "--vault-password-file", str(tmp_path / "pw")],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    msg = yaml.safe_load(out.stdout.split("=>", 1)[1])["msg"]  # localhost | SUCCESS => (YAML, ansible.cfg)
    expected = standby.alias("sms", standby.settings(BASE, fallbacks, extra), IMAGE)
    assert msg == "%s %s" % (expected, expected)
