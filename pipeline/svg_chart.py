"""Small inline SVG charts for `report.html`: histograms of groups on shared bins with marked
thresholds, and grouped or stacked bars.

Why not matplotlib here: importing it and rasterizing the report's figures (one per score column,
~15 on a heuristics run) cost ~3 CPU-seconds after every `curate run`, most of the time outside the
stages of a 20,000-document job. The same numbers drawn as SVG take milliseconds, stay text (the
page still opens offline and has no script), and scale. The notebook API (`RunView.plot_*`) keeps
returning matplotlib figures.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

WIDTH, HEIGHT = 700, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 48
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
GROUP_COLORS = {"kept": PALETTE[0], "removed": PALETTE[1]}


def _esc(value: object) -> str:
    return html.escape(str(value))


def _fmt(value: float) -> str:
    """A tick or value label: whole numbers with thousands separators, others with 4 significant digits."""
    if float(value).is_integer() and abs(value) < 1e12:
        return f"{int(value):,}"
    return f"{value:.4g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 12) for k in range(first, int(math.floor(hi / step + 1e-9)) + 1)]


class _Frame:
    """The plot area: data ranges mapped onto pixels, axes, ticks, labels and a legend."""

    def __init__(self, x_range: tuple[float, float], y_max: float, bottom: int = BOTTOM):
        self.x0, self.x1 = x_range
        if self.x1 <= self.x0:
            self.x0, self.x1 = self.x0 - 0.5, self.x0 + 0.5
        self.y_max = y_max if y_max > 0 else 1.0
        self.bottom = bottom
        self.parts: list[str] = []

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return HEIGHT - self.bottom - y / self.y_max * (HEIGHT - self.bottom - TOP)

    def axes(self, title: str, xlabel: str, ylabel: str, x_ticks: bool = True) -> None:
        base, top = HEIGHT - self.bottom, TOP
        self.parts.append(f'<rect x="{LEFT}" y="{top}" width="{WIDTH - LEFT - RIGHT}" height="{base - top}" '
                          'fill="none" stroke="#888"/>')
        for y in nice_ticks(0.0, self.y_max):
            py = self.py(y)
            self.parts.append(f'<line x1="{LEFT - 4}" y1="{py:.1f}" x2="{LEFT}" y2="{py:.1f}" stroke="#888"/>'
                              f'<text x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">{_fmt(y)}</text>')
        if x_ticks:
            for x in nice_ticks(self.x0, self.x1, 8):
                px = self.px(x)
                self.parts.append(f'<line x1="{px:.1f}" y1="{base}" x2="{px:.1f}" y2="{base + 4}" stroke="#888"/>'
                                  f'<text x="{px:.1f}" y="{base + 16}" text-anchor="middle">{_fmt(x)}</text>')
        self.parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{TOP - 10}" text-anchor="middle" '
                          f'font-weight="bold">{_esc(title)}</text>'
                          f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
                          f'{_esc(xlabel)}</text>'
                          f'<text transform="translate(14 {(TOP + base) / 2}) rotate(-90)" text-anchor="middle">'
                          f'{_esc(ylabel)}</text>')

    def legend(self, entries: Sequence[tuple[str, str, bool]]) -> None:
        """(label, color, dashed line instead of a box) per entry, top right."""
        x, y = WIDTH - RIGHT - 8, TOP + 14
        for label, color, dashed in entries:
            mark = (f'<line x1="{x - 24}" y1="{y - 4}" x2="{x - 12}" y2="{y - 4}" stroke="{color}" '
                    'stroke-dasharray="4 3"/>' if dashed else
                    f'<rect x="{x - 22}" y="{y - 9}" width="10" height="10" fill="{color}" fill-opacity="0.7"/>')
            self.parts.append(f'{mark}<text x="{x - 28}" y="{y}" text-anchor="end">{_esc(label)}</text>')
            y += 14

    def svg(self, title: str) -> str:
        # inline in HTML: no xmlns needed (the page links nowhere)
        return (f'<svg width="{WIDTH}" height="{HEIGHT}" '
                f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="sans-serif" font-size="11">'
                f'<title>{_esc(title)}</title>{"".join(self.parts)}</svg>')


def histogram(edges: Sequence[float], groups: Sequence[tuple[str, Sequence[float]]],
              marks: Sequence[tuple[str, float]], title: str, xlabel: str, ylabel: str = "documents") -> str:
    """Groups' counts on shared bins (`edges`, one more than each group's counts), drawn as
    translucent filled steps, and a dashed vertical line per mark (e.g. a threshold)."""
    lo, hi = float(edges[0]), float(edges[-1])
    for _, x in marks:
        lo, hi = min(lo, x), max(hi, x)
    y_max = max((float(c) for _, counts in groups for c in counts), default=0.0)
    frame = _Frame((lo, hi), y_max * 1.05)
    entries = []
    for k, (label, counts) in enumerate(groups):
        color = GROUP_COLORS.get(label, PALETTE[k % len(PALETTE)])
        points = [f"{frame.px(lo if not len(counts) else float(edges[0])):.1f},{frame.py(0):.1f}"]
        for i, c in enumerate(counts):
            y = frame.py(float(c))
            points += [f"{frame.px(float(edges[i])):.1f},{y:.1f}", f"{frame.px(float(edges[i + 1])):.1f},{y:.1f}"]
        points.append(f"{frame.px(float(edges[len(counts)])):.1f},{frame.py(0):.1f}")
        frame.parts.append(f'<polygon points="{" ".join(points)}" fill="{color}" fill-opacity="0.6" '
                           f'stroke="{color}"><title>{_esc(label)}</title></polygon>')
        entries.append((label, color, False))
    for label, x in marks:
        px = frame.px(x)
        frame.parts.append(f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{HEIGHT - BOTTOM}" stroke="red" '
                           f'stroke-dasharray="4 3"><title>{_esc(label)}</title></line>')
        entries.append((label, "red", True))
    frame.axes(title, xlabel, ylabel)
    frame.legend(entries)
    return frame.svg(title)


def bars(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], title: str, xlabel: str,
         ylabel: str, stacked: bool = False) -> str:
    """One bar per category and series: side by side, or stacked (the series in order, bottom up)."""
    n = len(categories)
    totals = [sum(float(v[i] or 0) for _, v in series) for i in range(n)] if stacked else \
        [max((float(v[i] or 0) for _, v in series), default=0.0) for i in range(n)]
    frame = _Frame((-0.5, n - 0.5), max(totals, default=0.0) * 1.05, bottom=BOTTOM + 22)
    slot = (WIDTH - LEFT - RIGHT) / max(n, 1) * 0.8
    width = slot if stacked else slot / max(len(series), 1)
    base = [0.0] * n
    entries = []
    for k, (label, values) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        for i in range(n):
            v = float(values[i] or 0)
            left = frame.px(i) - slot / 2 + (0 if stacked else k * width)
            top, bottom = frame.py(base[i] + v), frame.py(base[i])
            frame.parts.append(f'<rect x="{left:.1f}" y="{top:.1f}" width="{width:.1f}" '
                               f'height="{max(bottom - top, 0):.1f}" fill="{color}" fill-opacity="0.85">'
                               f'<title>{_esc(categories[i])} {_esc(label)}: {_fmt(v)}</title></rect>')
            if stacked:
                base[i] += v
        entries.append((label, color, False))
    axis = HEIGHT - frame.bottom
    for i, name in enumerate(categories):
        frame.parts.append(f'<text transform="translate({frame.px(i):.1f} {axis + 12}) rotate(30)">'
                           f"{_esc(name)}</text>")
    frame.axes(title, xlabel, ylabel, x_ticks=False)
    frame.legend(entries)
    return frame.svg(title)
