# The op7 command line as a container image: every op7 service of docker-compose.yml runs it.
#
#   docker build -t op7 .            (docker compose build does the same for the services)
#
# Settings come from OP7_* environment variables (broker/config.py); OP7_X_FILE=path gives OP7_X the content of
# that file (compose secrets), see deploy/op7-entrypoint.sh. The node's state folder, keys included, is the volume
# OP7_HOME; it is owned by the op7 user, whose uid is OP7_UID (give the uid that owns deploy/secrets on the host, so
# that bind-mounted keys stay mode 0600 and readable).
FROM python:3.11-slim

ARG OP7_UID=1000
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OP7_HOME=/var/lib/op7

WORKDIR /src
COPY pyproject.toml README.md ./
COPY broker ./broker
COPY adapters ./adapters
COPY schemas ./schemas
RUN pip install --root-user-action=ignore . && rm -rf /src

COPY deploy/op7-entrypoint.sh /usr/local/bin/op7-entrypoint
RUN chmod 0755 /usr/local/bin/op7-entrypoint \
    && useradd --system --uid "$OP7_UID" --user-group --home-dir "$OP7_HOME" --no-create-home op7 \
    && install -d -o op7 -g op7 -m 0700 "$OP7_HOME"

USER op7
WORKDIR /var/lib/op7
VOLUME ["/var/lib/op7"]
ENTRYPOINT ["op7-entrypoint"]
CMD ["op7", "--help"]
