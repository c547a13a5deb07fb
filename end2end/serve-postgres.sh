#!/usr/bin/env bash
# Starts the portal under test on PostgreSQL: recreates the database E2E_POSTGRES_DB (default
# portcullis_e2e) so every run begins empty, then runs the binary with DATABASE_URL pointing
# at it. playwright.config.ts starts this as the second web server.
set -euo pipefail
base=${E2E_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
db=${E2E_POSTGRES_DB:-portcullis_e2e}
export PGOPTIONS="--client-min-messages=warning"
psql "$base/postgres" -v ON_ERROR_STOP=1 -q \
  -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
  -c "CREATE DATABASE $db"
export DATABASE_URL="$base/$db"
exec "${PORTCULLIS_BIN:?PORTCULLIS_BIN names the portal binary}"
