#!/usr/bin/env bash
# Starts the portal under test in org mode against the standalone sandbox org that
# playwright.config.ts started first (state in E2E_ORG_STATE), with an SMTP sink (aiosmtpd,
# messages into E2E_MAILDIR) for its mail: org mode has no /outbox page.
#   serve-org-mode.sh jwt|secret
# jwt: JWT bearer with the portal app's key, plus the consumer secret for staff sign-in;
# secret: client credentials with the consumer secret.
set -euo pipefail
mode=${1:?jwt or secret}
state=${E2E_ORG_STATE:?the standalone sandbox org state directory}
for _ in $(seq 1 300); do
  [ -s "$state/credentials.json" ] && [ -s "$state/portal-app-key.pem" ] && [ -s "$state/cert.pem" ] && break
  sleep 0.2
done
credentials="$state/credentials.json"
export SALESFORCE_MODE=org
export SALESFORCE_URL=${E2E_ORG_URL:?the standalone sandbox org URL}
export SALESFORCE_CA_FILE="$state/cert.pem"
export SALESFORCE_CLIENT_ID=$(jq -r .portalClientId "$credentials")
export SALESFORCE_CLIENT_SECRET=$(jq -r .portalClientSecret "$credentials")
if [ "$mode" = jwt ]; then
  export SALESFORCE_JWT_KEY_FILE="$state/portal-app-key.pem"
  export SALESFORCE_USERNAME=$(jq -r .provisionerUsername "$credentials")
fi
mkdir -p "${E2E_MAILDIR:?a maildir for the mail of the portal}"
python3 -m aiosmtpd -n -l "127.0.0.1:${E2E_SMTP_PORT:?}" -c aiosmtpd.handlers.Mailbox "$E2E_MAILDIR" &
sink=$!
trap 'kill $sink 2> /dev/null || true' EXIT
export SMTP_URL="smtp://127.0.0.1:${E2E_SMTP_PORT}"
"${PORTCULLIS_BIN:?PORTCULLIS_BIN names the portal binary}"
