#!/bin/sh
# Entry point of the op7 image: for each OP7_NAME_FILE variable, sets OP7_NAME to the content of that file (a compose
# secret such as /run/secrets/nl-ncc-key-passphrase), so that secrets never sit in the service's environment in
# docker-compose.yml or `docker inspect`; then runs the command.
set -eu
for var in $(env | sed -n 's/^\(OP7_[A-Z0-9_]*\)_FILE=.*/\1/p'); do
  eval "file=\${${var}_FILE}"
  if [ ! -r "$file" ]; then
    echo "op7-entrypoint: ${var}_FILE=$file: cannot read the file" >&2
    exit 1
  fi
  # Command substitution drops the trailing newline an editor leaves at the end of the file.
  value=$(cat "$file")
  export "$var=$value"
  unset "${var}_FILE"
done
exec "$@"
