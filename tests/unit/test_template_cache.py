"""plugins/strategy/rollcall_linear.py cache_template_compiles: a template or condition is compiled once per process,
and every render gives what it gives without the cache (other variables, other syntax settings, escaped backslashes,
a syntax error, a condition).

Each side runs in a Python of its own, as ansible-playbook sets itself up: one with the cache, one without."""

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BODY = textwrap.dedent("""
    import importlib.util, json, os, sys
    from ansible import constants as C
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
    _AnsibleCollectionFinder(paths=C.COLLECTIONS_PATHS)._install()
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template
    spec = importlib.util.spec_from_file_location("rollcall_linear", os.path.join(ROOT_DIR, "plugins", "strategy",
                                                                                  "rollcall_linear.py"))
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    if sys.argv[1] == "cached":
        plugin.cache_template_compiles()
        plugin.cache_template_compiles()  # idempotent
    from jinja2 import Environment
    compiles = []
    original = Environment._compile
    def counting(self, source, filename):
        compiles.append(1)
        return original(self, source, filename)
    Environment._compile = counting

    TEMPLATES = [
        "{{ name }}-{{ n + 1 }}",
        "{{ name }}-{{ n + 1 }}",
        "{{ 'a\\\\nb' }}|{{ path }}",
        "#jinja2:variable_start_string:'[[', variable_end_string:']]'\\n[[ name ]] {{ name }}",
        "{% for i in range(n) %}{{ i }},{% endfor %}",
        "{{ names | map('upper') | join(',') }}",
        "{{ name",
        "{{ {'k': n} | to_json }}",
    ]
    CONDITIONS = ["n == 1", "n == 1", "name is match('h')", "n >"]
    out = []
    for variables in ({"name": "h1", "n": 1, "path": "c:\\\\x", "names": ["a", "b"]},
                      {"name": "x2", "n": 3, "path": "d:\\\\y", "names": ["c"]}):
        for _ in range(2):  # a second Templar: a new environment of its own
            templar = Templar(loader=DataLoader(), variables=variables)
            for source in TEMPLATES:
                try:
                    out.append(repr(templar.template(trust_as_template(source))))
                except Exception as ex:
                    out.append(type(ex).__name__)
            for condition in CONDITIONS:
                try:
                    out.append(repr(templar.evaluate_conditional(trust_as_template(condition))))
                except Exception as ex:
                    out.append(type(ex).__name__)
    print(json.dumps({"out": out, "compiles": len(compiles)}))
    """).replace("ROOT_DIR", repr(ROOT))


def render(mode):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([sys.executable, "-c", BODY, mode], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cached_compiles_render_as_uncached_ones_and_compile_each_source_once():
    cached, plain = render("cached"), render("plain")
    assert cached["out"] == plain["out"]
    out = plain["out"]
    assert out[0] == "'h1-2'" and out[2] == "'a\\\\nb|c:\\\\x'" and out[3] == "'h1 {{ name }}'"
    assert out[6] == "AnsibleTemplateSyntaxError" and out[-1] == "AnsibleTemplateSyntaxError"
    assert "'x2-4'" in out and "'0,1,2,'" in out and "'A,B'" in out
    # 8 templates and 4 conditions rendered 4 times each: every time without the cache; with it, once per distinct
    # source that compiles (6 templates and 2 conditions; a syntax error never reaches the compiler)
    assert plain["compiles"] >= 4 * 8
    assert cached["compiles"] == 6 + 2, cached
