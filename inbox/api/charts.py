"""Server-rendered SVG charts of a report: bars (grouped or stacked) and lines, with axes and a
legend, drawn from the report's own rows so the page needs no charting library."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 24, 64
PALETTE = (
    "#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
)  # fmt: skip


@dataclass
class Chart:
    """What to draw: categories along x and one list of values per series."""

    kind: str  # bar, stacked or line
    title: str
    categories: list[str]
    series: dict[str, list[float | None]] = field(default_factory=dict)
    unit: str = ""


def nice_ceiling(value: float) -> float:
    """1, 2, 2.5 or 5 times a power of ten, at least the value."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power:
            return step * power
    return 10.0 * power


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}".rstrip("0")


def svg(chart: Chart) -> str:
    """The chart as a standalone SVG document."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    names = list(chart.series)
    n = max(1, len(chart.categories))
    if chart.kind == "stacked":
        peak = max(
            (sum(s[i] or 0 for s in chart.series.values()) for i in range(len(chart.categories))),
            default=0,
        )
    else:
        peak = max((v or 0 for s in chart.series.values() for v in s), default=0)
    top = 4 * nice_ceiling(float(peak) / 4)  # four even steps of a round size

    def y(value: float) -> float:
        return TOP + plot_h - value / top * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(chart.title)}" '
        'font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{escape(chart.title)}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        f'<text x="{LEFT - 6}" y="12" text-anchor="end" fill="#6b7280">{escape(chart.unit)}</text>',
    ]
    for i in range(5):
        value = top * i / 4
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#e5e7eb"/>'
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" fill="#6b7280">'
            f"{escape(fmt(value))}</text>"
        )
    slot = plot_w / n
    every = max(1, math.ceil(n / 12))
    for i, label in enumerate(chart.categories):
        if i % every:
            continue
        x = LEFT + slot * (i + 0.5)
        out.append(
            f'<text x="{x:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle" fill="#374151">'
            f"{escape(label[: max(4, int(slot * every / 6.5))])}</text>"
        )
    if chart.kind == "line":
        for k, name in enumerate(names):
            points = [
                f"{LEFT + slot * (i + 0.5):.1f},{y(v):.1f}"
                for i, v in enumerate(chart.series[name])
                if v is not None
            ]
            color = PALETTE[k % len(PALETTE)]
            out.append(
                f'<polyline class="series" data-series="{escape(name)}" fill="none" '
                f'stroke="{color}" stroke-width="2" points="{" ".join(points)}"/>'
            )
            for point in points:
                cx, cy = point.split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
    else:
        stacked = chart.kind == "stacked"
        width = slot * 0.8 / (1 if stacked else max(1, len(names)))
        for i in range(len(chart.categories)):
            base = 0.0
            for k, name in enumerate(names):
                value = chart.series[name][i] or 0
                if stacked:
                    x, bottom = LEFT + slot * (i + 0.1), base
                    base += value
                else:
                    x, bottom = LEFT + slot * (i + 0.1) + width * k, 0.0
                height = y(bottom) - y(bottom + value)
                out.append(
                    f'<rect class="bar" x="{x:.1f}" y="{y(bottom + value):.1f}" '
                    f'width="{max(width - 1, 1):.1f}" height="{height:.1f}" '
                    f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(name)} '
                    f"{escape(chart.categories[i])}: {escape(fmt(value))}</title></rect>"
                )
    out.append(legend(names))
    out.append("</svg>")
    return "".join(out)


def legend(names: Sequence[str]) -> str:
    parts, x = [], LEFT
    for k, name in enumerate(names):
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 22}" width="10" height="10" '
            f'fill="{PALETTE[k % len(PALETTE)]}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 13}" fill="#111827">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return "".join(parts)
