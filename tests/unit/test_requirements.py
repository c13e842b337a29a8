"""requirements.yml (what AWX's project update installs with ansible-galaxy, and what a bare clone needs) names
every collection our content uses, at the version our pinned ansible package bundles (the one the tests ran)
and within galaxy.yml's dependency ranges."""

import json
import os
import re

import yaml
from ansible.module_utils.compat.version import LooseVersion

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = ("playbooks", "roles", "plugins")


def load(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def requirements():
    return {c["name"]: str(c["version"]) for c in load("requirements.yml")["collections"]}


def used_collections():
    found = set()
    pattern = re.compile(r"\b([a-z_]+)\.([a-z_0-9]+)\.[a-z_0-9]+\b")
    for top in SHIPPED:
        for root, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d != "collections"]  # playbooks/collections links the repo itself
            for name in files:
                if name.endswith((".yml", ".yaml")):
                    with open(os.path.join(root, name), encoding="utf-8") as handle:
                        text = handle.read()
                    found.update("%s.%s" % m for m in pattern.findall(text) if m[0] == "community")
    return found


def bundled_version(fqcn):
    import ansible_collections
    namespace, name = fqcn.split(".")
    for base in ansible_collections.__path__:
        manifest = os.path.join(base, namespace, name, "MANIFEST.json")
        if os.path.exists(manifest):
            with open(manifest, encoding="utf-8") as handle:
                return json.load(handle)["collection_info"]["version"]
    return None


def test_requirements_is_what_awx_reads():
    data = load("requirements.yml")
    assert set(data) <= {"collections", "roles"} and data["collections"], data
    for entry in data["collections"]:
        assert set(entry) <= {"name", "version", "source", "type"}, entry
        assert re.fullmatch(r"[a-z_]+\.[a-z_0-9]+", entry["name"]) and str(entry["version"]), entry
    # AWX reads collections/requirements.yml as well as this one; two would install twice.
    assert not os.path.exists(os.path.join(ROOT, "collections", "requirements.yml"))


def test_every_collection_the_content_uses_is_required():
    used = used_collections()
    assert "community.docker" in used  # the scan finds what it should
    assert used <= set(requirements()), used - set(requirements())


def test_requirements_pin_the_tested_versions_within_galaxy_ranges():
    pins = requirements()
    dependencies = load("galaxy.yml")["dependencies"]
    assert set(dependencies) <= set(pins), set(dependencies) - set(pins)
    for name, version in pins.items():
        assert bundled_version(name) == version, (name, version, bundled_version(name))
        spec = dependencies.get(name, "*")
        for clause in filter(None, (c.strip() for c in spec.split(","))):
            op, bound = re.fullmatch(r"(>=|<=|==|>|<|!=)?\s*(\S+)", clause).groups()
            if bound == "*":
                continue
            v, b = LooseVersion(version), LooseVersion(bound)
            ok = {">=": v >= b, "<=": v <= b, ">": v > b, "<": v < b, "!=": v != b, "==": v == b, None: v == b}[op]
            assert ok, (name, version, spec)
