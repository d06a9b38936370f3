"""An audit report as an SVG chart: messages per sender country, and requests in time, late and overdue per type.

Hand-written SVG 1.1, self-contained (no script, no stylesheet, no font or image fetched): every bar has a
``<title>`` that a browser shows as its tooltip, every text is escaped, so that the document is well-formed
whatever a key holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from broker.audit.report_model import Report, Traffic
from broker.models.answers import short_name

__all__ = ["render_svg"]

WIDTH = 760
_LEFT = 230  # room for the row labels
_RIGHT = 40
#: Bar thickness alone, and in a group of bars per row.
_BAR = 18
_GROUPED_BAR = 10
_BAR_GAP = 2
#: The request outcomes drawn, with their colours (colour-blind-safe: Okabe-Ito).
_OUTCOMES = (("in_time", "in time", "#009E73"), ("late", "late", "#E69F00"), ("overdue", "overdue", "#D55E00"))
_MESSAGES_COLOUR = "#0072B2"


@dataclass(frozen=True)
class _Series:
    name: str
    colour: str
    unit: str


@dataclass(frozen=True)
class _Panel:
    title: str
    axis: str
    series: tuple[_Series, ...]
    #: Each row: its label, and one value per series.
    rows: tuple[tuple[str, tuple[int, ...]], ...]


def render_svg(report: Report, status: str = "Actual") -> str:
    """The chart of the traffic of ``status`` (panels say so when it has none)."""
    traffic = report.traffic.get(status)
    panels = (_messages(traffic), _requests(traffic))
    title = f"op7 audit: {status} traffic, {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
    parts: list[str] = []
    top = 50
    for panel in panels:
        drawn, height = _draw(panel, top)
        parts += drawn
        top += height + 30
    return "\n".join(
        (
            "<?xml version='1.0' encoding='UTF-8'?>",
            f"<svg xmlns='http://www.w3.org/2000/svg' version='1.1' width='{WIDTH}' height='{top}' "
            f"viewBox='0 0 {WIDTH} {top}' role='img'>",
            f"<title>{escape(title)}</title>",
            f"<rect x='0' y='0' width='{WIDTH}' height='{top}' fill='white'/>",
            _text(WIDTH / 2, 24, title, size=16, anchor="middle", bold=True),
            *parts,
            "</svg>",
            "",
        )
    )


def _messages(traffic: Traffic | None) -> _Panel:
    counts = traffic.by_country if traffic else {}
    return _Panel(
        "Messages signed, per sender country",
        "messages",
        (_Series("messages", _MESSAGES_COLOUR, "messages"),),
        tuple((country, (count,)) for country, count in counts.items()),
    )


def _requests(traffic: Traffic | None) -> _Panel:
    requests = traffic.requests if traffic else {}
    return _Panel(
        "Requests per type: answered in time, late, overdue",
        "requests",
        tuple(_Series(label, colour, "requests") for _, label, colour in _OUTCOMES),
        tuple(
            (short_name(kind), tuple(getattr(outcomes, name) for name, _, _ in _OUTCOMES))
            for kind, outcomes in requests.items()
        ),
    )


def _draw(panel: _Panel, top: int) -> tuple[list[str], int]:
    """The panel's elements from ``top`` down, and the height they take."""
    parts = [_text(10, top, panel.title, size=14, bold=True)]
    if len(panel.series) > 1:
        parts += _legend(panel.series, top)
    if not panel.rows:
        parts.append(_text(_LEFT, top + 30, "none in this period", fill="#555"))
        return parts, 40
    plot_top = top + 14
    bar = _BAR if len(panel.series) == 1 else _GROUPED_BAR
    row = len(panel.series) * (bar + _BAR_GAP) + 6
    largest = max(max(values) for _, values in panel.rows)
    step = _tick_step(largest)
    ticks = largest // step + 1
    scale = (WIDTH - _LEFT - _RIGHT) / (ticks * step)
    bottom = plot_top + row * len(panel.rows)
    for index, (label, values) in enumerate(panel.rows):
        y = plot_top + index * row
        parts.append(_text(_LEFT - 8, y + row // 2 + 4, label, anchor="end"))
        for position, (series, value) in enumerate(zip(panel.series, values, strict=True)):
            unit = series.unit if value != 1 else series.unit.removesuffix("s")
            tooltip = f"{label}: {value} {unit}" + ("" if len(panel.series) == 1 else f" {series.name}")
            parts.append(
                f"<rect x='{_LEFT}' y='{y + 3 + position * (bar + _BAR_GAP)}' width='{value * scale:.1f}' "
                f"height='{bar}' fill='{series.colour}'><title>{escape(tooltip)}</title></rect>"
            )
    parts += _axis(panel.axis, plot_top, bottom, step, ticks, scale)
    return parts, bottom - top + 40


def _axis(label: str, top: int, bottom: int, step: int, ticks: int, scale: float) -> list[str]:
    parts = [f"<line x1='{_LEFT}' y1='{top}' x2='{_LEFT}' y2='{bottom}' stroke='#333'/>"]
    parts.append(f"<line x1='{_LEFT}' y1='{bottom}' x2='{WIDTH - _RIGHT}' y2='{bottom}' stroke='#333'/>")
    for tick in range(ticks + 1):
        x = _LEFT + tick * step * scale
        parts.append(f"<line x1='{x:.1f}' y1='{bottom}' x2='{x:.1f}' y2='{bottom + 4}' stroke='#333'/>")
        parts.append(_text(x, bottom + 16, str(tick * step), anchor="middle"))
    middle = _LEFT + (WIDTH - _LEFT - _RIGHT) // 2
    parts.append(_text(middle, bottom + 32, label, anchor="middle"))
    return parts


def _legend(series: Sequence[_Series], top: int) -> list[str]:
    parts = []
    x = WIDTH - _RIGHT - 90 * len(series)
    for item in series:
        parts.append(f"<rect x='{x}' y='{top - 10}' width='10' height='10' fill={quoteattr(item.colour)}/>")
        parts.append(_text(x + 14, top, item.name))
        x += 90
    return parts


def _text(
    x: float, y: float, content: str, *, size: int = 12, anchor: str = "start", bold: bool = False, fill: str = "#000"
) -> str:
    weight = " font-weight='bold'" if bold else ""
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' font-family='sans-serif' font-size='{size}' "
        f"fill='{fill}'{weight}>{escape(content)}</text>"
    )


def _tick_step(largest: int) -> int:
    """A round step (1, 2, 5 times a power of ten) giving at most 5 ticks up to ``largest``."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if largest <= 5 * factor * magnitude:
                return factor * magnitude
        magnitude *= 10
