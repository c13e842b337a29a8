#!/usr/bin/env python3
"""Build the local apt repository of molecule/patching with dpkg-deb (tests/integration/test_apt_plan.py uses its
build() and flat_repo() too): two flat repositories, "main" (suite stable) and "security" (suite stable-security,
label Rollcall-Security), each with versions 1.0 and 1.1 of its packages, so an upgrade is offered and a rollback
can get 1.0 back.

    build_repo.py DIRECTORY

- rcp-plain: an ordinary upgrade;
- rcp-security: from the security archive;
- rcp-reboot: 1.1's postinst asks for a reboot (/var/run/reboot-required, as Debian's kernel packages do);
- rcp-fragile: 1.1's postinst fails while /etc/rcp-fragile.fault exists (the scenario puts it on one host).
"""

import email.utils
import hashlib
import pathlib
import subprocess
import sys

PACKAGES = {  # name: (repository, postinst of 1.1)
    "rcp-plain": ("main", ""),
    "rcp-security": ("security", ""),
    "rcp-reboot": ("main", "touch /var/run/reboot-required\necho rcp-reboot >> /var/run/reboot-required.pkgs\n"),
    "rcp-fragile": ("main",
                    "if [ -e /etc/rcp-fragile.fault ]; then echo 'rcp-fragile: fault injected' >&2; exit 1; fi\n"),
}
REPOS = {"main": ("Rollcall", "stable"), "security": ("Rollcall-Security", "stable-security")}


def build(work, name, version, postinst, description="a package with an upgrade (molecule/patching)"):
    """One package NAME_VERSION_all.deb in WORK, whose postinst (when given) runs the shell lines POSTINST."""
    root = work / ("%s-%s" % (name, version))
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/share" / name).mkdir(parents=True)
    (root / "usr/share" / name / "VERSION").write_text(version + "\n")
    (root / "DEBIAN/control").write_text(
        "Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: Rollcall tests <tests@rollcall.invalid>\n"
        "Description: %s\n" % (name, version, description))
    if postinst:
        script = root / "DEBIAN/postinst"
        script.write_text("#!/bin/sh\nset -e\n" + postinst)
        script.chmod(0o755)
    deb = work / ("%s_%s_all.deb" % (name, version))
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)],  # noqa: S607 (dpkg-deb from PATH)
                   check=True, capture_output=True)
    return deb


def flat_repo(directory, debs, label, suite):
    """A flat repository (deb [trusted=yes] file:DIRECTORY ./) with a Packages index and a Release naming it."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for deb in debs:
        data = deb.read_bytes()
        (directory / deb.name).write_bytes(data)
        control = subprocess.run(["dpkg-deb", "-f", str(deb)],  # noqa: S607 (dpkg-deb from PATH)
                                 check=True, capture_output=True, text=True).stdout
        entries.append(control.rstrip("\n") + "\nFilename: ./%s\nSize: %d\nSHA256: %s\n"
                       % (deb.name, len(data), hashlib.sha256(data).hexdigest()))
    packages = "\n".join(entries).encode()
    (directory / "Packages").write_bytes(packages)
    # With the index's hash (and a date): without them apt reads the index once, then drops it at the next update
    # whose Release is the same.
    (directory / "Release").write_text(
        "Origin: Rollcall\nLabel: %s\nSuite: %s\nCodename: %s\nDate: %s\nSHA256:\n %s %d Packages\n"
        % (label, suite, suite, email.utils.formatdate(usegmt=True), hashlib.sha256(packages).hexdigest(),
           len(packages)))


def main(target):
    target = pathlib.Path(target)
    work = target / "build"
    work.mkdir(parents=True, exist_ok=True)
    debs = {repo: [] for repo in REPOS}
    for name, (repo, postinst) in PACKAGES.items():
        for version, script in (("1.0", ""), ("1.1", postinst)):
            debs[repo].append(build(work, name, version, script))
    for repo, (label, suite) in REPOS.items():
        flat_repo(target / repo, debs[repo], label, suite)


if __name__ == "__main__":
    main(sys.argv[1])
