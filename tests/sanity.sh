#!/usr/bin/env bash
# ansible-test sanity on the collection, copied into a temporary ansible_collections/rollcall/ops tree
# (ansible-test insists on that layout). Runs the tests whose tools the pinned venv provides.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/rollcall-sanity.XXXXXX)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/rollcall/ops"
mkdir -p "$dest"
# Only what the collection ships (galaxy.yml build_ignore keeps images, molecule, bench and the rest out).
cp -r "$root"/{galaxy.yml,README.md,CHANGELOG.md,meta,plugins,roles,playbooks} "$dest"/
rm -rf "$dest/playbooks/collections"  # the link that makes playbooks find rollcall.ops from any directory
mkdir -p "$dest/tests"
find "$dest" -name __pycache__ -prune -exec rm -rf {} +
# ansible-test bootstraps pip in its test venvs with a script it downloads from a host we cannot reach; give
# it an equivalent one that runs pip from the same pip release's wheel, fetched from PyPI (cached).
pip_version=$("$root/.venv/bin/python" -c 'from ansible_test._internal.python_requirements import PIP_VERSION as v; print(v)' 2>/dev/null || echo 24.2)
boot="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -f "$boot" ]; then
  mkdir -p "$root/.cache/pip-wheel" "$(dirname "$boot")"
  "$root/.venv/bin/pip" download -q --no-deps --only-binary=:all: -d "$root/.cache/pip-wheel" "pip==$pip_version" 2>/dev/null
  wheel=$(ls "$root"/.cache/pip-wheel/pip-"$pip_version"-*.whl)
  cat >"$boot" <<PY
# Stand-in for get-pip.py written by Rollcall's tests/sanity.sh: run pip from its wheel to install pip.
import sys
sys.path.insert(0, "$wheel")
from pip._internal.cli.main import main
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]  # get-pip.py-only flags
sys.exit(main(["install", "--upgrade", "--force-reinstall"] + args))
PY
fi
cd "$dest"
git init -q . && git add -A   # ansible-test lists files through git
"$root/.venv/bin/ansible-test" sanity --python 3.11 --color no "$@"
