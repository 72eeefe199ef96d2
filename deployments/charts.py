"""Line charts as inline SVG, drawn on the server: nothing to download, no JavaScript, works offline.

A chart is a few series over a shared, evenly spaced x axis (days, or budget decisions in order),
with a y axis from zero, a legend, and one `<path class="line">` per series that has points. Every
platform keeps its colour on every chart. All text is escaped here, so callers can pass user input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

PLATFORM_COLORS: dict[str, str] = {
    "youtube": "#d62728",
    "tiktok": "#0e9aa7",
    "instagram": "#b5338a",
    "x": "#3b3b3b",
}
_OTHER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")

Mark = Literal["dot", "ring", "none"]


def color_for(name: str, index: int = 0) -> str:
    """The series colour: the platform's own, else a fixed palette by position."""
    return PLATFORM_COLORS.get(name, _OTHER_COLORS[index % len(_OTHER_COLORS)])


@dataclass(frozen=True)
class Point:
    x: int  # position on the x axis: an index into the chart's x labels
    y: float
    mark: Mark = "dot"
    note: str = ""  # tooltip


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]  # joined by the line, in x order
    extra: Sequence[Point] = ()  # marked but not joined (e.g. budget proposals that were not applied)
    color: str = ""


@dataclass(frozen=True)
class Frame:
    width: int
    height: int
    left: int = 64
    right: int = 32  # room for the last x label, centred on the plot's edge
    top: int = 34
    bottom: int = 34

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 .. a round number >= top, in count-1 (or so) round steps."""
    if not math.isfinite(top) or top <= 0:
        top = 1.0
    raw = top / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    steps = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(steps + 1)]


def compact_number(value: float) -> str:
    """1234 -> 1.2k, 2500000 -> 2.5M, 12.5 -> 12.5, 3.0 -> 3."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.1f}".removesuffix(".0") + "M"
    if size >= 1e3:
        return f"{value / 1e3:.1f}".removesuffix(".0") + "k"
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def line_chart(series: Sequence[Series], x_labels: Sequence[str], *, title: str,
               y_format: Callable[[float], str] = compact_number, legend_notes: Sequence[tuple[Mark, str]] = (),
               width: int = 720, height: int = 280, empty_text: str = "no data yet") -> str:
    """One SVG line chart; a chart without any point says `empty_text` instead."""
    frame = Frame(width, height)
    drawn = [s for s in series if s.points or s.extra]
    if not drawn or not x_labels:
        return _empty(frame, title, empty_text)
    values = [p.y for s in drawn for p in (*s.points, *s.extra) if math.isfinite(p.y)]
    ticks = nice_ticks(max(values, default=0.0))
    y_top = ticks[-1]

    def px(i: int) -> float:
        if len(x_labels) == 1:
            return frame.left + frame.plot_w / 2
        return frame.left + frame.plot_w * i / (len(x_labels) - 1)

    def py(v: float) -> float:
        v = v if math.isfinite(v) else 0.0
        return frame.top + frame.plot_h * (1 - max(0.0, min(v, y_top)) / y_top)

    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    parts += _axes(frame, ticks, py, x_labels, px, y_format)
    parts += _legend(frame, drawn, legend_notes)
    for index, s in enumerate(drawn):
        color = escape(s.color or color_for(s.name, index))
        parts.append(f'<g class="series" data-series="{escape(s.name)}" stroke="{color}" fill="{color}">')
        if s.points:
            d = " ".join(f"{'M' if k == 0 else 'L'}{px(p.x):.1f},{py(p.y):.1f}" for k, p in enumerate(s.points))
            parts.append(f'<path class="line" d="{d}" fill="none" stroke-width="2.5" '
                         'stroke-linejoin="round" stroke-linecap="round"/>')
        for p in (*s.points, *s.extra):
            parts.append(_marker(p, px(p.x), py(p.y), s.name, y_format))
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _axes(frame: Frame, ticks: list[float], py: Callable[[float], float], x_labels: Sequence[str],
          px: Callable[[int], float], y_format: Callable[[float], str]) -> list[str]:
    out = ['<g class="axes" font-size="11" fill="#555">']
    x0, x1 = frame.left, frame.left + frame.plot_w
    for tick in ticks:
        y = py(tick)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(y_format(tick))}</text>')
    base = frame.top + frame.plot_h
    out.append(f'<line x1="{x0}" y1="{base}" x2="{x1}" y2="{base}" stroke="#999"/>')
    out.append(f'<line x1="{x0}" y1="{frame.top}" x2="{x0}" y2="{base}" stroke="#999"/>')
    room = max(1, frame.plot_w // 80)  # labels that fit side by side
    step = max(1, math.ceil(len(x_labels) / room))
    for i, label in enumerate(x_labels):
        if i % step == 0:
            out.append(f'<text x="{px(i):.1f}" y="{base + 18}" text-anchor="middle">{escape(label)}</text>')
    out.append("</g>")
    return out


def _legend(frame: Frame, drawn: Sequence[Series], notes: Sequence[tuple[Mark, str]]) -> list[str]:
    out = ['<g class="legend" font-size="12" fill="#222">']
    x = float(frame.left)
    for index, s in enumerate(drawn):
        color = escape(s.color or color_for(s.name, index))
        out.append(f'<line x1="{x:.0f}" y1="14" x2="{x + 18:.0f}" y2="14" stroke="{color}" stroke-width="3"/>')
        out.append(f'<text x="{x + 23:.0f}" y="18">{escape(s.name)}</text>')
        x += 34 + 7.5 * len(s.name)
    for mark, text in notes:
        x += 6
        out.append(_shape(mark, x + 5, 14, "#555"))
        out.append(f'<text x="{x + 14:.0f}" y="18" fill="#555">{escape(text)}</text>')
        x += 24 + 6.5 * len(text)
    out.append("</g>")
    return out


def _shape(mark: Mark, x: float, y: float, color: str = "") -> str:
    paint = f' stroke="{color}" fill="{color}"' if color else ""
    if mark == "ring":
        return f'<circle class="ring" cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="#fff" stroke-width="2"' + (
            f' stroke="{color}"/>' if color else "/>")
    return f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3.5"{paint}/>'


def _marker(p: Point, x: float, y: float, name: str, y_format: Callable[[float], str]) -> str:
    if p.mark == "none":
        return ""
    note = escape(p.note or f"{name}: {y_format(p.y)}")
    return _shape(p.mark, x, y).removesuffix("/>") + f"><title>{note}</title></circle>"


def _empty(frame: Frame, title: str, text: str) -> str:
    return (f'<svg class="chart empty" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} 90" '
            f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<rect x="1" y="1" width="{frame.width - 2}" height="88" rx="6" fill="#fafafa" stroke="#e3e3e3"/>'
            f'<text x="{frame.width / 2:.0f}" y="50" text-anchor="middle" font-size="14" fill="#777">'
            f"{escape(text)}</text></svg>")
