#!/usr/bin/env python3
"""The local image pipeline: build Rollcall's images in order, each only when its content changed.

    .venv/bin/python images/build.py [--check] [postgres|mariadb|host|proxy|sms-app|ee ...]

The base image (rollcall/base:bookworm) is not built here: images/base/make-base.sh provides it (pull when a
registry answers, else debootstrap). Every other image builds FROM it with the legacy builder.

An image's content hash is sha256 over its build context (sorted relative paths, file modes and bytes;
__pycache__ and *.pyc skipped), its build arguments and the base image's ID. It is stored as the label
rollcall.content-hash; a tag that already carries the hash is not rebuilt. --check builds nothing and exits 1
when an image is missing or out of date.
"""

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import docker
import docker.errors
import requests.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_IMAGE = os.environ.get("ROLLCALL_BASE_IMAGE", "rollcall/base:bookworm")
LABEL = "rollcall.content-hash"
NO_ENGINE = "build: the Docker engine does not answer; run 'make setup' (images/engine.sh starts it)"
EE_IMAGE = "rollcall/ee:2.19"
BUILD_TIMEOUT = 1800  # seconds without a word from the engine during a build (apt runs quietly)

# name (= build context images/<name>/) -> [(tag, build args)], in build order.
IMAGES = {
    "postgres": [("rollcall/postgres:15", {})],
    "mariadb": [("rollcall/mariadb:10.11", {})],
    "host": [("rollcall/host:bookworm", {})],
    # The fleet scenario's hosts: sshd + their own dockerd (molecule/fleet).
    "fleet-host": [("rollcall/fleet-host:bookworm", {})],
    "proxy": [("rollcall/proxy:1", {})],
    # Prometheus, Alertmanager and the exporters from Debian's packages (roles/monitoring, docs/monitoring.md).
    "monitoring": [("rollcall/monitoring:1", {})],
    "sms-app": [
        ("rollcall/sms-app:1.0.0", {"SMS_VERSION": "1.0.0"}),
        ("rollcall/sms-app:1.1.0", {"SMS_VERSION": "1.1.0"}),
        ("rollcall/sms-app:1.2.0-broken", {"SMS_VERSION": "1.2.0-broken", "SMS_BROKEN": "1"}),
    ],
    # The execution environment for AWX (images/ee/execution-environment.yml, docs/awx-ee.md).
    "ee": [(EE_IMAGE, {})],
}

# Files of the machine added to a build context (name in the context -> path on the host), not part of its
# content hash: the ee build installs from PyPI, which a container may reach only through a TLS proxy whose CA
# is in the host's bundle. A missing host file is added empty.
HOST_FILES = {
    "ee": {"build-ca.crt": os.environ.get("ROLLCALL_BUILD_CA", "/etc/ssl/certs/ca-certificates.crt")},
}


class BuildFailed(Exception):
    """A build that did not produce its image; the message says why."""


def say(message):
    print(message, flush=True)


def context_files(context):
    """Relative paths (with /) of the files in a build context, sorted; caches of Python bytecode skipped."""
    found = []
    for root, dirs, files in os.walk(context):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found.extend(os.path.relpath(os.path.join(root, name), context).replace(os.sep, "/")
                     for name in files if not name.endswith(".pyc"))
    return sorted(found)


def content_hash(context, buildargs, base_id):
    """sha256 over the context's files (path, mode, bytes), the build args and the base image ID."""
    digest = hashlib.sha256()
    for relpath in context_files(context):
        path = os.path.join(context, relpath)
        digest.update(b"%s\0%o\0" % (relpath.encode(), os.stat(path).st_mode & 0o7777))
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    for key in sorted(buildargs):
        digest.update(b"arg\0%s=%s\0" % (key.encode(), buildargs[key].encode()))
    digest.update(b"base\0" + base_id.encode())
    return digest.hexdigest()


def find_image(client, tag):
    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def labelled_hash(image):
    return (image.labels or {}).get(LABEL) if image is not None else None


def connect():
    """A client for the engine, or SystemExit with one clear line when it does not answer."""
    try:
        probe = docker.from_env(timeout=10)
        probe.ping()
        probe.close()
        return docker.from_env(timeout=BUILD_TIMEOUT)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        raise SystemExit(NO_ENGINE) from None


def ensure_base(client, check):
    """The base image's ID; made by images/base/make-base.sh when missing (not under --check: None then)."""
    image = find_image(client, BASE_IMAGE)
    if image is None and not check:
        script = os.path.join(HERE, "base", "make-base.sh")
        if subprocess.run([script], check=False).returncode != 0:
            raise SystemExit("build: %s failed, so %s is missing; see above" % (script, BASE_IMAGE))
        image = find_image(client, BASE_IMAGE)
    if image is None and not check:
        raise SystemExit("build: %s did not provide %s" % (script, BASE_IMAGE))
    return image.id if image is not None else None


def write_context(stream, context, host_files):
    """Write the build context as an uncompressed tar into stream, with the host files added under their names."""
    with tarfile.open(fileobj=stream, mode="w") as archive:
        for relpath in context_files(context):
            archive.add(os.path.join(context, relpath), arcname=relpath, recursive=False)
        for name, source in sorted(host_files.items()):
            data = b""
            if os.path.isfile(source):
                with open(source, "rb") as handle:
                    data = handle.read()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    stream.seek(0)


def stream_build(client, tag, context, buildargs, wanted, host_files=None):
    """Run one legacy build, streaming; return its output lines; raise BuildFailed when the engine says no."""
    lines = []
    with tempfile.TemporaryFile() as stream:
        source = {"path": context}
        if host_files:
            write_context(stream, context, host_files)
            source = {"fileobj": stream, "custom_context": True}
        return run_build(client, lines, source, tag, buildargs, wanted)


def run_build(client, lines, source, tag, buildargs, wanted):
    try:
        for chunk in client.api.build(**source, tag=tag, buildargs=dict(buildargs, BASE_IMAGE=BASE_IMAGE),
                                      labels={LABEL: wanted}, rm=True, forcerm=True, pull=False, decode=True):
            lines.extend(chunk.get("stream", "").rstrip("\n").splitlines())
            if "error" in chunk:
                lines.append(chunk["error"].strip())
                raise BuildFailed("\n".join(lines[-20:]))
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        lines.append(str(exc))
        raise BuildFailed("\n".join(lines[-20:])) from None
    return lines


def drop_replaced(client, old):
    """Remove the image a rebuild replaced once it has no tag left; kept while a container uses it."""
    try:
        image = client.images.get(old.id)
        if not image.tags:
            client.images.remove(old.id, noprune=False)
    except docker.errors.APIError:
        pass


def build(client, tag, context, buildargs, wanted, host_files=None):
    """Build one image and label it with its content hash; SystemExit with the build's last lines on failure."""
    started = time.monotonic()
    old = find_image(client, tag)
    try:
        lines = stream_build(client, tag, context, buildargs, wanted, host_files)
    except BuildFailed as failure:
        raise SystemExit("build: building %s failed; last lines of its output:\n%s" % (tag, failure)) from None
    if labelled_hash(find_image(client, tag)) != wanted:
        tail = "\n".join(lines[-20:])
        raise SystemExit("build: %s was built but does not carry its content hash; last lines:\n%s" % (tag, tail))
    if old is not None:
        drop_replaced(client, old)
    say("image: built %s in %.1f s" % (tag, time.monotonic() - started))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="images to build: %s (default: all)" % ", ".join(IMAGES))
    parser.add_argument("--check", action="store_true",
                        help="build nothing; exit 1 when an image is missing or out of date")
    options = parser.parse_args(argv)
    unknown = sorted(set(options.names) - set(IMAGES))
    if unknown:
        parser.error("unknown image(s) %s; choose from %s" % (", ".join(unknown), ", ".join(IMAGES)))
    options.names = [name for name in IMAGES if name in options.names or not options.names]
    return options


def main(argv=None):
    options = parse_args(argv)
    client = connect()
    base_id = ensure_base(client, options.check)
    if base_id is None:
        say("image: base %s missing" % BASE_IMAGE)
        return 1
    stale = 0
    for name in options.names:
        context = os.path.join(HERE, name)
        for tag, buildargs in IMAGES[name]:
            wanted = content_hash(context, buildargs, base_id)
            if labelled_hash(find_image(client, tag)) == wanted:
                say("image: %s up to date" % tag)
            elif options.check:
                stale += 1
                say("image: %s out of date" % tag)
            else:
                build(client, tag, context, buildargs, wanted, HOST_FILES.get(name))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
