#!/usr/bin/env bash
# Node keys and a signed network directory for a TEST deployment of docker-compose.yml, with one network authority
# (NL.NA1, threshold 1) whose key stays on this machine. A real network follows the key ceremony of
# docs/OPERATIONS.md ("Key ceremonies"): authorities on offline machines, a threshold of 2 or more, each node making
# its own keys.
#
#   deploy/make-dev-network.sh
#
# Needs op7 on PATH (pip install .). Writes, under $OP7_DEPLOY_DIR (default: the folder of this script):
#   secrets/NODE.passphrase          a random passphrase per node (OP7_KEY_PASSPHRASE, a compose secret)
#   secrets/homes/NODE/keys/         each node's signing and encryption keys, encrypted with that passphrase; the
#                                    services mount this folder as $OP7_HOME/keys
#   secrets/homes/NL.NA1/            the authority's home, its key included (a real one is never on this machine)
#   network/directory.json           version 1 of the directory: the four nodes, signed by NL.NA1
#   network/anchor.json              the trust anchor every node installs (mounted as $OP7_HOME/anchor.json)
#   secrets/audit-db.password        the password of the evidence log's database (audit-db), made once
#   secrets/audit-store.url          the auditor's URL of that database, password included (OP7_AUDIT_STORE)
# Existing keys are kept; delete secrets/homes and network/ to start again. The database takes its password when its
# volume is new: keep audit-db.password as long as the volume op7_audit-db-data.
set -euo pipefail

DEPLOY="${OP7_DEPLOY_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
SECRETS="$DEPLOY/secrets"
NETWORK="$DEPLOY/network"
AUTHORITY=NL.NA1
# node id, agency, role, 24/7 desk, phone
NODES=(
  "NL.NCC|Landelijke Eenheid (test)|NationalNode|Landelijk Operationeel Centrum|+31793459911"
  "BE.FCP|Police fédérale (test)|NationalNode|Direction des opérations|+3226426111"
  "NL.OPS|Operations centre (test)|OperationsCentre|Operations room|+31793450000"
  "NL.AUDIT|Network audit (test)|Auditor|Audit desk|+31793450001"
)

command -v op7 >/dev/null || { echo "make-dev-network: op7 is needed on PATH (pip install .)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "make-dev-network: openssl is needed" >&2; exit 1; }
umask 077
mkdir -p "$SECRETS/homes" "$NETWORK"
unset OP7_BOOTSTRAP OP7_KEY_PASSPHRASE

# keys NODE: the node's passphrase (made once) and its keys in secrets/homes/NODE.
keys() {
  local passphrase="$SECRETS/$1.passphrase"
  [[ -f "$passphrase" ]] || openssl rand -base64 24 | tr -d '\n' >"$passphrase"
  if [[ ! -f "$SECRETS/homes/$1/keys/$1.key" ]]; then
    OP7_KEY_PASSPHRASE="$(cat "$passphrase")" op7 --home "$SECRETS/homes/$1" keys new "$1" >&2
  fi
}

keys "$AUTHORITY"
dir="$NETWORK/directory.json"
if [[ ! -f "$dir" ]]; then
  op7 directory create "$dir" --network op7 --threshold 1 \
    --authority "$SECRETS/homes/$AUTHORITY/keys/$AUTHORITY.pub" --expires-in 90d >&2
  for entry in "${NODES[@]}"; do
    IFS='|' read -r node agency role desk phone <<<"$entry"
    keys "$node"
    op7 directory add-node "$dir" "$SECRETS/homes/$node/keys/$node.pub" --agency "$agency" --role "$role" \
      --desk "$desk" --phone "$phone" >&2
  done
  OP7_KEY_PASSPHRASE="$(cat "$SECRETS/$AUTHORITY.passphrase")" \
    op7 --home "$SECRETS/homes/$AUTHORITY" directory sign "$dir" --as "$AUTHORITY" >&2
  chmod 0644 "$dir"
fi
[[ -f "$NETWORK/anchor.json" ]] || op7 directory anchor "$dir" --out "$NETWORK/anchor.json" >&2
chmod 0644 "$NETWORK/anchor.json"
op7 directory verify "$dir" --anchor "$NETWORK/anchor.json" >&2

# The evidence log's database: its password, and the auditor's URL of it (hexadecimal: nothing to escape in a URL).
[[ -f "$SECRETS/audit-db.password" ]] || openssl rand -hex 24 | tr -d '\n' >"$SECRETS/audit-db.password"
printf 'postgresql://op7audit:%s@audit-db:5432/op7audit' "$(cat "$SECRETS/audit-db.password")" \
  >"$SECRETS/audit-store.url"
if [[ "$(id -u)" == 0 ]]; then
  chown -R "${OP7_UID:-1000}:${OP7_UID:-1000}" "$SECRETS" "$NETWORK"
fi
