#!/usr/bin/env bash
# Certificates for a TEST deployment of docker-compose.yml: a throwaway CA, a certificate per broker and one per
# client principal, all valid 90 days. Never use them for a real network: there the CA is the operator's PKI and each
# node makes its own key and certificate request (docs/OPERATIONS.md, "Deployment").
#
#   deploy/make-dev-certs.sh [PRINCIPAL...]     (default: NL.NCC BE.FCP NL.OPS NL.AUDIT NL.NA1 op7-admin)
#
# Writes into $OP7_DEPLOY_DIR/secrets/tls (default: deploy/secrets/tls beside this script; ignored by git):
#   ca.pem, ca.key                  the CA (the key only signs the others; delete it once done if you like)
#   kafka-N.keystore.pem            broker N's key and certificate (CN=kafka-N, DNS:kafka-N), Kafka's PEM keystore
#   NAME.pem, NAME.key              a client's certificate (CN=NAME: Kafka's principal User:NAME) and key (PKCS#8)
#   op7-admin.keystore.pem          the Kafka tools' super user (topic and ACL set-up), key and certificate in one
# Existing files are kept (run with a new name to add a principal); delete secrets/tls to start again.
# Private keys are mode 0600: the containers must run as their owner (OP7_UID for op7, uid 1000 for apache/kafka).
set -euo pipefail

DEPLOY="${OP7_DEPLOY_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
TLS="$DEPLOY/secrets/tls"
DAYS="${OP7_DEV_CERT_DAYS:-90}"
BROKERS=(kafka-1 kafka-2 kafka-3)
if (($#)); then CLIENTS=("$@"); else CLIENTS=(NL.NCC BE.FCP NL.OPS NL.AUDIT NL.NA1 op7-admin); fi

command -v openssl >/dev/null || { echo "make-dev-certs: openssl is needed" >&2; exit 1; }
umask 077
mkdir -p "$TLS"
cd "$TLS"

if [[ ! -f ca.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days "$DAYS" \
    -subj "/O=op7 test deployment/CN=op7 test CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  chmod 0644 ca.pem
fi

# issue NAME EXTENSIONS: NAME.key (PKCS#8, unencrypted) and NAME.pem signed by the CA.
issue() {
  local name="$1" ext="$2"
  [[ -f "$name.pem" ]] && return 0
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "/O=op7 test deployment/CN=$name" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" -days "$DAYS" \
    -extfile <(printf '%s\n' "$ext") 2>/dev/null
  rm -f "$name.csr"
  chmod 0600 "$name.key"
  chmod 0644 "$name.pem"
  echo "make-dev-certs: $TLS/$name.pem (CN=$name)" >&2
}

# keystore NAME: Kafka's PEM keystore, the private key then the certificate in one file.
keystore() {
  [[ -f "$1.keystore.pem" ]] || cat "$1.key" "$1.pem" >"$1.keystore.pem"
  chmod 0600 "$1.keystore.pem"
}

for broker in "${BROKERS[@]}"; do
  # Brokers are both server (clients check the name kafka-N) and client (of each other: replication, the quorum).
  issue "$broker" "subjectAltName=DNS:$broker,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth"
  keystore "$broker"
done
for client in "${CLIENTS[@]}"; do
  issue "$client" "extendedKeyUsage=clientAuth"
  [[ "$client" == op7-admin ]] && keystore "$client"
done
rm -f ca.srl
if [[ "$(id -u)" == 0 ]]; then
  # Root made them: hand them to the uid the containers run as (apache/kafka's appuser is 1000).
  chown -R "${OP7_UID:-1000}:${OP7_UID:-1000}" "$TLS"
  chown 1000 "$TLS"/kafka-*.keystore.pem "$TLS"/op7-admin.keystore.pem
elif [[ "$(id -u)" != 1000 ]]; then
  echo "make-dev-certs: the Kafka containers run as uid 1000 and must read their keystores (mode 0600):" \
    "sudo chown 1000 $TLS/kafka-*.keystore.pem $TLS/op7-admin.keystore.pem" >&2
fi
