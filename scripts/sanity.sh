#!/usr/bin/env bash
# ansible-test sanity with empty ignore files.
#
# ansible-test must run from a path ending in ansible_collections/<namespace>/<name>, outside any other
# git work tree (it lists files through git): copy the collection's own files to a temporary
# directory and run the sanity tests there. Extra arguments go to ansible-test (e.g. --test validate-modules).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
ansible_test="$repo/.venv/bin/ansible-test"
python="$("$repo/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

# ansible-test bootstraps pip in each of its virtual environments with a get-pip script it downloads from
# ci-files.testing.ansible.com, which CI machines here cannot reach; it looks in its cache first. Our
# stand-in does the same job with Python's bundled ensurepip, then installs the pinned pip from the
# configured index. ensurepip runs in a child process on purpose: in-process it sets
# PIP_CONFIG_FILE=/dev/null, which would hide pip.conf (the index, find-links and CA bundle ansible-test's
# stripped environment still lets pip read).
pip_version="$(grep -oP "pip='\K[0-9.]+" "$repo"/.venv/lib/python*/site-packages/ansible_test/_internal/python_requirements.py | head -1)"
get_pip="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
stand_in='# lifeboat.backup stand-in for get-pip (scripts/sanity.sh)
import subprocess, sys
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "-q"] + args))'
if [ "$(cat "$get_pip" 2>/dev/null)" != "$stand_in" ]; then
  mkdir -p "$(dirname "$get_pip")"
  printf '%s\n' "$stand_in" > "$get_pip.tmp" && mv "$get_pip.tmp" "$get_pip"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/lifeboat/backup"
mkdir -p "$dest"
git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf - | tar -C "$dest" -xf -

for ignore in tests/sanity/ignore-*.txt; do
  if grep -qv '^\s*\(#.*\)\?$' "$ignore"; then
    echo "sanity: $ignore must stay empty (fix the finding instead)" >&2
    exit 1
  fi
done

cd "$dest"
git init -q && git add -A
"$ansible_test" sanity --color no --python "$python" --requirements "$@"
