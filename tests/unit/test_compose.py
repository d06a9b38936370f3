"""docker-compose.yml and deploy/: valid for Docker Compose, and what op7 needs of the cluster and of each service.

The file is loaded by scripts/compose-config, a small Go program around the Compose Specification's own loader
(compose-go, the library `docker compose config` runs): schema, interpolation, references between services, secrets,
volumes and networks, as Docker Compose checks them, without a Docker engine. It is built with Go (needed under
CI=true; elsewhere the tests that need it skip without Go).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from psycopg.conninfo import conninfo_to_dict

from broker.cli.app import main
from broker.config import ENV_PREFIX, Settings
from broker.node.topics import TopicLayout
from tests.conftest import ROOT, under_ci

COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
TOOL = ROOT / "scripts" / "compose-config"
KAFKA_VERSION = re.search(r"<kafka.version>(.+)</kafka.version>", (ROOT / "scripts/kafka-runtime/pom.xml").read_text())
LAYOUT = TopicLayout("op7")
#: The network authority: it publishes the directory, and is no node of it.
AUTHORITY = "NL.NA1"
Binding = tuple[str, str, str, str, str]  # principal, resource type, name, pattern type, operation


def _go() -> str | None:
    return shutil.which("go") or next((g for g in ("/usr/local/go/bin/go",) if os.access(g, os.X_OK)), None)


def built_compose_config() -> Path:
    """The compose-config program, built once per version of its source into .cache/compose-config/; without Go,
    the calling test skips (fails under CI)."""
    go = _go()
    if go is None:
        message = "Go is needed to build scripts/compose-config (the Compose Specification's loader)"
        if under_ci():
            pytest.fail(message + " -- under CI the compose file must be checked", pytrace=False)
        pytest.skip(message)
    digest = hashlib.sha256(b"".join((TOOL / f).read_bytes() for f in ("go.mod", "go.sum", "main.go"))).hexdigest()
    binary = ROOT / ".cache" / "compose-config" / f"compose-config-{digest[:16]}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_name(f"{binary.name}.{os.getpid()}")
        env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"}
        command = [go, "build", "-o", str(partial), "."]
        built = subprocess.run(command, cwd=TOOL, env=env, capture_output=True, text=True)
        assert built.returncode == 0, f"go build scripts/compose-config failed:\n{built.stderr}"
        os.replace(partial, binary)  # whole, even when another test process builds it at the same time
    return binary


@pytest.fixture(scope="module")
def compose_config() -> Path:
    return built_compose_config()


def _load(tool: Path, file: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # Only what the file's defaults say: no OP7_* or .env of the machine running the tests.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run([str(tool), "--format", "json", str(file)], cwd=cwd, env=env, capture_output=True, text=True)


def compose_model(tool: Path) -> dict[str, Any]:
    """docker-compose.yml as Docker Compose resolves it (anchors merged, variables interpolated)."""
    loaded = _load(tool, COMPOSE)
    assert loaded.returncode == 0, f"docker-compose.yml is not a valid Compose file: {loaded.stderr}"
    model: dict[str, Any] = json.loads(loaded.stdout)
    return model


@pytest.fixture(scope="module")
def project(compose_config: Path) -> dict[str, Any]:
    return compose_model(compose_config)


def test_the_loader_refuses_what_docker_compose_refuses(compose_config: Path, tmp_path: Path) -> None:
    """The check can fail: an unknown key, and a service naming a secret nobody defined, are refused."""
    text = COMPOSE.read_text(encoding="utf-8")
    cases = {
        "unknown key": text.replace('    restart: "no"\n', '    restart: "no"\n    restrat: always\n', 1),
        "undefined secret": text.replace("secrets: [op7-admin-keystore]", "secrets: [op7-root-keystore]"),
    }
    for what, broken in cases.items():
        assert broken != text, what
        (tmp_path / "docker-compose.yml").write_text(broken, encoding="utf-8")
        loaded = _load(compose_config, tmp_path / "docker-compose.yml", cwd=tmp_path)
        assert loaded.returncode == 1, what
        assert loaded.stderr.startswith("compose-config: ") and len(loaded.stderr.strip().splitlines()) == 1, what


def _services(project: dict[str, Any], image: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in project["services"].items() if s["image"].startswith(image)}


def test_three_kraft_brokers_with_mutual_tls_acls_and_durability(project: dict[str, Any]) -> None:
    assert KAFKA_VERSION is not None
    brokers = _services(project, "apache/kafka:")
    brokers = {name: s for name, s in brokers.items() if "KAFKA_NODE_ID" in s["environment"]}
    assert sorted(brokers) == ["kafka-1", "kafka-2", "kafka-3"]
    voters = {f"{n}@kafka-{n}:9093" for n in (1, 2, 3)}
    for name, service in brokers.items():
        env = service["environment"]
        assert service["image"] == f"apache/kafka:{KAFKA_VERSION.group(1)}", "the version scripts/kafka runs"
        assert env["KAFKA_NODE_ID"] == name.removeprefix("kafka-")
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        # Durability: as the fault suite's cluster (tests/cluster).
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        # Every listener is TLS with a client certificate, and its name does not trip the image's JKS check.
        protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert set(protocols.values()) == {"SSL"}
        assert {u.split("://")[0] for u in env["KAFKA_LISTENERS"].split(",")} == set(protocols)
        assert "SSL://" not in env["KAFKA_ADVERTISED_LISTENERS"]
        assert env["KAFKA_SSL_CLIENT_AUTH"] == "required"
        assert env["KAFKA_SSL_KEYSTORE_LOCATION"] == f"/run/secrets/{name}-keystore"
        assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
        supers = set(env["KAFKA_SUPER_USERS"].split(";"))
        assert supers == {"User:kafka-1", "User:kafka-2", "User:kafka-3", "User:op7-admin"}
        assert env["KAFKA_SSL_PRINCIPAL_MAPPING_RULES"] == r"RULE:^CN=([^,]+)(,.*)?$/$1/,DEFAULT"


def _principal(rule: str, subject: str) -> str:
    """Kafka's SslPrincipalMapper for one RULE:pattern/replacement/ rule, as Java's regex would apply it."""
    pattern, replacement = re.fullmatch(r"RULE:(.*)/(.*)/,DEFAULT", rule).groups()  # type: ignore[union-attr]
    found = re.fullmatch(pattern.rstrip("$"), subject)
    return found.expand(replacement.replace("$1", r"\1")) if found else subject


def _op7_services(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _services(project, "op7:")


def test_every_op7_service_is_configured_with_real_settings_and_flags(project: dict[str, Any]) -> None:
    """Each variable is a setting of broker/config.py (or OP7_X_FILE for it, read by the image's entry point), each
    command parses with the real CLI, and each service connects as the node it runs as."""
    settings = {Settings.variable(name) for name in Settings.model_fields}
    services = _op7_services(project)
    assert {"nl-ncc-inbox", "nl-ncc-alerts", "be-fcp-inbox", "be-fcp-alerts", "ops-centre", "auditor"} < set(services)
    serving: set[str] = set()
    for name, service in services.items():
        env = service["environment"]
        unknown = {v for v in env if v.removesuffix("_FILE") not in settings}
        assert not unknown, f"{name}: not settings of broker.config.Settings: {unknown}"
        assert all(v.startswith(ENV_PREFIX) for v in env)
        assert env["OP7_KAFKA_SECURITY_PROTOCOL"] == "SSL"
        assert env["OP7_BOOTSTRAP"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
        secrets = {s["target"] for s in service.get("secrets", [])}
        assert env["OP7_KAFKA_KEY"] in secrets
        files = {v: path for v, path in env.items() if v.endswith("_FILE")}
        assert set(files.values()) <= secrets, f"{name}: {files} read from outside its secrets"
        mounts = {m["target"]: m for m in service["volumes"]}
        assert env["OP7_KAFKA_CERT"] in mounts and env["OP7_KAFKA_CA"] in mounts
        principal = Path(env["OP7_KAFKA_CERT"]).stem
        command = service["command"]
        assert command[0] == "op7"
        if "--as" in command:
            assert command[command.index("--as") + 1] == principal, f"{name} runs as one node, connects as another"
            assert mounts["/var/lib/op7/keys"]["source"].endswith(f"deploy/secrets/homes/{principal}/keys")
        assert (DEPLOY / "acls" / f"{principal}.acl").exists(), f"{name}: no ACLs for User:{principal}"
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = main([*command[1:], "--help"])
        assert status == 0, f"{name}: {shlex.join(command)}: {out.getvalue().strip().splitlines()[-1]}"
        if "--metrics-port" in out.getvalue():  # served metrics are reachable from outside the container
            serving.add(name)
            assert env["OP7_METRICS_PORT"] == "9464" and env["OP7_METRICS_ADDRESS"] == "0.0.0.0", name
    assert "--metrics-port" in services["ops-centre"]["command"]
    assert serving == set(services) - {"directory-publish", "auditor"}
    members = set()
    for name, service in services.items():
        if name != "directory-publish":  # the long-running ones
            members.add(service["environment"]["OP7_KAFKA_GROUP_INSTANCE_ID"])  # static membership: one id each
    assert len(members) == len(services) - 1


def _acl_file(path: Path) -> set[Binding]:
    """The bindings of a deploy/acls file: the kafka-acls.sh arguments of one --add command a line."""
    return _acl_lines([line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()])


def _acl_lines(lines: list[str]) -> set[Binding]:
    bindings: set[Binding] = set()
    for line in lines:
        if line.startswith("#"):
            continue
        words = shlex.split(line)
        values: dict[str, list[str]] = {}
        for option, value in itertools.pairwise(words):
            if option.startswith("--") and not value.startswith("--"):
                values.setdefault(option, []).append(value)
        assert "--add" in words and values["--allow-principal"], line
        for kind in ("topic", "group"):
            for resource in values.get(f"--{kind}", []):
                for operation in values["--operation"]:
                    pattern = values["--resource-pattern-type"][0]
                    bindings.add((values["--allow-principal"][0], kind, resource, pattern, operation))
    return bindings


def _command_acls(node: str, *extra: str) -> set[Binding]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["topics", "acls", node, "--principal", f"User:{node}", *extra, "--format", "kafka-acls"]) == 0
    return _acl_lines(out.getvalue().splitlines())


def test_node_acls_are_those_op7_topics_acls_prints() -> None:
    files = sorted((DEPLOY / "acls").glob("*.acl"))
    assert {f.stem for f in files} == {"NL.NCC", "BE.FCP", "NL.OPS", "NL.AUDIT", AUTHORITY}
    for file in files:
        bindings = _acl_file(file)
        assert {b[0] for b in bindings} == {f"User:{file.stem}"}, file.name
        if file.stem == "NL.AUDIT":
            continue
        expected = _command_acls(file.stem, *(["--authority"] if file.stem == AUTHORITY else []))
        assert bindings == expected, f"{file.name} differs from `op7 topics acls`: {bindings ^ expected}"
    writes_directory = ("topic", "op7.directory", "literal", "Write")
    directory_writers = {f.stem for f in files if (f"User:{f.stem}", *writes_directory) in _acl_file(f)}
    assert directory_writers == {AUTHORITY}


def _allows(bindings: set[Binding], kind: str, name: str, operation: str) -> bool:
    """Whether a binding grants ``operation`` on the resource ``name`` (Read and Write imply Describe)."""
    implied = {operation, *(("Read", "Write") if operation == "Describe" else ())}
    return any(
        b[1] == kind and b[4] in implied and (name == b[2] if b[3] == "literal" else name.startswith(b[2]))
        for b in bindings
    )


def test_the_auditor_reads_every_topic_and_writes_only_its_checkpoints() -> None:
    """`op7 audit run` reads every topic of the layout, those of nodes joining later too, in groups named after the
    auditor; it writes its checkpoints and nothing else."""
    bindings = _acl_file(DEPLOY / "acls" / "NL.AUDIT.acl")
    later = "FR.GN"  # a node the deployment does not know yet
    topics = [*LAYOUT.shared, *(t for n in ("NL.NCC", "NL.AUDIT", later) for t in LAYOUT.of_node(n))]
    for topic in [LAYOUT.name(t) for t in [*topics, LAYOUT.checkpoints]]:
        assert _allows(bindings, "topic", topic, "Read"), topic
    assert not _allows(bindings, "topic", "other.alerts", "Read")
    writes = {(b[1], b[2], b[3]) for b in bindings if b[4] != "Read"}
    assert writes == {("topic", LAYOUT.name(LAYOUT.checkpoints), "literal")}
    groups = {(b[2], b[3]) for b in bindings if b[1] == "group"}
    assert groups == {("NL.AUDIT.audit.", "prefixed"), ("op7.audit.checkpoints.", "prefixed")}
    assert {b[4] for b in bindings if b[1] == "group"} == {"Read"}


def test_topics_are_those_of_the_topic_layout() -> None:
    """deploy/topics.conf: every topic op7 uses for the nodes of the deployment and the auditor's checkpoints,
    specified as op7 creates them."""
    nodes = [f.stem for f in (DEPLOY / "acls").glob("*.acl") if f.stem != AUTHORITY]
    expected = {}
    for short in [*LAYOUT.shared, *(t for n in nodes for t in LAYOUT.of_node(n)), LAYOUT.checkpoints]:
        spec = LAYOUT.spec(short)
        configs = {"cleanup.policy=compact"} if spec.compacted else set()
        if spec.retention is not None:
            configs.add(f"retention.ms={int(spec.retention.total_seconds() * 1000)}")
        expected[spec.name] = (spec.partitions, configs)
    found = {}
    for line in (DEPLOY / "topics.conf").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, partitions, *settings = line.split()
            found[name] = (int(partitions), set(settings))
    assert found == expected


def test_setup_service_creates_replicated_topics_then_the_directory_is_published(project: dict[str, Any]) -> None:
    services = project["services"]
    setup = services["kafka-setup"]
    assert setup["environment"]["SETUP_REPLICATION_FACTOR"] == "3"
    assert setup["environment"]["SETUP_MIN_INSYNC_REPLICAS"] == "2"
    assert setup["entrypoint"] == ["/bin/bash", "/opt/op7-setup/kafka-setup.sh"]
    assert {b: c["condition"] for b, c in setup["depends_on"].items()} == dict.fromkeys(
        ("kafka-1", "kafka-2", "kafka-3"), "service_healthy"
    )
    publish = services["directory-publish"]
    assert Path(publish["environment"]["OP7_KAFKA_CERT"]).stem == AUTHORITY
    assert publish["depends_on"]["kafka-setup"]["condition"] == "service_completed_successfully"
    for name, service in _op7_services(project).items():
        if name != "directory-publish":
            assert service["depends_on"]["directory-publish"]["condition"] == "service_completed_successfully"


def test_the_auditor_keeps_its_log_in_a_database_only_it_reaches(project: dict[str, Any]) -> None:
    """The evidence log is in PostgreSQL on a network of its own, no port on the host; its password is a secret,
    and so is the auditor's URL of it: neither is in the compose file."""
    services = project["services"]
    auditor, database = services["auditor"], services["audit-db"]
    assert auditor["command"] == ["op7", "audit", "run", "--as", "NL.AUDIT"]
    assert re.fullmatch(r"postgres:1[67]", database["image"]), "the official image, whose data folder is mounted"
    assert not database.get("ports") and not database.get("expose")
    assert project["networks"]["audit-db"]["internal"] is True
    assert {name for name, s in services.items() if "audit-db" in s["networks"]} == {"auditor", "audit-db"}
    assert set(database["networks"]) == {"audit-db"} and set(auditor["networks"]) == {"op7", "audit-db"}
    volumes = {m["target"]: m for m in database["volumes"]}
    assert volumes["/var/lib/postgresql/data"]["type"] == "volume"
    # pg_isready over TCP: the image's first-start server, before the database is made, listens on its socket only.
    assert database["healthcheck"]["test"][:4] == ["CMD", "pg_isready", "--host", "127.0.0.1"]
    assert auditor["depends_on"]["audit-db"]["condition"] == "service_healthy"
    env = database["environment"]
    assert "POSTGRES_PASSWORD" not in env and "OP7_AUDIT_STORE" not in auditor["environment"]
    assert env["POSTGRES_PASSWORD_FILE"] in {s["target"] for s in database["secrets"]}
    assert auditor["environment"]["OP7_AUDIT_STORE_FILE"] in {s["target"] for s in auditor["secrets"]}
    assert "audit-home" in {m["source"] for m in auditor["volumes"] if m["type"] == "volume"}


def test_no_private_key_is_committed_nor_sent_to_a_build(project: dict[str, Any]) -> None:
    pem_key = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{40,}")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file() and path.stat().st_size < 1_000_000:
            assert not pem_key.search(path.read_bytes()), f"{name} holds a private key"
    for secret in project["secrets"].values():
        file = Path(secret["file"])
        assert file.is_relative_to(DEPLOY / "secrets"), file
        ignored = subprocess.run(["git", "check-ignore", "-q", str(file)], cwd=ROOT)
        assert ignored.returncode == 0, f"{file} is not ignored by git"
    assert "deploy/secrets" in (ROOT / ".dockerignore").read_text(encoding="utf-8").split()


def test_the_image_runs_as_a_user_with_its_home_a_volume() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^RUN pip install .* \.", text, re.M)
    assert re.search(r"^USER op7$", text, re.M) and re.search(r'^VOLUME \["/var/lib/op7"\]$', text, re.M)
    assert "OP7_HOME=/var/lib/op7" in text


def test_the_image_build_context_installs(tmp_path: Path) -> None:
    """What the Dockerfile copies, and .dockerignore lets through, is enough for its `pip install .`: a wheel built
    from that alone ships op7's command and schemas."""
    ignored = [p for p in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines() if p and p[0] != "#"]
    context = tmp_path / "context"
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert not any(fnmatch.fnmatch(source, p) for p in ignored), f"{source} is in .dockerignore"
                target = context / source
                target.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(ROOT / source, target)
    wheel_dir = tmp_path / "wheel"
    command = ["pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(wheel_dir), str(context)]
    subprocess.run([sys.executable, "-m", *command], check=True, capture_output=True, timeout=300)
    (wheel,) = wheel_dir.glob("op7_exchange-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {Path(n).name for n in names if n.startswith("broker/_schemas/")} == {
        p.name for p in (ROOT / "schemas").glob("*.avsc")
    }
    assert "broker/cli/__init__.py" in names and "adapters/base.py" in names


def test_entrypoint_reads_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "passphrase").write_text("s3cret\n", encoding="utf-8")
    env = {"PATH": os.environ["PATH"], "OP7_KEY_PASSPHRASE_FILE": str(tmp_path / "passphrase")}
    entry = str(DEPLOY / "op7-entrypoint.sh")
    shown = subprocess.run([entry, "env"], env=env, capture_output=True, text=True, check=True).stdout
    assert "OP7_KEY_PASSPHRASE=s3cret\n" in shown and "OP7_KEY_PASSPHRASE_FILE" not in shown
    env["OP7_KEY_PASSPHRASE_FILE"] = str(tmp_path / "missing")
    failed = subprocess.run([entry, "env"], env=env, capture_output=True, text=True)
    assert failed.returncode == 1 and "OP7_KEY_PASSPHRASE_FILE=" in failed.stderr and "cannot read" in failed.stderr


@pytest.fixture(scope="module")
def dev_deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/ filled by make-dev-certs.sh and make-dev-network.sh, run for real (op7 from this tree)."""
    folder = tmp_path_factory.mktemp("deploy")
    for script in ("make-dev-certs.sh", "make-dev-network.sh"):
        _run_dev_script(script, folder)
    return folder


def _run_dev_script(script: str, folder: Path) -> None:
    env = {**os.environ, "OP7_DEPLOY_DIR": str(folder)}
    env.pop("OP7_HOME", None)
    done = subprocess.run([str(DEPLOY / script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{script}: {done.stderr}"


def test_dev_certificates_name_each_principal_and_chain_to_the_ca(
    project: dict[str, Any], dev_deployment: Path
) -> None:
    """Every broker certificate carries its host name, and the principal Kafka derives from each certificate (its
    subject, through the brokers' mapping rule) is its CN."""
    tls = dev_deployment / "secrets" / "tls"
    ca = x509.load_pem_x509_certificate((tls / "ca.pem").read_bytes())
    rule = project["services"]["kafka-1"]["environment"]["KAFKA_SSL_PRINCIPAL_MAPPING_RULES"]
    names = set()
    for cert_file in tls.glob("*.pem"):
        if cert_file.name == "ca.pem" or cert_file.name.endswith(".keystore.pem"):
            continue
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        cert.verify_directly_issued_by(ca)
        name = cert_file.stem
        names.add(name)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        assert _principal(rule, cert.subject.rfc4514_string()) == name
        if name.startswith("kafka-"):
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert name in sans.get_values_for_type(x509.DNSName)
            keystore = (tls / f"{name}.keystore.pem").read_text(encoding="utf-8")
            assert "-----BEGIN PRIVATE KEY-----" in keystore and "-----BEGIN CERTIFICATE-----" in keystore
    supers = project["services"]["kafka-1"]["environment"]["KAFKA_SUPER_USERS"]
    acl_principals = {f.stem for f in (DEPLOY / "acls").glob("*.acl")}
    assert names == {s.removeprefix("User:") for s in supers.split(";")} | acl_principals


def test_dev_deployment_fills_every_file_the_services_mount(project: dict[str, Any], dev_deployment: Path) -> None:
    """After the two scripts, each secret and each bind mount under deploy/ exists, private ones readable by their
    owner only, and the directory they made verifies against the anchor and lists every node of the services."""
    sources = [Path(s["file"]) for s in project["secrets"].values()]
    for service in project["services"].values():
        sources += [Path(m["source"]) for m in service.get("volumes", []) if m["type"] == "bind"]
    for source in sources:
        relative = source.relative_to(DEPLOY)
        filled = dev_deployment / relative
        if relative.parts[0] in ("secrets", "network"):
            assert filled.exists(), f"the dev scripts do not make {relative}"
            # Everything in secrets/ but the certificates: keys, passphrases, the database's password and URL.
            certificate = filled.suffix == ".pem" and "keystore" not in filled.name
            private = relative.parts[0] == "secrets" and (filled.is_dir() or not certificate)
            if private:
                assert filled.stat().st_mode & 0o077 == 0, f"{relative} is open to other users"
        else:
            assert source.exists(), f"{relative} is not in the repository"
    network = dev_deployment / "network"
    verified = subprocess.run(
        ["op7", "directory", "verify", str(network / "directory.json"), "--anchor", str(network / "anchor.json")],
        env={**os.environ, "OP7_HOME": str(dev_deployment / "verifier")},
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["directory", "show", str(network / "directory.json")]) == 0
    listed = {node["node_id"] for node in json.loads(out.getvalue())["nodes"]}
    principals = {Path(s["environment"]["OP7_KAFKA_CERT"]).stem for s in _op7_services(project).values()}
    assert listed == principals - {AUTHORITY}


def _secret_file(project: dict[str, Any], service: str, target: str, deployment: Path) -> Path:
    """Where, in ``deployment``, the file is that ``service`` sees at ``target``."""
    source = next(s["source"] for s in project["services"][service]["secrets"] if s["target"] == target)
    return deployment / Path(project["secrets"][source]["file"]).relative_to(DEPLOY)


def test_the_auditor_opens_its_log_with_the_database_password(project: dict[str, Any], dev_deployment: Path) -> None:
    """The URL the auditor's entry point reads into OP7_AUDIT_STORE names the database's user, password and
    database on its service; running the script again keeps the password the database was made with."""
    database = project["services"]["audit-db"]["environment"]
    password_file = _secret_file(project, "audit-db", database["POSTGRES_PASSWORD_FILE"], dev_deployment)
    password = password_file.read_text(encoding="utf-8")
    url_file = _secret_file(
        project, "auditor", project["services"]["auditor"]["environment"]["OP7_AUDIT_STORE_FILE"], dev_deployment
    )
    entry = [str(DEPLOY / "op7-entrypoint.sh"), sys.executable, "-c"]
    read = "from broker.config import Settings; print(Settings.load().audit_store)"
    env = {"PATH": os.environ["PATH"], "OP7_AUDIT_STORE_FILE": str(url_file)}
    url = subprocess.run([*entry, read], env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert url.startswith("postgresql://")
    assert conninfo_to_dict(url) == {
        "user": database["POSTGRES_USER"],
        "password": password,
        "host": "audit-db",
        "port": "5432",
        "dbname": database["POSTGRES_DB"],
    }
    assert len(password) >= 32
    _run_dev_script("make-dev-network.sh", dev_deployment)
    assert password_file.read_text(encoding="utf-8") == password
    assert url_file.read_text(encoding="utf-8") == url
