#!/usr/bin/env bash
# ansible-test must run from a path ending in ansible_collections/<namespace>/<name>, outside any other
# git work tree (it lists files through git): copy the collection's own files to a temporary
# directory and run the sanity tests there.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/lifeboat/backup"
mkdir -p "$dest"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -C "$dest" -xf -
# ansible-test bootstraps pip in its venvs with a script it downloads from a host we cannot reach;
# this stand-in uses Python's bundled ensurepip, then pip installs the pinned versions from PyPI.
get_pip="$HOME/.ansible/test/cache/get_pip_24_2.py"
if [ ! -f "$get_pip" ]; then
  mkdir -p "$(dirname "$get_pip")"
  cat > "$get_pip" <<'PY'
import ensurepip, subprocess, sys
ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
PY
fi

cd "$dest"
git init -q && git add -A
python="$("$repo/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
"$repo/.venv/bin/ansible-test" sanity --color no --python "$python" --requirements "$@"
