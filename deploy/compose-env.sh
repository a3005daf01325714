#!/usr/bin/env bash
# Generates the tokens docker-compose.yml mounts as secrets, once: the routers' admin token
# (deploy/compose-secrets/admin-token) and the pre-warm token routers and orchestrators share
# (deploy/compose-secrets/prewarm-token). Files, not environment variables: a container's
# variables are in every `docker inspect`. A token file already there is left alone (it stays the
# one your tools already use); only a missing one is written. A token an earlier version of this
# script wrote into .env (EDGE_ADMIN_TOKEN=, EDGE_PREWARM_TOKEN=) is carried over rather than
# replaced; compose no longer reads it there, so delete those lines afterwards.
#
# The directory is its owner's only (0700); each file in it is readable by all (0644), because
# compose bind-mounts it into the containers as it is and their user (node, uid 1000) must read
# it, whoever owns it here. Git and the Docker build context leave the directory out.
#
#   bash deploy/compose-env.sh && docker-compose up --build
#   curl -H "Authorization: Bearer $(cat deploy/compose-secrets/admin-token)" http://127.0.0.1:9090/api/status
set -euo pipefail
cd "$(dirname "$0")/.."
dir=deploy/compose-secrets
mkdir -p "$dir"
chmod 700 "$dir"
added=()
carried=()
for name in admin prewarm; do
  file="$dir/$name-token"
  if [ -e "$file" ]; then continue; fi
  variable="EDGE_$(echo "$name" | tr '[:lower:]' '[:upper:]')_TOKEN"
  token=""
  if [ -f .env ]; then token="$(sed -n "s/^$variable=//p" .env | tail -n 1)"; fi
  if [ -n "$token" ]; then
    carried+=("$variable")
  else
    token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    added+=("$file")
  fi
  # Written under a temporary name and renamed: a reader never sees half a token.
  (umask 022 && printf '%s\n' "$token" >"$file.tmp")
  chmod 644 "$file.tmp"
  mv "$file.tmp" "$file"
done
if [ "${#added[@]}" -eq 0 ] && [ "${#carried[@]}" -eq 0 ]; then
  echo "compose-env: $(pwd)/$dir already has admin-token and prewarm-token; left unchanged" >&2
fi
if [ "${#added[@]}" -gt 0 ]; then echo "compose-env: wrote a new token to ${added[*]}" >&2; fi
if [ "${#carried[@]}" -gt 0 ]; then
  echo "compose-env: carried ${carried[*]} over from .env into $dir; compose no longer reads it from .env: delete it there" >&2
fi
