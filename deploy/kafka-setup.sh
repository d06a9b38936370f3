#!/usr/bin/env bash
# One-shot set-up of the cluster of docker-compose.yml, run in the apache/kafka image by the kafka-setup service as the
# super user op7-admin: waits until the three brokers answer, creates the topics of topics.conf (replication factor
# and min.insync.replicas below; existing ones are left alone) and adds the ACLs of acls/*.acl (adding one that exists
# changes nothing). Safe to run again, e.g. after adding a node's topics and ACL file. It never removes: a binding
# taken out of a file stays on the cluster until `kafka-acls.sh --remove --force` with that line's other arguments.
#
# Environment: SETUP_BOOTSTRAP (host:port,...), SETUP_CA (the CA's PEM), SETUP_KEYSTORE (op7-admin's key and
# certificate, PEM), SETUP_REPLICATION_FACTOR (default 3), SETUP_MIN_INSYNC_REPLICAS (default 2), SETUP_BROKERS (how
# many brokers to wait for, default 3), SETUP_TIMEOUT (seconds, default 180), SETUP_DIR (default: this script's folder),
# SETUP_KAFKA_BIN (Kafka's tools, default /opt/kafka/bin as in the apache/kafka image).
set -euo pipefail

dir="${SETUP_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
bootstrap="${SETUP_BOOTSTRAP:?SETUP_BOOTSTRAP: the brokers, host:port,...}"
replicas="${SETUP_REPLICATION_FACTOR:-3}"
min_isr="${SETUP_MIN_INSYNC_REPLICAS:-2}"
brokers="${SETUP_BROKERS:-3}"
timeout="${SETUP_TIMEOUT:-180}"
bin="${SETUP_KAFKA_BIN:-/opt/kafka/bin}"
say() { printf 'kafka-setup: %s\n' "$*" >&2; }

for f in "${SETUP_CA:?SETUP_CA: the CA certificate}" "${SETUP_KEYSTORE:?SETUP_KEYSTORE: op7-admin key and certificate}" \
  "$dir/topics.conf"; do
  [[ -r "$f" ]] || { say "error: $f: cannot read the file"; exit 1; }
done
admin="$(mktemp)"
trap 'rm -f "$admin"' EXIT
cat >"$admin" <<PROPERTIES
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location=$SETUP_KEYSTORE
ssl.truststore.type=PEM
ssl.truststore.location=$SETUP_CA
PROPERTIES

# Every broker registered, not only the first to answer: a topic of replication factor 3 needs three.
deadline=$((SECONDS + timeout))
until [[ "$("$bin/kafka-broker-api-versions.sh" --bootstrap-server "$bootstrap" --command-config "$admin" 2>/dev/null \
  | grep -c ' (id: ')" -ge "$brokers" ]]; do
  ((SECONDS < deadline)) || { say "error: fewer than $brokers brokers answer at $bootstrap after ${timeout}s"; exit 1; }
  sleep 3
done
say "$brokers brokers answer at $bootstrap"

while read -r name partitions configs; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  args=(--create --if-not-exists --topic "$name" --partitions "$partitions" --replication-factor "$replicas"
    --config "min.insync.replicas=$min_isr")
  for config in $configs; do args+=(--config "$config"); done
  "$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --command-config "$admin" "${args[@]}" >/dev/null
  say "topic $name"
done <"$dir/topics.conf"

shopt -s nullglob
for file in "$dir"/acls/*.acl; do
  while read -r line; do
    [[ -z "$line" || "$line" == \#* ]] && continue
    read -ra words <<<"$line"
    "$bin/kafka-acls.sh" --bootstrap-server "$bootstrap" --command-config "$admin" "${words[@]}" >/dev/null
  done <"$file"
  say "ACLs of $(basename "$file" .acl)"
done
say "done"
