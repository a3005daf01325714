#!/usr/bin/env bash
# Writes .env beside docker-compose.yml with generated tokens, once: the routers' admin token
# (EDGE_ADMIN_TOKEN) and the pre-warm token routers and orchestrators share (EDGE_PREWARM_TOKEN).
# docker-compose reads .env on its own, so `docker-compose up --build` then starts without an
# exported variable. A token already in .env is left alone (it stays the one your tools already
# use); only a missing one is added. A new file is readable by its owner only; git ignores it.
#
#   bash deploy/compose-env.sh && docker-compose up --build
#   curl -H "Authorization: Bearer $(sed -n 's/^EDGE_ADMIN_TOKEN=//p' .env)" http://127.0.0.1:9090/api/status
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
added=()
for name in EDGE_ADMIN_TOKEN EDGE_PREWARM_TOKEN; do
  if [ -e .env ] && grep -q "^$name=" .env; then continue; fi
  echo "$name=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >>.env
  added+=("$name")
done
if [ "${#added[@]}" -eq 0 ]; then
  echo "compose-env: .env already has EDGE_ADMIN_TOKEN and EDGE_PREWARM_TOKEN; left unchanged" >&2
else
  echo "compose-env: wrote a new ${added[*]} to $(pwd)/.env" >&2
fi
