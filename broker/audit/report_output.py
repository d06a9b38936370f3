"""An audit report for people and for programs: Rich tables (plain text off a terminal), one flat CSV table, JSON.

Node ids, reasons and other keys can come from what a sender claimed or a node said: the tables print them as text
(never as Rich markup), and a CSV cell that a spreadsheet would run as a formula is written after a quote.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import fields
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from broker.audit.report_model import OUTCOMES, AlertFigures, Outcomes, Report, Times, Traffic
from broker.models.answers import short_name

__all__ = ["CSV_COLUMNS", "FORMULA_START", "csv_rows", "duration", "render_csv", "render_json", "render_text", "tables"]

#: The columns of the CSV form: which part of the report, the status, what is counted (a type, a node, a country
#: pair...), a second key where one is needed, the figure's name and its value.
CSV_COLUMNS = ("section", "status", "key", "detail", "metric", "value")
#: What a spreadsheet runs as a formula when it starts a cell (OWASP, "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Row = tuple[str, str, str, str, str, str | int | float]


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False)


# --- tables -----------------------------------------------------------------------------------------------------


def tables(report: Report) -> list[Table]:
    """The report as titled tables: a summary, then per status its messages, requests, response times and alerts,
    then the refusals. Empty tables are left out."""
    found = [_summary(report)]
    for status, traffic in report.traffic.items():
        found += [
            _counts(f"Messages by type ({status})", "type", {short_name(k): v for k, v in traffic.by_type.items()}),
            _nodes(status, traffic),
            _requests(f"Requests by type ({status})", "type", traffic.requests, short=True),
            _requests(f"Requests by country pair ({status})", "pair", traffic.requests_by_pair),
            _counts(f"Deadlines of the requests ({status})", "known from", traffic.deadline_basis),
            _times(status, traffic),
            _alerts(status, traffic.alerts),
        ]
    refusals = _table("Refused frames", "seen by", "claimed sender", "reason", "frames", text=3)
    for refusal in report.refusals:
        _row(refusals, refusal.seen_by, refusal.sender, refusal.reason, refusal.count)
    found.append(refusals)
    return [t for t in found if t.row_count]


def render_text(report: Report) -> str:
    """The tables as plain text: no colour, no markup, no wrapping."""
    out = io.StringIO()
    console = Console(file=out, width=10_000, no_color=True, markup=False, highlight=False, emoji=False)
    for table in tables(report):
        console.print(table)
        console.print()
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


def _table(title: str, *columns: str, text: int = 1, header: bool = True) -> Table:
    """A titled table whose first ``text`` columns hold text (left-aligned), the others figures."""
    grid = Table(
        title=title,
        title_justify="left",
        min_width=len(title),  # a title wider than the columns stays on one line
        box=None,
        header_style="bold",
        show_header=header,
        pad_edge=False,
        show_edge=False,
    )
    for index, column in enumerate(columns):
        grid.add_column(column, justify="left" if index < text else "right", overflow="fold")
    return grid


def _row(table: Table, *cells: object) -> None:
    # Text, never markup: a claimed sender or a node's reason may hold brackets.
    table.add_row(*(Text(str(cell)) for cell in cells))


def _summary(report: Report) -> Table:
    table = _table("Audit report", "", "", text=2, header=False)
    rows = (
        ("period", f"{report.since.isoformat()} to {report.until.isoformat()} (end excluded)"),
        ("judged at", report.now.isoformat()),
        ("networks", ", ".join(report.networks) or "-"),
        ("log entries read", report.entries_read),
        ("messages", report.messages),
        ("copies counted once", f"{report.copies} ({report.divergent_copies} of other bytes)"),
        ("payloads not decoded", report.unreadable),
    )
    for name, value in rows:
        _row(table, name, value)
    return table


def _counts(title: str, key: str, counts: Mapping[str, int]) -> Table:
    table = _table(title, key, "count")
    for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        _row(table, name, count)
    return table


def _nodes(status: str, traffic: Traffic) -> Table:
    table = _table(f"Messages by node ({status})", "node", "sent", "received")
    for node in sorted(set(traffic.by_sender) | set(traffic.by_recipient)):
        _row(table, node, traffic.by_sender.get(node, 0), traffic.by_recipient.get(node, 0))
    return table


def _requests(title: str, key: str, requests: Mapping[str, Outcomes], *, short: bool = False) -> Table:
    table = _table(title, key, *(name.replace("_", " ") for name in OUTCOMES), "sealed", "total")
    for name, outcomes in requests.items():
        _row(
            table,
            short_name(name) if short else name,
            *(getattr(outcomes, o) for o in OUTCOMES),
            outcomes.sealed,
            outcomes.total,
        )
    return table


def _times(status: str, traffic: Traffic) -> Table:
    table = _table(f"Response times ({status})", "of", "answered", "p50", "p90", "p99", "max")
    keyed = [(short_name(k), t) for k, t in traffic.response_times.items()]
    for name, times in [*keyed, *traffic.response_times_by_pair.items()]:
        _row(table, name, times.count, *(duration(getattr(times, p)) for p in ("p50", "p90", "p99", "max")))
    return table


def _alerts(status: str, alerts: Mapping[str, AlertFigures]) -> Table:
    names = [f.name for f in fields(AlertFigures)]
    table = _table(f"Kidnapping alerts by issuing country ({status})", "country", *(n.replace("_", " ") for n in names))
    for country, figures in alerts.items():
        _row(table, country, *(getattr(figures, n) for n in names))
    return table


def duration(seconds: float) -> str:
    """``seconds`` for people: ``45s``, ``12m 05s``, ``3h 20m``, ``4d 06h``."""
    sign, left = ("-" if seconds < 0 else ""), round(abs(seconds))
    days, rest = divmod(left, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours:02d}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    return f"{sign}{minutes}m {secs:02d}s" if minutes else f"{sign}{secs}s"


# --- CSV --------------------------------------------------------------------------------------------------------


def render_csv(report: Report) -> str:
    """One flat table (:data:`CSV_COLUMNS`), a header row first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows([_guarded(cell) for cell in row] for row in csv_rows(report))
    return out.getvalue()


def csv_rows(report: Report) -> Iterator[Row]:
    """Every figure of the report as a row of :data:`CSV_COLUMNS`."""
    yield ("period", "", "", "", "since", report.since.isoformat())
    yield ("period", "", "", "", "until", report.until.isoformat())
    yield ("period", "", "", "", "now", report.now.isoformat())
    for network in report.networks:
        yield ("period", "", "", "", "network", network)
    for name in ("entries_read", "copies", "divergent_copies", "unreadable"):
        yield ("log", "", "", "", name, getattr(report, name))
    for status, traffic in report.traffic.items():
        yield from _traffic_rows(status, traffic)
    for refusal in report.refusals:
        yield ("refusals", "", refusal.sender, refusal.seen_by, refusal.reason, refusal.count)


def _traffic_rows(status: str, traffic: Traffic) -> Iterator[Row]:
    yield ("messages", status, "", "", "messages", traffic.messages)
    yield ("messages", status, "", "", "sealed", traffic.sealed)
    for section, counts in (
        ("messages_by_type", traffic.by_type),
        ("messages_by_sender", traffic.by_sender),
        ("messages_by_recipient", traffic.by_recipient),
        ("deadline_basis", traffic.deadline_basis),
    ):
        for key, count in counts.items():
            yield (section, status, key, "", "count", count)
    yield from _figures("requests", status, traffic.requests)
    yield from _figures("requests_by_pair", status, traffic.requests_by_pair)
    yield from _figures("response_times", status, traffic.response_times)
    yield from _figures("response_times_by_pair", status, traffic.response_times_by_pair)
    yield from _figures("alerts", status, traffic.alerts)


def _figures(section: str, status: str, keyed: Mapping[str, Outcomes | Times | AlertFigures]) -> Iterator[Row]:
    for key, figures in keyed.items():
        for field in fields(figures):
            yield (section, status, key, "", field.name, getattr(figures, field.name))


def _guarded(cell: Any) -> str | int | float:
    """A text cell as a spreadsheet will not run it (after a quote if it starts, past any quotes, like a formula);
    numbers as they are."""
    if isinstance(cell, int | float):
        return cell
    text = str(cell)
    return "'" + text if text.lstrip("'").startswith(FORMULA_START) else text
