"""Run one of our modules through real ansible (ad hoc, local connection) and return its JSON result."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


def run_module(module, args, *extra, timeout=600):
    """(rc, result, all output). With -vvv, Ansible prints text before the JSON report: it is skipped."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_LOCALHOST_WARNING="0")
    proc = subprocess.run(
        [ANSIBLE, "localhost", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
         "-m", "rollcall.ops." + module, "-a", json.dumps(args), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    start = 0 if proc.stdout.startswith("{") else proc.stdout.find("\n{\n") + 1
    try:
        document, _ = json.JSONDecoder().raw_decode(proc.stdout[start:])
        result = document["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("no module result:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-2000:])) from None
    return proc.returncode, result, proc.stdout + proc.stderr
