#!/usr/bin/env bash
# Writes .env beside docker-compose.yml with a generated admin token, once: docker-compose reads
# .env on its own, so `docker-compose up --build` then starts without an exported variable. An
# existing .env is left alone (the token stays the one your tools already use). The file is
# readable by its owner only and ignored by git.
#
#   bash deploy/compose-env.sh && docker-compose up --build
#   curl -H "Authorization: Bearer $(sed -n 's/^EDGE_ADMIN_TOKEN=//p' .env)" http://127.0.0.1:9090/api/status
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -e .env ] && grep -q '^EDGE_ADMIN_TOKEN=' .env; then
  echo "compose-env: .env already has EDGE_ADMIN_TOKEN; left unchanged" >&2
  exit 0
fi
token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
umask 077
echo "EDGE_ADMIN_TOKEN=$token" >>.env
echo "compose-env: wrote a new EDGE_ADMIN_TOKEN to $(pwd)/.env" >&2
