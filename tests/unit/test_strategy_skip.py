"""plugins/strategy/rollcall_linear.py: a task whose ``when`` is false is skipped in the controller's process, without
forking a task worker, and the run is the same as with Ansible's linear strategy: the same results, the same
registered values, the same failures, the same output for no_log tasks.

Each case runs the same playbook twice, with ``rollcall_linear`` and with ``linear``, through ansible-playbook and the
json callback, and compares every host's result of every task."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

TASKS = """
- name: A false condition
  ansible.builtin.debug: {msg: one}
  when: flag
  register: r_false
- name: A true condition runs
  ansible.builtin.set_fact: {ran: true}
  when: not flag
- name: False on one host only
  ansible.builtin.debug: {msg: per host}
  when: inventory_hostname == 'h1'
  register: r_host
- name: A list of conditions, the second false
  ansible.builtin.debug: {msg: list}
  when: [not flag, flag]
  register: r_list
- name: A no_log task that is skipped
  ansible.builtin.debug: {msg: "{{ secret_thing }}"}
  when: flag
  no_log: true
  register: r_nolog
- name: A condition on a connection variable (the worker decides)
  ansible.builtin.debug: {msg: conn}
  when: ansible_host is not defined
  register: r_conn
- name: A variable built from a connection variable that -c sets (the worker adds it; so must the controller)
  ansible.builtin.debug: {msg: local}
  when: not conn_is_local
  register: r_conn_var
- name: The same, true
  ansible.builtin.set_fact: {conn_var_ran: true}
  when: conn_is_local
- name: A loop (the worker decides per item)
  ansible.builtin.debug: {msg: "{{ item }}"}
  loop: [1, 2]
  when: item > 1
  register: r_loop
- name: An undefined variable in the condition fails as before
  ansible.builtin.debug: {msg: x}
  when: nope_undefined
  ignore_errors: true
  register: r_undef
- name: run_once and false
  ansible.builtin.debug: {msg: once}
  run_once: true
  when: flag
  register: r_once
- name: A skipped include
  ansible.builtin.include_tasks: inc.yml
  when: flag
- name: An include that runs
  ansible.builtin.include_tasks: inc.yml
  when: not flag
- name: Check mode in the condition
  ansible.builtin.debug: {msg: check}
  when: ansible_check_mode
  register: r_check
- name: Delegated and false
  ansible.builtin.debug: {msg: delegated}
  delegate_to: h2
  when: flag
  register: r_delegated
- name: A block with a variable of its own per host (the controller runs these; it must not keep one host's values)
  vars:
    block_value: "{{ inventory_hostname }}-block"
  block:
    - name: A fact from the block's variable
      ansible.builtin.set_fact: {from_block: "{{ block_value }}"}
    - name: An assert that fails on one host, ignored
      ansible.builtin.assert: {that: ["inventory_hostname == 'h1'"], fail_msg: "not h1", quiet: true}
      ignore_errors: true
      register: r_assert
    - name: A fail on one host, rescued
      ansible.builtin.fail: {msg: "{{ inventory_hostname }} fails"}
      when: inventory_hostname == 'h2'
    - name: After the fail (h1 only)
      ansible.builtin.set_fact: {after_fail: true}
  rescue:
    - name: Rescued
      ansible.builtin.set_fact: {rescued: "{{ ansible_failed_result.msg }}"}
- name: A no_log fact
  ansible.builtin.set_fact: {hidden: "{{ secret_thing }}"}
  no_log: true
  register: r_hidden
- name: A debug of a variable, changed_when true
  ansible.builtin.debug: {var: from_block}
  changed_when: true
- name: "A name templated per host: {{ inventory_hostname }}"
  ansible.builtin.debug: {msg: named}
- name: A task with retries (the worker runs it)
  ansible.builtin.set_fact: {retried: true}
  retries: 1
  until: true
- name: The registered values
  ansible.builtin.debug:
    msg: "{{ {'false': r_false, 'host': r_host, 'list': r_list, 'nolog': r_nolog, 'conn': r_conn, 'loop': r_loop,
              'undef': r_undef, 'once': r_once, 'check': r_check, 'delegated': r_delegated,
              'included': included | default('no'), 'conn_var': r_conn_var,
              'conn_var_ran': conn_var_ran | default(false), 'from_block': from_block, 'assert': r_assert,
              'rescued': rescued | default(''), 'after_fail': after_fail | default(false),
              'hidden': hidden == secret_thing} }}"
"""


def without_mitogen(tmp_path):
    """A PYTHONPATH on which ``import ansible_mitogen`` fails, as in an execution environment without Mitogen."""
    shim = tmp_path / "no-mitogen" / "ansible_mitogen"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "__init__.py").write_text("raise ImportError('Mitogen is not installed here')\n")
    return str(shim.parent)


def run(tmp_path, strategy, *extra, pythonpath=None):
    (tmp_path / "inc.yml").write_text("- name: Included\n  ansible.builtin.set_fact: {included: yes}\n")
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  vars: {flag: false, secret_thing: s3cr3t-value,\n"
        "    conn_is_local: \"{{ ansible_connection | default('ssh') == 'local' }}\"}\n  tasks:\n"
        + textwrap.indent(TASKS, "    "))
    # the connection comes from -c, as a controller's command line gives it: it is no inventory variable
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": {"h1": {}, "h2": {}}, "vars": {
        "ansible_python_interpreter": sys.executable}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STRATEGY=strategy,
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run([PLAYBOOK, "-c", "local", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"),
                           *extra],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    document = json.loads(proc.stdout[proc.stdout.index("{"):])
    # the json callback lists a task once per host for a strategy it does not know to run hosts in lockstep
    tasks = []
    for task in document["plays"][0]["tasks"]:
        if tasks and tasks[-1][0] == task["task"]["name"]:
            tasks[-1][1].update(task["hosts"])
        else:
            tasks.append((task["task"]["name"], dict(task["hosts"])))
    return proc.returncode, tasks, proc.stdout + proc.stderr


def comparable(tasks):
    """The results without what differs between any two runs (timestamps, durations)."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in ("duration", "start", "end", "delta")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value
    return [(name, clean(hosts)) for name, hosts in tasks]


@pytest.mark.parametrize("mitogen", [True, False], ids=["mitogen", "no-mitogen"])
@pytest.mark.parametrize("extra", [(), ("--check",)], ids=["run", "check-mode"])
def test_skipping_in_the_controller_gives_the_run_the_linear_strategy_gives(tmp_path, extra, mitogen):
    rc_ours, ours, out_ours = run(tmp_path, "rollcall_linear", *extra,
                                  pythonpath=None if mitogen else without_mitogen(tmp_path))
    rc_linear, linear, _ = run(tmp_path, "linear", *extra)
    assert rc_ours == rc_linear == 0, out_ours[-3000:]
    assert comparable(ours) == comparable(linear)
    assert "s3cr3t-value" not in out_ours
    by_name = dict(ours)
    registered = by_name["The registered values"]["h1"]["msg"]
    assert registered["false"]["skipped"] is True and registered["false"]["false_condition"] == "flag"
    assert registered["list"]["false_condition"] == "flag"
    assert registered["once"]["skipped"] is True
    assert registered["included"] is True
    assert registered["check"].get("skipped", False) is (not extra)
    assert registered["conn_var"]["skipped"] is True and registered["conn_var_ran"] is True
    assert by_name["False on one host only"]["h2"]["skipped"] is True
    assert "skipped" not in by_name["False on one host only"]["h1"]
    assert by_name["A no_log task that is skipped"]["h1"]["censored"].startswith("the output has been hidden")
    assert by_name["An undefined variable in the condition fails as before"]["h1"]["failed"] is True
    assert "nope_undefined" in by_name["An undefined variable in the condition fails as before"]["h1"]["msg"]
    # what the controller ran itself: per host, as the worker would
    other = by_name["The registered values"]["h2"]["msg"]
    assert (registered["from_block"], other["from_block"]) == ("h1-block", "h2-block")
    assert registered["assert"].get("failed") is not True and other["assert"]["failed"] is True
    assert other["assert"]["msg"] == "not h1"
    assert (registered["rescued"], other["rescued"]) == ("", "h2 fails")
    assert (registered["after_fail"], other["after_fail"]) == (True, False)
    assert registered["hidden"] is True and by_name["A no_log fact"]["h1"]["censored"].startswith("the output has been")
    assert by_name["A debug of a variable, changed_when true"]["h1"]["changed"] is True


def test_skipped_tasks_and_controller_actions_fork_no_worker(tmp_path):
    (tmp_path / "play.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n" + "".join(
        "    - name: Skipped %d\n      ansible.builtin.debug: {msg: x}\n      when: inventory_hostname == 'h9'\n" % n
        for n in range(10)) + "    - name: Runs a module\n      ansible.builtin.ping:\n"
        "    - name: A fact\n      ansible.builtin.set_fact: {y: 1}\n"
        "    - name: A message\n      ansible.builtin.debug: {msg: '{{ y }}'}\n"
        "    - name: A check\n      ansible.builtin.assert: {that: [y == 1]}\n")
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": {"h1": {}, "h2": {}}, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}))
    counts = {}
    for strategy, pythonpath in (("rollcall_linear", None), ("rollcall_linear", without_mitogen(tmp_path)),
                                 ("linear", None)):
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STRATEGY=strategy,
                   ANSIBLE_DEBUG="1")
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        proc = subprocess.run([PLAYBOOK, "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml")],
                              cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-3000:]
        assert proc.stdout.count("skipping: [h") == 20
        key = strategy + (" without Mitogen" if pythonpath else "")
        counts[key] = output.count("worker is ")
        assert ("mitogen" in output.lower()) is (key == "rollcall_linear")  # Ansible's debug lines name it when used
    # linear forks a worker for each host and task (14 tasks, 2 hosts); ours only for the module run
    assert counts == {"rollcall_linear": 2, "rollcall_linear without Mitogen": 2, "linear": 28}
