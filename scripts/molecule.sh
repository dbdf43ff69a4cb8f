#!/usr/bin/env bash
# Run the Molecule scenarios of molecule/ on real podman containers, on a fresh machine too:
# installs podman, runc and debootstrap (scripts/bootstrap.sh test) and builds the test image
# (scripts/build_test_image.sh, cached) first. Run as root (CI) or with sudo rights.
#   scripts/molecule.sh               # every scenario, molecule test
#   scripts/molecule.sh default       # one scenario
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

scripts/bootstrap.sh test

export PATH="$root/.venv/bin:$PATH"
export CONTAINERS_CONF="$root/tests/containers.conf"
# Molecule writes its own ansible.cfg; a project-wide one would take precedence over it.
unset ANSIBLE_CONFIG
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 ANSIBLE_NOCOLOR=1
export LIFEBOAT_TEST_IMAGE="${LIFEBOAT_TEST_IMAGE:-localhost/lifeboat-molecule:bookworm}"

scripts/build_test_image.sh "$LIFEBOAT_TEST_IMAGE"

# Run on a snapshot of the collection's files, laid out as ansible_collections/lifeboat/backup: edits made
# while the scenarios run cannot change what converge and idempotence compare, and no copy of the
# collection installed elsewhere (~/.ansible/collections) can shadow this one.
# A fixed place keeps Molecule's per-project state directory the same from run to run.
work="$root/.build/molecule-run"
snapshot="$work/ansible_collections/lifeboat/backup"
rm -rf "$work"
mkdir -p "$snapshot"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -C "$snapshot" -xf -
export ANSIBLE_COLLECTIONS_PATH="$work"
export MOLECULE_GLOB="molecule/*/molecule.yml"
cd "$snapshot"

if [ $# -gt 0 ]; then
  scenarios=("$@")
else
  scenarios=()
  for file in molecule/*/molecule.yml; do
    scenarios+=("$(basename "$(dirname "$file")")")
  done
fi

failed=()
for scenario in "${scenarios[@]}"; do
  echo "molecule: scenario $scenario"
  start=$SECONDS
  # The shared settings: molecule looks for them only under extensions/molecule/ or .config/molecule/.
  if molecule --base-config molecule/config.yml test --scenario-name "$scenario"; then
    echo "molecule: scenario $scenario passed in $((SECONDS - start))s"
  else
    echo "molecule: scenario $scenario FAILED after $((SECONDS - start))s"
    failed+=("$scenario")
  fi
done
passed=$(( ${#scenarios[@]} - ${#failed[@]} ))
echo "molecule: ${passed} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
