#!/bin/sh
# The scenario's vault password: made on first use for this run, kept in Molecule's ephemeral directory (removed
# by destroy). ANSIBLE_VAULT_PASSWORD_FILE points here (molecule.yml).
set -eu
dir=${MOLECULE_EPHEMERAL_DIRECTORY:?run through molecule}
file="$dir/vault-password"
if [ ! -s "$file" ]; then
  mkdir -p "$dir"
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file.tmp" && mv "$file.tmp" "$file")
fi
cat "$file"
