#!/usr/bin/env bash
# Builds local stand-ins for the base images docker-compose.yml and the Dockerfile use, for a
# machine that cannot pull from Docker Hub (a CI runner behind a registry ban; the npm registry and
# a Debian mirror are still needed):
#
#   edge-standin/node:20-bookworm-slim   Debian bookworm (debootstrap minbase) + this host's node and npm
#   edge-standin/redis:7                 Debian bookworm + Debian's redis-server
#
# then use them with:
#   EDGE_NODE_IMAGE=edge-standin/node:20-bookworm-slim EDGE_REDIS_IMAGE=edge-standin/redis:7 docker-compose up --build
#
# Needs root (debootstrap), a Docker engine, debootstrap, Node 20 on this host, and a Debian
# package mirror (MIRROR, default http://deb.debian.org/debian). The root file system is kept as a
# tarball in EDGE_STANDIN_CACHE (default /var/cache/edge-router-standins), so a second run takes
# seconds. The official images stay untouched: the stand-ins have their own names.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
CACHE="${EDGE_STANDIN_CACHE:-/var/cache/edge-router-standins}"
BASE_IMAGE=edge-standin/debian:bookworm-minbase
BASE_TAR="$CACHE/bookworm-minbase.tar"

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" != 20 ]; then
  echo "build.sh: this host's node is $(node --version); the stand-in must be Node 20 like node:20-bookworm-slim" >&2
  exit 2
fi
for program in docker debootstrap; do
  command -v "$program" >/dev/null || { echo "build.sh: $program is missing (apt-get install -y docker.io debootstrap)" >&2; exit 2; }
done

mkdir -p "$CACHE"
if [ ! -s "$BASE_TAR" ]; then
  echo "build.sh: debootstrap bookworm (minbase) from $MIRROR, about 1-2 minutes" >&2
  rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    { echo "build.sh: debootstrap failed; see $CACHE/debootstrap.log" >&2; exit 1; }
  # No downloaded packages, no package lists, nothing of this host's identity.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  : >"$rootfs/etc/resolv.conf"
  rm -f "$rootfs/etc/hostname"
  tar -C "$rootfs" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
fi
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  docker import --change 'CMD ["bash"]' "$BASE_TAR" "$BASE_IMAGE" >/dev/null
fi

# Node: this host's binary and npm, in a scratch build context.
context="$(mktemp -d)"
trap 'rm -rf "$context" ${rootfs:+"$rootfs"}' EXIT
cp "$here/node.Dockerfile" "$context/Dockerfile"
cp "$(readlink -f "$(command -v node)")" "$context/node"
cp -a "$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" "$context/npm"
docker build -q -t edge-standin/node:20-bookworm-slim "$context" >/dev/null
docker build -q -t edge-standin/redis:7 -f "$here/redis.Dockerfile" "$here" >/dev/null
echo "build.sh: built edge-standin/node:20-bookworm-slim and edge-standin/redis:7" >&2
