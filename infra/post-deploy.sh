#!/usr/bin/env bash
# After `az deployment group create` and `func azure functionapp publish`:
#   1. make sure the pseudonym key exists: the Key Vault secret `pseudonym-key` (the HMAC key of
#      the pseudonyms, FRAUD_PSEUDONYM_KEY) is created with 32 random bytes if the deployment did
#      not create it (-p pseudonymKey=...), and the app identity gets Key Vault Secrets User on
#      that one secret. An existing secret is never replaced (that would re-key every pseudonym);
#   2. subscribe the app's Event Grid blob triggers to the storage account's system topic.
#
#   infra/post-deploy.sh -g <resource-group> [-d <deployment-name>] [container=function ...]
#
# Each container=function pair gets one event subscription, BlobCreated events of that
# container only, delivered to the blob extension webhook of that function:
#   https://<app host>/runtime/webhooks/blobs?functionName=Host.Functions.<function>&code=<blobs_extension key>
# Without pairs, the pairs are read from the deployed app: every blobTrigger with
# source EventGrid, its container taken from its path.
#
# The secret is written through Azure Resource Manager (control plane), so it works when the
# vault's public network access is disabled (production); its value is generated here, sent in
# a request body from a private temporary file, and never printed.
# The blobs_extension system key exists only once the published app (with a blob trigger)
# has started, hence this runs after publishing, never inside the template. The key is
# passed to Event Grid and never printed. Re-running updates the subscriptions.
set -euo pipefail

RG=""
DEPLOYMENT="main"

usage() {
  sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while getopts "g:d:h" opt; do
  case "$opt" in
    g) RG="$OPTARG" ;;
    d) DEPLOYMENT="$OPTARG" ;;
    h) usage 0 ;;
    *) usage 2 ;;
  esac
done
shift $((OPTIND - 1))
[ -n "$RG" ] || { echo "error: -g <resource-group> is required" >&2; usage 2; }
command -v az >/dev/null || { echo "error: the Azure CLI (az) is required" >&2; exit 1; }

output() {
  az deployment group show -g "$RG" -n "$DEPLOYMENT" --query "properties.outputs.$1.value" -o tsv
}

# require_set VAR ...: stop, naming the empty ones, unless every variable (read from an output) is set
require_set() {
  local var missing=()
  for var in "$@"; do
    [ -n "${!var}" ] || missing+=("$var")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "error: deployment '$DEPLOYMENT' in '$RG' gave no value for ${missing[*]} (missing outputs)" >&2
    exit 1
  fi
}

# --- 1. the pseudonym key ------------------------------------------------------------------------
VAULT="$(output keyVaultName)"
APP_PRINCIPAL="$(output identityPrincipalId)"
require_set VAULT APP_PRINCIPAL
VAULT_ID="$(az keyvault show -g "$RG" -n "$VAULT" --query id -o tsv)"
SECRET_ID="$VAULT_ID/secrets/pseudonym-key"
if az resource show --ids "$SECRET_ID" --output none 2>/dev/null; then
  echo "pseudonym key: the secret exists in $VAULT (left as it is)"
else
  command -v openssl >/dev/null || { echo "error: openssl is required to generate the pseudonym key" >&2; exit 1; }
  BODY="$(mktemp)"
  chmod 600 "$BODY"
  trap 'rm -f "$BODY"' EXIT
  printf '{"properties": {"value": "%s", "contentType": "application/octet-stream; base64 HMAC-SHA-256 key of the pseudonyms"}}' \
    "$(openssl rand -base64 32)" > "$BODY"
  az rest --method put --url "${SECRET_ID}?api-version=2023-07-01" --body "@$BODY" --output none
  rm -f "$BODY"
  echo "pseudonym key: created the secret in $VAULT"
fi
az role assignment create --assignee-object-id "$APP_PRINCIPAL" --assignee-principal-type ServicePrincipal \
  --role "Key Vault Secrets User" --scope "$SECRET_ID" --output none
echo "pseudonym key: the app identity may read it (Key Vault Secrets User on that secret only)"

# --- 2. Event Grid subscriptions ------------------------------------------------------------------
APP="$(output functionAppName)"
TOPIC="$(output eventGridSystemTopicName)"
require_set APP TOPIC
HOST="$(az functionapp show -g "$RG" -n "$APP" --query defaultHostName -o tsv)"

PAIRS=("$@")
if [ "${#PAIRS[@]}" -eq 0 ]; then
  # "<app>/<function>\t<container>/<blob path pattern>" for each Event Grid blob trigger
  while IFS=$'\t' read -r fn path; do
    [ -n "$fn" ] || continue
    PAIRS+=("${path%%/*}=${fn##*/}")
  done < <(az functionapp function list -g "$RG" -n "$APP" \
    --query "[?config.bindings[?type=='blobTrigger' && source=='EventGrid']].[name, config.bindings[?type=='blobTrigger'] | [0].path]" \
    -o tsv)
fi
[ "${#PAIRS[@]}" -gt 0 ] || { echo "error: no Event Grid blob trigger found in $APP: is the app published? Or pass container=function pairs." >&2; exit 1; }
for pair in "${PAIRS[@]}"; do
  if [[ ! "$pair" =~ ^[a-z0-9-]+=[A-Za-z0-9_]+$ ]]; then
    echo "error: expected container=function, got '$pair'" >&2
    exit 2
  fi
done

# The key appears a little after the host first starts with a blob trigger.
KEY=""
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  KEY="$(az functionapp keys list -g "$RG" -n "$APP" --query "systemKeys.blobs_extension" -o tsv 2>/dev/null || true)"
  [ -n "$KEY" ] && break
  echo "waiting for the blobs_extension key of $APP (attempt $attempt/10)..." >&2
  sleep 15
done
[ -n "$KEY" ] || { echo "error: $APP has no blobs_extension system key: publish the app (with its Event Grid blob trigger) first" >&2; exit 1; }

for pair in "${PAIRS[@]}"; do
  container="${pair%%=*}"
  fn="${pair#*=}"
  echo "subscribing $fn to BlobCreated in container $container (system topic $TOPIC)"
  az eventgrid system-topic event-subscription create \
    --name "blob-${container}" \
    --resource-group "$RG" \
    --system-topic-name "$TOPIC" \
    --endpoint-type webhook \
    --endpoint "https://${HOST}/runtime/webhooks/blobs?functionName=Host.Functions.${fn}&code=${KEY}" \
    --included-event-types Microsoft.Storage.BlobCreated \
    --subject-begins-with "/blobServices/default/containers/${container}/" \
    --max-delivery-attempts 30 \
    --event-ttl 1440 \
    --output none
done
echo "done: ${#PAIRS[@]} event subscription(s) on $TOPIC"
# Key Vault references are re-read when the app restarts (otherwise within 24 hours)
az functionapp restart -g "$RG" -n "$APP" --output none
echo "restarted $APP (Key Vault references re-read)"
