"""SVG charts written as plain text: learning curves (lines) and intervals (points with error bars).

Just the two charts the report draws, on a white background with dark text and the Okabe-Ito
colour-blind-safe palette. Not a plotting library: no layout engine and no dependencies. The same
numbers always give the same bytes (coordinates rounded to 0.1 px, no ids, no timestamps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH = 760
INK, MUTED, GRID, BACKGROUND = "#222222", "#777777", "#e4e4e4", "#ffffff"
BASELINE = "#000000"
# Okabe-Ito without black (kept for the baseline) and yellow (too pale on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9")
DASHES = ("", "6 3", "2 3")  # a second and third round through the palette
KIND_COLOURS = {  # interval chart: how a variant's test MSE compares with the baseline's
    "baseline": (BASELINE, "baseline"),
    "better": ("#009E73", "better beyond noise"),
    "within": ("#0072B2", "within noise"),
    "worse": ("#D55E00", "worse beyond noise"),
    "unknown": (MUTED, "no comparison with the baseline"),
}
NOISE_FLOOR = "#CC79A7"
CHAR_WIDTH = 6.6  # rough width of one 12 px sans-serif character, for margins


@dataclass(frozen=True)
class Series:
    """One learning curve: ys[i] is the value after epoch i + 1 (None: missing)."""

    label: str
    ys: tuple
    mark: int | None = None  # 1-based epoch to circle (the best epoch); None: no circle
    baseline: bool = False


@dataclass(frozen=True)
class Interval:
    """One row of the interval chart; mean None for a failed variant (drawn as text only)."""

    label: str
    mean: float | None
    lo: float | None
    hi: float | None
    kind: str  # a KIND_COLOURS key


@dataclass(frozen=True)
class Scale:
    """Maps data values in [lo, hi] onto pixels [a, b], linearly or in log10."""

    lo: float
    hi: float
    a: float
    b: float
    log: bool = False

    def __call__(self, v: float) -> float:
        f = math.log10 if self.log else float
        return self.a + (f(v) - f(self.lo)) / (f(self.hi) - f(self.lo)) * (self.b - self.a)


def line_chart(title: str, series: list[Series], xlabel: str, ylabel: str) -> str:
    """Curves over epochs 1..n; log y when the values span more than a factor of 4."""
    legend = 48 + CHAR_WIDTH * max([len(s.label) + 10 * (not any(v is not None for v in s.ys)) for s in series] + [10])
    box = (78, 48, max(WIDTH - legend, 400), 372)  # left, top, right, bottom of the plot area
    n = max([len(s.ys) for s in series] + [2])
    values = [y for s in series for y in s.ys if y is not None and y > 0]
    lo, hi = (min(values), max(values)) if values else (0.5, 1.0)
    log = hi / lo > 4
    yticks = log_ticks(lo, hi) if log else linear_ticks(lo, hi)
    lo, hi = (lo / 1.05, hi * 1.05) if log else (yticks[0], yticks[-1])  # log ticks lie inside the data
    xs, ys = Scale(1, n, box[0], box[2]), Scale(lo, hi, box[3], box[1], log)
    step = max(1, int(nice_step((n - 1) / 8)))
    body = _axes(box, xs, ys, [t for t in range(step, n + 1, step)], yticks, xlabel, ylabel)
    drawn = [(s, _style(s, i)) for i, s in enumerate(series)]
    for s, (colour, width, dash) in sorted(drawn, key=lambda d: d[0].baseline):  # baseline on top
        body += _curve(s, xs, ys, colour, width, dash)
    body += _legend(box[2] + 18, box[1], drawn)
    return _document(title, 420, body)


def interval_chart(title: str, rows: list[Interval], xlabel: str, lines: list[tuple]) -> str:
    """One row per variant: the mean as a point, the interval as a bar with caps.

    lines: vertical reference lines, (value, label, colour, dash).
    """
    left = 24 + CHAR_WIDTH * max([len(r.label) for r in rows] + [8])
    box = (left, 70, WIDTH - 30, 70 + 26 * len(rows))
    values = [v for r in rows for v in (r.lo, r.mean, r.hi) if v is not None] + [ln[0] for ln in lines]
    ticks = linear_ticks(min(values), max(values)) if values else [0.0, 1.0]
    xs = Scale(ticks[0], ticks[-1], box[0], box[2])
    body = _axes(box, xs, None, ticks, [], xlabel, "")
    for j, (value, label, colour, dash) in enumerate(lines):  # labels stacked so they never collide
        x = xs(value)
        body.append(_line(x, box[1] - 6 - 14 * j, x, box[3], colour, 1.5, dash))
        anchor = "end" if x > WIDTH - 90 else "middle"  # keep a label near the right edge on the canvas
        body.append(_text(x, box[1] - 10 - 14 * j, label, anchor, fill=colour))
    for i, r in enumerate(rows):
        body += _interval_row(r, box[1] + 26 * i + 13, box[0], xs)
    body += _kind_legend(box[0], box[3] + 58, {r.kind for r in rows if r.mean is not None})
    return _document(title, box[3] + 76, body)


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is >= raw."""
    if raw <= 0:
        return 1.0
    e = math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * 10.0**e >= raw * (1 - 1e-9):
            return m * 10.0**e
    return 10.0 ** (e + 1)


def linear_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round-number ticks whose first and last enclose [lo, hi]."""
    if hi <= lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step((hi - lo) / count)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [_round(k * step) for k in range(first, last + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Decades if the range spans enough of them, else 1-2-5, else every integer mantissa."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for mantissas, enough in (((1,), 3), ((1, 2, 5), 3), (tuple(range(1, 10)), 0)):
        ticks = [_round(m * 10.0**e) for e in decades for m in mantissas if lo <= m * 10.0**e <= hi]
        if len(ticks) >= enough:
            return ticks
    return ticks


def tick_label(v: float) -> str:
    return f"{v:.6g}"


def _round(v: float) -> float:
    return float(f"{v:.10g}")  # 0.30000000000000004 -> 0.3


def _style(s: Series, i: int) -> tuple[str, float, str]:
    if s.baseline:
        return BASELINE, 2.6, "7 4"
    return PALETTE[i % len(PALETTE)], 1.8, DASHES[(i // len(PALETTE)) % len(DASHES)]


def _curve(s: Series, xs: Scale, ys: Scale, colour: str, width: float, dash: str) -> list[str]:
    points = [(xs(i + 1), ys(y)) for i, y in enumerate(s.ys) if y is not None and y > 0]
    if not points:
        return []
    out = [
        f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}" fill="none" '
        f'stroke="{colour}" stroke-width="{width}"{_dash(dash)} stroke-linejoin="round"/>'
    ]
    if s.mark is not None and 1 <= s.mark <= len(s.ys) and s.ys[s.mark - 1] is not None:
        out.append(_circle(xs(s.mark), ys(s.ys[s.mark - 1]), 3.5, colour))
    return out


def _legend(x: float, y: float, drawn: list) -> list[str]:
    out = []
    for row, (s, (colour, width, dash)) in enumerate(drawn):
        ty = y + 8 + 19 * row
        if any(v is not None for v in s.ys):
            out.append(_line(x, ty - 4, x + 24, ty - 4, colour, width, dash))
            out.append(_text(x + 30, ty, s.label))
        else:
            out.append(_text(x + 30, ty, f"{s.label} (no curve)", fill=MUTED))
    ty = y + 8 + 19 * len(drawn) + 10
    out.append(_circle(x + 12, ty - 4, 3.5, MUTED))
    out.append(_text(x + 30, ty, "best epoch", fill=MUTED))
    return out


def _interval_row(r: Interval, y: float, left: float, xs: Scale) -> list[str]:
    out = [_text(left - 10, y + 4, r.label, "end", weight="bold" if r.kind == "baseline" else None)]
    if r.mean is None:
        return out + [_text(left + 8, y + 4, "failed: no test MSE", fill=MUTED)]
    colour = KIND_COLOURS[r.kind][0]
    if r.lo is not None and r.hi is not None:
        a, b = xs(r.lo), xs(r.hi)
        out.append(
            f'<path d="M{a:.1f} {y:.1f}H{b:.1f}M{a:.1f} {y - 5:.1f}V{y + 5:.1f}M{b:.1f} {y - 5:.1f}V{y + 5:.1f}" '
            f'stroke="{colour}" stroke-width="1.8" fill="none"/>'
        )
    return out + [_circle(xs(r.mean), y, 4.5, colour)]


def _kind_legend(x: float, y: float, kinds: set[str]) -> list[str]:
    out = []
    for colour, label in (KIND_COLOURS[k] for k in KIND_COLOURS if k in kinds):
        out += [_circle(x + 5, y - 4, 4.5, colour), _text(x + 14, y, label)]
        x += 34 + CHAR_WIDTH * len(label)
    return out


def _axes(box, xs: Scale, ys: Scale | None, xticks, yticks, xlabel: str, ylabel: str) -> list[str]:
    """Grid lines, the two axis lines, ticks with labels, and the axis titles."""
    left, top, right, bottom = box
    out = []
    for t in xticks:
        x = xs(t)
        out += [_line(x, top, x, bottom, GRID, 1), _line(x, bottom, x, bottom + 5, INK, 1)]
        out.append(_text(x, bottom + 19, tick_label(t), "middle"))
    for t in yticks:
        y = ys(t)
        out += [_line(left, y, right, y, GRID, 1), _line(left - 5, y, left, y, INK, 1)]
        out.append(_text(left - 8, y + 4, tick_label(t), "end"))
    out += [_line(left, bottom, right, bottom, INK, 1.2), _line(left, top, left, bottom, INK, 1.2)]
    out.append(_text((left + right) / 2, bottom + 40, xlabel, "middle"))
    if ylabel:
        cy = (top + bottom) / 2
        out.append(f'<text x="18" y="{cy:.1f}" text-anchor="middle" fill="{INK}" '
                   f'transform="rotate(-90 18 {cy:.1f})">{escape(ylabel)}</text>')
    return out


def _document(title: str, height: float, body: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" role="img" font-family="sans-serif" font-size="12">'
    )
    return "\n".join([
        head,
        f"<title>{escape(title)}</title>",
        f'<rect width="100%" height="100%" fill="{BACKGROUND}"/>',
        _text(WIDTH / 2, 24, title, "middle", size=14, weight="bold"),
        *body,
        "</svg>",
    ]) + "\n"


def _line(x1, y1, x2, y2, colour: str, width: float, dash: str = "") -> str:
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
            f'stroke-width="{width}"{_dash(dash)}/>')


def _circle(x, y, r: float, colour: str) -> str:
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}"/>'


def _text(x, y, s: str, anchor: str = "start", fill: str = INK, size: int | None = None,
          weight: str | None = None) -> str:
    extra = (f' font-size="{size}"' if size else "") + (f' font-weight="{weight}"' if weight else "")
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>{escape(s)}</text>'


def _dash(dash: str) -> str:
    return f' stroke-dasharray="{dash}"' if dash else ""
