"""``op7 audit``: the auditor's evidence log (run, verify, export a case), and ``op7 verify-bundle`` for anyone."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
from datetime import timedelta
from pathlib import Path

import click

from broker.audit.auditor import Auditor, read_published
from broker.audit.bundle import export_case, read_bundle, verify_bundle
from broker.audit.checkpoint import Checkpoint
from broker.audit.history import DirectoryHistory
from broker.audit.store import EvidenceStore
from broker.audit.verify import LogReport, verify_log
from broker.cli._audit_store import STORE_HELP, opened
from broker.cli._click import DURATION, POSITIVE_INT, argument
from broker.cli._common import Env, command, echo_json, global_options, me, new_group, pass_env, transport, where
from broker.cli.audit_report import audit_report
from broker.errors import ConfigError, MessageError, VerificationError
from broker.node.topics import TopicLayout
from broker.trust.directory import DirectoryAnchor, DirectoryDocument
from broker.trust.store import TrustStore
from broker.wire import merkle

__all__ = ["audit", "verify_bundle_command"]

audit = new_group("audit", "the auditor: a tamper-evident log of every record, its checkpoints, reports, case bundles")
audit.add_command(audit_report)


def history_of(env: Env) -> DirectoryHistory:
    """The directory history from this home's anchor; without one, this home's trust store judges everything."""
    home = env.home
    if not home.uses_directory():
        return DirectoryHistory(None, home.trust())
    history = DirectoryHistory(DirectoryAnchor.load(home.anchor_path))
    # The versions this home keeps (installed, or followed): a directory topic may not hold them all any more.
    for path in sorted(home.directory_dir.glob("*.json")):
        with contextlib.suppress(MessageError):
            history.offer(DirectoryDocument.from_kept_file(path)[0].to_bytes())
    return history


def _trusted_nodes(env: Env) -> list[str]:
    trust = env.home.trust()
    return [node for node, _ in trust.nodes()] if isinstance(trust, TrustStore) else []


@command(audit, "run", "read every op7 topic into the evidence log, and sign checkpoints on the checkpoint topic")
@click.option("--as", "as_node", metavar="NODE_ID", help="the auditor's node (its signing key in this home)")
@click.option("--store", "given_store", metavar="URL", help=STORE_HELP)
@click.option("--once", is_flag=True, help="stop when every topic is read to its end (a checkpoint is signed then)")
@click.option(
    "--checkpoint-every", type=POSITIVE_INT, default=10_000, show_default=True, help="sign after this many entries"
)
@click.option("--checkpoint-interval", type=DURATION, default="60s", show_default=True, help="sign at least this often")
@global_options
@pass_env
def audit_run(
    env: Env,
    as_node: str | None,
    given_store: str | None,
    once: bool,
    checkpoint_every: int,
    checkpoint_interval: timedelta,
) -> int:
    identity = env.home.identity(me(as_node))
    history = history_of(env)
    identity = dataclasses.replace(identity, network=history.network)

    async def run(store: EvidenceStore) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with transport(env) as reached:
            auditor = Auditor(
                reached,
                store,
                history,
                identity,
                env.home.clock,
                layout=TopicLayout(env.topic_prefix),
                nodes=_trusted_nodes(env),
                checkpoint_every=checkpoint_every,
                checkpoint_interval=checkpoint_interval,
            )
            click.echo(f"auditing {where(env)} into {store.name}", err=True)
            stats = await auditor.run(once=once, stop=stop)
        last = stats.checkpoints[-1].describe() if stats.checkpoints else "no new checkpoint (nothing new)"
        click.echo(f"logged {stats.logged} of {stats.read} records read ({stats.refused} refused); {last}", err=True)

    with opened(env, given_store, create=True) as store:
        asyncio.run(run(store))
    return 0


@command(audit, "verify", "recompute the evidence log; name the first entry modified, deleted, inserted or reordered")
@click.option("--store", "given_store", metavar="URL", help=STORE_HELP)
@click.option("--offline", is_flag=True, help="only the checkpoints the store keeps, not those on the checkpoint topic")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
@global_options
@pass_env
def audit_verify(env: Env, given_store: str | None, offline: bool, as_json: bool) -> int:
    published = [] if offline else asyncio.run(_published(env))
    with opened(env, given_store) as store:
        report = verify_log(store, history_of(env), published=published)
    if as_json:
        echo_json(_report_json(report))
    else:
        _print_report(report)
    return 0 if report.intact else 1


async def _published(env: Env) -> list[bytes]:
    async with transport(env) as reached:
        return await read_published(reached, TopicLayout(env.topic_prefix))


def _report_json(report: LogReport) -> dict[str, object]:
    first = report.first
    return {
        "intact": report.intact,
        "entries": report.size,
        "refused_records": report.refused,
        "checkpoints_verified": len(report.checkpoints),
        "uncovered": report.uncovered,
        "first_problem": {"entry": first.index, "kind": first.kind, "text": first.text} if first else None,
        "problems": [{"entry": f.index, "kind": f.kind, "text": f.text} for f in sorted(report.findings)],
        "gaps": [
            {"sender": g.sender, "first": g.first, "last": g.last, "after": g.after, "before": g.before}
            for g in report.gaps
        ],
    }


def _print_report(report: LogReport) -> None:
    latest = report.checkpoints[-1].describe() if report.checkpoints else "no signed checkpoint"
    click.echo(f"{report.size} entries ({report.refused} of refused records); {latest}")
    if report.uncovered:
        click.echo(f"{report.uncovered} entries after the last checkpoint are not signed for yet")
    first = report.first
    if first is not None:
        click.echo(f"NOT INTACT: first problem at entry {first.index}: {first.text}", err=True)
        for finding in sorted(report.findings)[1:20]:
            click.echo(f"  also: {finding.text}", err=True)
    else:
        click.echo("intact: every entry, its hash chain and every checkpoint verify")
    for gap in report.gaps:
        click.echo(f"withheld: {gap.describe()}")


@command(audit, "export", "write one case's messages, receipts, directory and proofs to a file that verifies offline")
@click.option("--case", "case_id", required=True, metavar="ID", help="the case id")
@argument("file", "the bundle file to write", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", "given_store", metavar="URL", help=STORE_HELP)
@global_options
@pass_env
def audit_export(env: Env, case_id: str, file: Path, given_store: str | None) -> int:
    history = history_of(env)
    with opened(env, given_store) as store:
        _follow_log(store, history)
        bundle = export_case(store, history, case_id, env.home.clock.now())
    try:
        file.write_text(json.dumps(bundle, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"{file}: case {case_id}, {len(bundle['entries'])} messages, verify with 'op7 verify-bundle {file}'")
    return 0


def _follow_log(store: EvidenceStore, history: DirectoryHistory) -> None:
    """Take the directory versions the log holds into ``history``, in log order."""
    if history.anchor is None:
        return
    for entry in store.entries():
        if entry.kind == "directory" and entry.outcome == "verified":
            with contextlib.suppress(VerificationError):
                history.offer(entry.value)


@command(audit, "prove", "prove that the log only grew since an older checkpoint (an RFC 9162 consistency proof)")
@click.option("--from-size", "old_size", type=POSITIVE_INT, required=True, help="the older checkpoint's size")
@click.option("--store", "given_store", metavar="URL", help=STORE_HELP)
@global_options
@pass_env
def audit_prove(env: Env, old_size: int, given_store: str | None) -> int:
    with opened(env, given_store) as store:
        kept = [Checkpoint.from_bytes(c) for c in store.checkpoints()]
        old = next((c for c in kept if c.size == old_size), None)
        if old is None:
            sizes = ", ".join(str(c.size) for c in kept) or "none yet"
            raise ConfigError(f"no checkpoint of size {old_size} was signed (sizes signed: {sizes})")
        new = max(kept, key=lambda c: (c.size, c.at))
        proof = merkle.consistency_proof(store.leaves(new.size), old_size)
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, proof):
        raise VerificationError(
            f"the log's entries do not prove the {new.describe()} follows from the {old.describe()}: "
            "run 'op7 audit verify'"
        )
    echo_json(
        {
            "old": json.loads(old.to_bytes()),
            "new": json.loads(new.to_bytes()),
            "consistency_proof": [h.hex() for h in proof],
        },
        indent=1,
    )
    return 0


@command(None, "verify-bundle", "check a case bundle offline and print an account of its messages")
@argument("file", "the bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--anchor", type=click.Path(dir_okay=False, path_type=Path), help="the network's anchor file")
@global_options
@pass_env
def verify_bundle_command(env: Env, file: Path, anchor: Path | None) -> int:
    bundle = read_bundle(file)
    if anchor is None and env.home.uses_directory():
        anchor = env.home.anchor_path
    account = verify_bundle(bundle, DirectoryAnchor.load(anchor) if anchor else None)
    if account.checkpoint is not None:
        click.echo(f"case {account.case_id}: {len(account.lines)} messages, {account.checkpoint.describe()}")
    for line in account.lines:
        click.echo(f"  {line}")
    if not account.anchor_given:
        click.echo(
            "warning: no anchor given (--anchor FILE or one installed in this home): the bundle was checked against "
            "the anchor it carries, which proves it consistent, not that it is this network's",
            err=True,
        )
    for problem in account.problems:
        click.echo(f"problem: {problem}", err=True)
    if not account.valid:
        click.echo(f"{file}: the bundle does NOT verify", err=True)
        return 1
    click.echo(f"{file}: every message, proof and signature verifies")
    return 0
