# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A generated secret kept in a file on the controller, without the password lookup's lock file."""

from __future__ import annotations

DOCUMENTATION = r"""
name: secret
author:
  - Rollcall contributors (@rollcall)
version_added: 1.0.0
short_description: A generated secret kept in a file on the controller, or a new random one
description:
  - Returns the secret kept in the file the term names. When there is no such file, makes a secret of O(length)
    characters from O(chars), writes it there (mode 0600; a directory it creates gets 0700) and returns it.
  - Reads and writes the same files as C(ansible.builtin.password) without encryption (the secret on the first
    line), so the files it made stay in use.
  - Takes no lock file. C(ansible.builtin.password) creates C(<sha1>.ansible_lockfile) beside the file on every
    lookup, also when it only reads it, and removes it afterwards; a run interrupted in between (Ctrl-C) left it,
    and every later run failed after 7 s with "Password lookup cannot get the lock". Here a new secret is written to
    a temporary file in the same directory and linked into place, which fails when the file is already there; so two
    runs at once agree on the one written first, and an interrupted run leaves nothing that stops the next one.
  - Without a term, returns a new random secret every time, kept nowhere (what C(ansible.builtin.password) does
    with C(/dev/null), where its lock file would go into C(/dev)).
options:
  _terms:
    description: The file that keeps the secret (at most one; relative to the playbook as with other lookups).
    required: false
  length:
    description: How many characters a new secret has.
    type: int
    default: 32
  chars:
    description: What a new secret is made of - V(letters_digits) (ASCII letters and digits) or V(hex) (lower-case
      hexadecimal digits).
    type: str
    default: letters_digits
    choices: [letters_digits, hex]
"""

EXAMPLES = r"""
- name: The app's secret key, made on first use
  ansible.builtin.debug:
    msg: "{{ lookup('rollcall.ops.secret', inventory_dir ~ '/../../.secrets/local/secret_key', length=48) }}"

- name: A random token for this run only
  ansible.builtin.set_fact:
    token: "{{ lookup('rollcall.ops.secret', length=32, chars='hex') }}"
"""

RETURN = r"""
_raw:
  description: The secret (one string).
  type: list
  elements: str
"""

import os
import secrets
import string
import tempfile

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

CHARS = {"letters_digits": string.ascii_letters + string.digits, "hex": "0123456789abcdef"}


def new_secret(length, chars):
    if length < 1:
        raise AnsibleLookupError("rollcall.ops.secret: length must be at least 1, not %s" % length)
    return "".join(secrets.choice(CHARS[chars]) for dummy in range(length))


def read_secret(path):
    """The secret in ``path`` (its first line; a password lookup's ``salt=``/``ident=`` after it left out); None when
    there is no such file, an empty one counts as none."""
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline().rstrip("\n")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnsibleLookupError("rollcall.ops.secret: cannot read %s: %s" % (path, exc.strerror)) from None
    return first.split(" salt=")[0].split(" ident=")[0] or None


def kept_secret(path, length, chars):
    """The secret in ``path``, made and written there first when there is none."""
    found = read_secret(path)
    if found is not None:
        return found
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, 0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".secret-", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(new_secret(length, chars) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)  # fails when another run wrote it first: theirs is the one
            except FileExistsError:
                if read_secret(path) is None:  # an empty file (made by hand, or by a crash): ours replaces it
                    os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
    except OSError as exc:
        raise AnsibleLookupError("rollcall.ops.secret: cannot write a new secret to %s: %s; check that the directory "
                                 "is writable by this user" % (path, exc.strerror)) from None
    return read_secret(path)


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        length, chars = self.get_option("length"), self.get_option("chars")
        if len(terms) > 1:
            raise AnsibleLookupError("rollcall.ops.secret takes at most one file, not %d" % len(terms))
        if not terms:
            return [new_secret(length, chars)]
        return [kept_secret(self._loader.path_dwim(terms[0]), length, chars)]
