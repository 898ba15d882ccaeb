"""Charts as inline SVG, for pages that must hold everything they show (the run report, `report.py`).

A `Plot` is one x/y chart: linear scales, a grid with round ticks, axis titles, a legend that wraps, and the
marks drawn into it (lines, dots, bars, a vertical rule). No script and no font of its own: the page's styles
set the font, so Chinese labels print in the page's CJK font, and a PDF printer draws the chart as vectors.
"""

from __future__ import annotations

import html
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#dc2626", "#7c3aed", "#0891b2", "#ca8a04", "#db2777", "#4b5563")
GREY, GREEN, DARK = "#9ca3af", "#16a34a", "#4b5563"


def colour(index: int) -> str:
    """The palette's colour for the index-th series (it repeats after nine)."""
    return PALETTE[index % len(PALETTE)]


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _text_width(text: str, size: float) -> float:
    """About how wide text is drawn at a font size (wide CJK characters count about twice a Latin letter)."""
    return sum(size * (1.0 if unicodedata.east_asian_width(c) in "WF" else 0.58) for c in text)


# -- scales ---------------------------------------------------------------------------------------------------------
def _step(low: float, high: float, count: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about `count` ticks over the range."""
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))


def nice(values: Sequence[float | None], *, zero: bool = False) -> tuple[float, float]:
    """A range that holds the values, widened to round ticks (and to zero when asked)."""
    finite = [v for v in values if v is not None and math.isfinite(v)] or [0.0]
    low, high = min(finite), max(finite)
    if zero:
        low, high = min(low, 0.0), max(high, 0.0)
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = _step(low, high)
    return math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step


def ticks(low: float, high: float) -> list[tuple[float, str]]:
    """Round values from low to high, each with its label.

    Labels are thousands separated, or in k or M on an axis that reaches ten thousand or a million: every label
    of an axis in the same unit.
    """
    step = _step(low, high)
    first = math.ceil(low / step - 1e-9) * step
    values = [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]
    largest = max(abs(v) for v in values)
    unit, suffix = (1e6, "M") if largest >= 1e6 else (1e3, "k") if largest >= 1e4 else (1.0, "")
    scaled = step / unit
    decimals = next((d for d in range(7) if abs(round(scaled, d) - scaled) < scaled * 1e-6), 6)

    def label(value: float) -> str:
        text = f"{value / unit:,.{decimals}f}"
        if not suffix:
            return text
        if value == 0:
            return "0"
        return (text.rstrip("0").rstrip(".") if "." in text else text) + suffix

    return [(v, label(v)) for v in values]


# -- the chart ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    """One entry of a chart's legend."""

    name: str
    colour: str
    style: str = "line"  # "line", "dash", "dot" or "bar"


class Plot:
    """One x/y chart as inline SVG: draw its marks, then take `svg()`."""

    WIDTH, HEIGHT = 420, 290
    LEFT, RIGHT, BOTTOM = 58, 14, 44
    FONT = 11
    LEGEND_ROW = 16

    def __init__(
        self,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        *,
        x_title: str,
        y_title: str,
        legend: Sequence[Key] = (),
        categories: Sequence[str] | None = None,
    ) -> None:
        """A chart over the ranges; `categories` labels x = 0, 1, 2… instead of numeric ticks."""
        self.x_range, self.y_range = x_range, y_range
        self.x_title, self.y_title = x_title, y_title
        self.categories = categories
        self.legend = self._legend_rows(legend)
        self.top = 16 + self.LEGEND_ROW * len(self.legend)  # the legend sits above the plot, never on the data
        self.marks: list[str] = []

    def _legend_rows(self, legend: Sequence[Key]) -> list[list[tuple[float, Key]]]:
        """The legend's entries from left to right, wrapping to a new row where the chart ends."""
        rows: list[list[tuple[float, Key]]] = []
        x = float(self.WIDTH)  # no row yet: the first entry starts one
        for key in legend:
            width = 26 + _text_width(key.name, self.FONT - 1)
            if x + width > self.WIDTH - self.RIGHT:
                rows.append([])
                x = self.LEFT
            rows[-1].append((x, key))
            x += width + 10
        return rows

    def x(self, value: float) -> float:
        """Where a value lies across the chart."""
        low, high = self.x_range
        return self.LEFT + (value - low) / (high - low) * (self.WIDTH - self.LEFT - self.RIGHT)

    def y(self, value: float) -> float:
        """Where a value lies up the chart."""
        low, high = self.y_range
        return self.HEIGHT - self.BOTTOM - (value - low) / (high - low) * (self.HEIGHT - self.top - self.BOTTOM)

    # -- marks
    def line(self, xs: Sequence[float], ys: Sequence[float], colour: str, *, dash: bool = False) -> None:
        """A line through the points, in order."""
        points = " ".join(f"{self.x(a):.1f},{self.y(b):.1f}" for a, b in zip(xs, ys, strict=True))
        style = ' stroke-dasharray="5 4"' if dash else ""
        self.marks.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8"{style} points="{points}"/>')

    def dots(
        self, xs: Sequence[float], ys: Sequence[float], colour: str, *, radius: Sequence[float] | float = 2.6
    ) -> None:
        """A dot at each point, half see-through; `radius` one size for all or one per dot."""
        sizes = radius if isinstance(radius, Sequence) else [radius] * len(xs)
        for a, b, r in zip(xs, ys, sizes, strict=True):
            self.marks.append(
                f'<circle cx="{self.x(a):.1f}" cy="{self.y(b):.1f}" r="{r:.1f}" fill="{colour}" fill-opacity="0.55"/>'
            )

    def bar(self, left: float, right: float, value: float, colour: str) -> None:
        """A bar from zero (or the nearest edge of the range) to the value, between left and right."""
        base = min(max(0.0, self.y_range[0]), self.y_range[1])
        top, bottom = sorted((self.y(value), self.y(base)))
        self.marks.append(
            f'<rect x="{self.x(left):.1f}" y="{top:.1f}" width="{self.x(right) - self.x(left):.1f}" '
            f'height="{bottom - top:.1f}" fill="{colour}"/>'
        )

    def rule(self, at: float, colour: str) -> None:
        """A dotted vertical line across the chart at x = at."""
        x = self.x(at)
        self.marks.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.top}" y2="{self.HEIGHT - self.BOTTOM}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="2 3"/>'
        )

    # -- the frame
    def _axes(self) -> list[str]:
        left, right, bottom = self.LEFT, self.WIDTH - self.RIGHT, self.HEIGHT - self.BOTTOM
        parts = []
        for value, label in ticks(*self.y_range):
            y = self.y(value)
            parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
            parts.append(f'<text x="{left - 5}" y="{y + 3.5:.1f}" text-anchor="end">{_esc(label)}</text>')
        across = (
            [(float(i), name) for i, name in enumerate(self.categories)]
            if self.categories is not None
            else ticks(*self.x_range)
        )
        for value, label in across:
            x = self.x(value)
            if self.categories is None:
                parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.top}" y2="{bottom}" stroke="#f1f5f9"/>')
            parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{_esc(label)}</text>')
        parts.append(
            f'<rect x="{left}" y="{self.top}" width="{right - left}" height="{bottom - self.top}" '
            'fill="none" stroke="#9ca3af"/>'
        )
        middle = (self.top + bottom) / 2
        parts.append(
            f'<text x="{(left + right) / 2:.1f}" y="{self.HEIGHT - 8}" text-anchor="middle">{_esc(self.x_title)}</text>'
        )
        parts.append(
            f'<text transform="translate(13 {middle:.1f}) rotate(-90)" text-anchor="middle">{_esc(self.y_title)}</text>'
        )
        return parts

    def _legend(self) -> list[str]:
        parts = []
        for row, entries in enumerate(self.legend):
            y = 14 + self.LEGEND_ROW * row
            for x, key in entries:
                if key.style == "bar":
                    parts.append(f'<rect x="{x:.1f}" y="{y - 8}" width="16" height="9" fill="{key.colour}"/>')
                elif key.style == "dot":
                    parts.append(f'<circle cx="{x + 8:.1f}" cy="{y - 3.5}" r="4" fill="{key.colour}"/>')
                else:
                    dash = ' stroke-dasharray="4 3"' if key.style == "dash" else ""
                    parts.append(
                        f'<line x1="{x:.1f}" x2="{x + 18:.1f}" y1="{y - 3.5}" y2="{y - 3.5}" stroke="{key.colour}" '
                        f'stroke-width="2"{dash}/>'
                    )
                parts.append(f'<text x="{x + 23:.1f}" y="{y}">{_esc(key.name)}</text>')
        return parts

    def svg(self, label: str) -> str:
        """The chart as an `<svg>` element, named `label` for screen readers."""
        return "".join(
            [
                f'<svg viewBox="0 0 {self.WIDTH} {self.HEIGHT}" role="img" aria-label="{_esc(label)}" '
                f'font-size="{self.FONT}" fill="#374151">',
                *self._axes(),
                *self.marks,
                *self._legend(),
                "</svg>",
            ]
        )
