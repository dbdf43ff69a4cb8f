#!/usr/bin/env bash
# Install what the demo (core) or the test suite (test) needs on a fresh Debian/Ubuntu machine:
# Debian packages, a pinned virtualenv in .venv, and a collection path pointing at this checkout.
# Safe to rerun: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-core}"

# postgresql-15 ships the contrib extensions on Debian 12 (postgresql-contrib-15 is only a virtual name).
core_packages=(postgresql-15 postgresql-client-15 age zstd python3-venv python3-psycopg2 python3-yaml util-linux)
test_packages=(podman runc debootstrap cron logrotate uidmap slirp4netns shellcheck pigz
               prometheus prometheus-node-exporter prometheus-postgres-exporter)  # ansible-test sanity runs shellcheck; make bench: postgresql_db uses pigz for .gz; monitoring: promtool, exporters

packages=("${core_packages[@]}")
[ "$what" = test ] && packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

requirements=requirements.txt
[ "$what" = test ] && requirements="requirements-test.txt"
stamp=".venv/.installed-$(sha256sum "$requirements" requirements.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: creating .venv from $requirements"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -r "$requirements" pyyaml
  touch "$stamp"
fi

# ansible finds the collection through this path, without building or installing it.
mkdir -p .build/collections/ansible_collections/lifeboat
ln -sfn ../../../.. .build/collections/ansible_collections/lifeboat/backup

# The tests run the engine and read role files as other local users (nobody, prometheus): a checkout in a private
# directory (mktemp -d makes it 0700) shuts them out. The checkout gets search and read for others, never write.
if [ "$what" = test ] && [ "$(( 0$(stat -c %a .) & 1 ))" -eq 0 ]; then
  echo "bootstrap: the tests run parts of this checkout as other local users: chmod o+rx $PWD"
  chmod o+rx .
fi
if [ "$what" = test ] && command -v runuser >/dev/null && [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -r "$PWD/bin/lifeboat"; then
  echo "bootstrap: warning: user nobody cannot read $PWD/bin/lifeboat (a directory above it is private); the tests" \
       "that run as other local users will fail: clone into a directory they can search" >&2
fi
