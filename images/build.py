#!/usr/bin/env python3
"""The local image pipeline: build Rollcall's images in order, each only when its content changed.

    .venv/bin/python images/build.py [--check] [postgres|mariadb|host|sms-app ...]

An image's content hash covers every file of its build context, its build arguments and the ID of the base
image. It is stored as the label ``rollcall.content-hash``; an image whose tag already carries the same hash is
never rebuilt. The base image itself comes from ``images/base/make-base.sh`` (pull or debootstrap).
"""

import argparse
import hashlib
import os
import subprocess
import sys
import time

import docker
import docker.errors

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_IMAGE = os.environ.get("ROLLCALL_BASE_IMAGE", "rollcall/base:bookworm")
LABEL = "rollcall.content-hash"

# name -> list of (tag, build args); the build context is images/<name>/.
IMAGES = {
    "postgres": [("rollcall/postgres:15", {})],
    "mariadb": [("rollcall/mariadb:10.11", {})],
    "host": [("rollcall/host:bookworm", {})],
    "sms-app": [
        ("rollcall/sms-app:1.0.0", {"SMS_VERSION": "1.0.0"}),
        ("rollcall/sms-app:1.1.0", {"SMS_VERSION": "1.1.0"}),
        ("rollcall/sms-app:1.2.0-broken", {"SMS_VERSION": "1.2.0-broken", "SMS_BROKEN": "1"}),
    ],
}


def say(message):
    print(message, flush=True)


def content_hash(context, buildargs, base_id):
    """sha256 over the context's files (path and bytes), the build args and the base image ID."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(context):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".pyc"):
                continue
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, context).encode() + b"\0")
            digest.update(oct(os.stat(path).st_mode & 0o777).encode() + b"\0")
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            digest.update(b"\0")
    for key in sorted(buildargs):
        digest.update(("%s=%s\0" % (key, buildargs[key])).encode())
    digest.update(base_id.encode())
    return digest.hexdigest()


def current_hash(client, tag):
    try:
        return (client.images.get(tag).labels or {}).get(LABEL)
    except docker.errors.ImageNotFound:
        return None


def build(client, tag, context, buildargs, wanted):
    """Build one image with the legacy builder, streaming; raise SystemExit with the log tail on failure."""
    started = time.monotonic()
    lines = []
    args = dict(buildargs, BASE_IMAGE=BASE_IMAGE)
    stream = client.api.build(path=context, tag=tag, buildargs=args, labels={LABEL: wanted}, rm=True,
                              forcerm=True, decode=True, pull=False)
    for chunk in stream:
        if "stream" in chunk:
            lines.extend(chunk["stream"].rstrip("\n").splitlines())
        if "error" in chunk:
            tail = "\n".join(lines[-20:] + [chunk["error"].strip()])
            raise SystemExit("build: building %s failed; last lines:\n%s" % (tag, tail))
    if current_hash(client, tag) != wanted:
        raise SystemExit("build: %s was built but does not carry its content hash; see the log above" % tag)
    say("image: built %s in %.1f s" % (tag, time.monotonic() - started))


def ensure_base(client):
    try:
        return client.images.get(BASE_IMAGE).id
    except docker.errors.ImageNotFound:
        subprocess.run([os.path.join(HERE, "base", "make-base.sh")], check=True)
        return client.images.get(BASE_IMAGE).id


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="images to build: %s (default: all)" % ", ".join(sorted(IMAGES)))
    parser.add_argument("--check", action="store_true", help="build nothing; exit 1 when an image is out of date")
    options = parser.parse_args(argv)
    names = options.names or list(IMAGES)
    unknown = sorted(set(names) - set(IMAGES))
    if unknown:
        parser.error("unknown image(s) %s; choose from %s" % (", ".join(unknown), ", ".join(sorted(IMAGES))))

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception:  # noqa: BLE001 - any failure to reach the engine means the same thing here
        raise SystemExit(
            "build: the Docker engine does not answer; run 'make setup' (images/engine.sh starts it)") from None

    base_id = ensure_base(client)
    stale = []
    for name in names:
        context = os.path.join(HERE, name)
        for tag, buildargs in IMAGES[name]:
            wanted = content_hash(context, buildargs, base_id)
            if current_hash(client, tag) == wanted:
                say("image: %s up to date" % tag)
                continue
            stale.append(tag)
            if options.check:
                say("image: %s out of date" % tag)
            else:
                build(client, tag, context, buildargs, wanted)
    return 1 if options.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
