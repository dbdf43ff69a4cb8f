#!/usr/bin/env bash
# Build the Debian 12 image the Molecule scenarios run in, with everything converge would otherwise
# download: no registry is reachable and the containers run with network none.
# debootstrap --variant=minbase + podman import; skipped when an image with the same package list exists.
# Usage: scripts/build_test_image.sh [image]   (default localhost/lifeboat-molecule:bookworm)
set -euo pipefail
cd "$(dirname "$0")/.."
image="${1:-${LIFEBOAT_TEST_IMAGE:-localhost/lifeboat-molecule:bookworm}}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/tests/containers.conf}"

# What the agent role installs (so converge finds it installed), the server the scenarios back up,
# python3-apt for ansible.builtin.apt, procps for the prepare step, sudo for become; what the monitoring role
# installs, and curl for the scenarios' scrapes.
packages=(
  python3 python3-apt python3-psycopg2 python3-yaml python3-jmespath
  postgresql-15 postgresql-client-15
  cron logrotate zstd age util-linux procps sudo
  prometheus-node-exporter prometheus-postgres-exporter openssl curl
)
suite=bookworm
key="$(printf '%s\n' "$suite" "${packages[@]}" | sha256sum | cut -c1-16)"

if [ "$(podman image inspect --format '{{ index .Labels "lifeboat.packages" }}' "$image" 2>/dev/null || true)" = "$key" ]; then
  echo "build_test_image: $image is up to date"
  exit 0
fi
previous="$(podman image inspect --format '{{ .Id }}' "$image" 2>/dev/null || true)"

# The Debian mirror apt is configured with on this machine (deb822 or one-line sources).
mirror="$(grep -hoE '^URIs:\s*\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
[ -n "$mirror" ] || mirror="$(grep -hoE '^deb\s+\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
mirror="${mirror:-http://deb.debian.org/debian}"

root="$(mktemp -d /var/tmp/lifeboat-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "build_test_image: debootstrap $suite from $mirror (a few minutes, once)"
include="$(IFS=,; echo "${packages[*]}")"
if ! debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
  tail -n 30 "$root.log" >&2
  echo "build_test_image: debootstrap failed (full log: $root.log)" >&2
  exit 1
fi
rm -f "$root.log"
# Keep the image small and let apt work offline inside the container (lists stay for the apt module).
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | podman import \
  --change 'CMD ["sleep", "infinity"]' \
  --change "LABEL lifeboat.packages=$key" \
  - "$image" >/dev/null
# The image this one replaces (another package list) is only taking space now.
[ -z "$previous" ] || podman image rm "$previous" >/dev/null 2>&1 || true
echo "build_test_image: built $image"
