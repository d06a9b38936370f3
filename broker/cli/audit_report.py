"""``op7 audit report``: the figures of a period from the evidence log, for people, spreadsheets, programs and the
periodic report to the Secretary-General (a chart; a NationalReport signed and sent)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from broker.audit.report import Report, build_report, national_report
from broker.audit.report_chart import render_svg
from broker.audit.report_output import render_csv, render_json, render_text
from broker.audit.store import EvidenceStore
from broker.cli._audit_store import STORE_HELP, opened
from broker.cli._click import DURATION
from broker.cli._common import Env, command, global_options, me, pass_env
from broker.cli._issuer import directory_entry
from broker.cli.inbox import Given
from broker.cli.send import Outgoing, send_message
from broker.errors import ConfigError
from broker.models import Handling, Status
from broker.node.deadlines import DeadlinePolicy

__all__ = ["audit_report"]


def _instant(text: str | None, option: str) -> datetime | None:
    """A date (midnight UTC) or an ISO 8601 instant (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: a date (2026-01-31) or an instant (2026-01-31T12:00:00Z)") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@command(None, "report", "the figures of a period: messages, requests in time or overdue, alerts, refusals")
@click.option("--since", metavar="DATE", help="the period's start (default: --period before --until)")
@click.option("--until", metavar="DATE", help="the period's end, excluded (default: now)")
@click.option("--period", type=DURATION, default="30d", show_default=True, help="the period's length without --since")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="tables for people, CSV for a spreadsheet (one figure a row), or JSON",
)
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), help="also draw the figures as SVG here")
@click.option(
    "--status",
    type=click.Choice([s.value for s in Status]),
    default=Status.ACTUAL.value,
    show_default=True,
    help="the traffic the chart and the national report are of (exercises are counted apart)",
)
@click.option(
    "--national-report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the figures as a NationalReport of the --as node's country (JSON, for 'op7 send')",
)
@click.option("--send", is_flag=True, help="sign the NationalReport as the --as node and send it")
@click.option("--to", multiple=True, metavar="NODE_ID", help="the NationalReport's addressee (default: everyone)")
@click.option("--as", "as_node", metavar="NODE_ID", help="the node that issues the NationalReport")
@click.option("--store", "given_store", metavar="URL", help=STORE_HELP)
@global_options
@pass_env
def audit_report(
    env: Env,
    since: str | None,
    until: str | None,
    period: timedelta,
    output: str,
    chart: Path | None,
    status: str,
    national_report: Path | None,
    send: bool,
    to: tuple[str, ...],
    as_node: str | None,
    given_store: str | None,
) -> int:
    now = env.home.clock.now()
    end = _instant(until, "--until") or now
    start = _instant(since, "--since") or end - period
    deadlines = DeadlinePolicy.load(env.home.deadlines_path) if env.home.deadlines_path.exists() else DeadlinePolicy()
    with opened(env, given_store) as store:
        report = _scan(store, start, end, now, deadlines)
    click.echo({"table": render_text, "csv": render_csv, "json": render_json}[output](report), nl=False)
    if chart is not None:
        _write(chart, render_svg(report, status))
        click.echo(f"chart written to {chart}", err=True)
    if national_report is not None or send:
        _national(env, report, Status(status), national_report, send, to, as_node)
    return 0


def _scan(store: EvidenceStore, start: datetime, end: datetime, now: datetime, deadlines: DeadlinePolicy) -> Report:
    """The report, with a progress bar on a terminal while the log is read."""
    progress = Progress(
        TextColumn("reading the evidence log"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    with progress:
        task = progress.add_task("log", total=store.size())
        return build_report(
            store.entries(),
            since=start,
            until=end,
            deadlines=deadlines,
            now=now,
            progress=lambda read: progress.update(task, completed=read),
        )


def _national(
    env: Env,
    report: Report,
    status: Status,
    path: Path | None,
    send: bool,
    to: tuple[str, ...],
    as_node: str | None,
) -> None:
    node_id = me(as_node)
    issuer = Given(None, None, None).authority(node_id, directory_entry(env.home.trust(), node_id))
    now = env.home.clock.now()
    message = national_report(report, issuer=issuer, sent_at=now, handling=Handling(tlp="GREEN"), status=status)
    path = path or env.home.state_dir() / f"national-report-{message.report_id}.json"
    _write(path, json.dumps(message.model_dump(mode="json"), indent=1) + "\n")
    click.echo(f"national report written to {path}", err=True)
    if send:
        send_message(env, Outgoing("NationalReport", str(path), as_node=node_id, to=to))


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
