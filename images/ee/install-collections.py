#!/usr/bin/env python3
"""Install the collections a requirements.yml names, at exactly its versions, out of an `ansible` wheel.

    install-collections.py ANSIBLE_WHEEL REQUIREMENTS_YML DEST

The `ansible` package bundles the collections of its release; this takes only the ones named (and the
collections they depend on) into DEST/ansible_collections, where ansible-core finds them (DEST is on the default
collections path). A version that differs from the requirement is an error: the image would not hold what
execution-environment.yml declares.
"""

import json
import posixpath
import sys
import zipfile

import yaml


def main(wheel, requirements, dest):
    with open(requirements, encoding="utf-8") as handle:
        wanted = {item["name"]: str(item["version"]) for item in yaml.safe_load(handle)["collections"]}
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        pending, done = list(wanted), set()
        while pending:
            fqcn = pending.pop()
            if fqcn in done:
                continue
            prefix = "ansible_collections/%s/" % fqcn.replace(".", "/")
            try:
                manifest = json.loads(archive.read(prefix + "MANIFEST.json"))["collection_info"]
            except KeyError:
                raise SystemExit("install-collections: %s is not in %s" % (fqcn, wheel)) from None
            if fqcn in wanted and manifest["version"] != wanted[fqcn]:
                raise SystemExit("install-collections: %s wants %s %s, the bundle has %s"
                                 % (requirements, fqcn, wanted[fqcn], manifest["version"]))
            for name in names:
                if name.startswith(prefix) and not name.endswith("/"):
                    target = posixpath.normpath(posixpath.join(dest, name))
                    if not target.startswith(dest.rstrip("/") + "/"):
                        raise SystemExit("install-collections: unsafe path %s" % name)
                    archive.extract(name, dest)
            print("install-collections: %s %s" % (fqcn, manifest["version"]))
            done.add(fqcn)
            pending.extend(manifest.get("dependencies") or {})


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__.strip().splitlines()[2].strip())
    main(*sys.argv[1:])
