"""The geometry of the trend charts: coordinates, ticks and colours, no markup.

The templates draw these as inline SVG (every label goes through Jinja2's escaping), so a
chart needs no script and nothing from the internet. Coordinates are floats rounded to
0.1 px; the money in labels is formatted from the Decimal values, never from floats.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

FINE_COLOR, BONUS_COLOR = "#D55E00", "#009E73"
# Colour-blind-safe palette (Okabe–Ito), then greys.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C6D1F", "#000000",
           "#7F7F7F", "#B07AA1", "#4E79A7", "#59A14F")


@attrs.frozen
class Point:
    x: float
    y: float
    label: str  # "2024-05 · 120.00元"
    index: int = 0  # the month's position: a gap between two points breaks the line


@attrs.frozen
class Line:
    name: str
    color: str
    points: tuple[Point, ...]

    @property
    def runs(self) -> tuple[str, ...]:
        """SVG polyline points, one run per stretch of consecutive months: a month without
        the series (an agent who left and came back) breaks the line instead of bridging it."""
        runs: list[list[Point]] = []
        for p in self.points:
            if runs and runs[-1][-1].index == p.index - 1:
                runs[-1].append(p)
            else:
                runs.append([p])
        return tuple(" ".join(f"{p.x},{p.y}" for p in run) for run in runs if len(run) > 1)


@attrs.frozen
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    label: str


@attrs.frozen
class Chart:
    width: int
    height: int
    left: int
    top: int
    right: int  # x of the plot's right edge
    bottom: int  # y of the plot's bottom edge
    x_labels: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]
    lines: tuple[Line, ...] = ()
    bars: tuple[Bar, ...] = ()
    legend: tuple[tuple[str, str], ...] = ()  # (name, colour)
    zero: float = 0.0  # y of the value 0 (the x axis)


def nice_max(value: Decimal) -> tuple[Decimal, Decimal]:
    """(top of the axis, tick step) for values up to `value`: 1, 2 or 5 × 10^n, four steps."""
    value = max(Decimal(value), Decimal(1))
    raw = value / 4
    magnitude = Decimal(10) ** (len(str(int(raw))) - 1) if raw >= 1 else Decimal(1)
    for m in (1, 2, 5, 10):
        step = magnitude * m
        if step * 4 >= value:
            return step * 4, step
    return magnitude * 40, magnitude * 10  # pragma: no cover - the loop always returns


def _frame(labels, values, width: int, height: int):
    """Plot box, x of each month, y of a value and the ticks. The axis always shows 0 and
    reaches below it when a value is negative (a month of 上月更正 refunds)."""
    left, top, right, bottom = 64, 16, width - 16, height - 36
    hi = max([Decimal(v) for v in values] + [Decimal(0)])
    lo = min([Decimal(v) for v in values] + [Decimal(0)])
    span, step = nice_max(hi - lo)
    axis_lo = -((-lo / step).to_integral_value(rounding="ROUND_CEILING") * step) if lo < 0 else Decimal(0)
    axis_hi = axis_lo + span if axis_lo + span >= hi else axis_lo + span + step
    n = max(len(labels), 1)
    slot = (right - left) / n
    xs = [round(left + slot * (i + 0.5), 1) for i in range(n)]

    def y_of(v: Decimal) -> float:
        return round(bottom - float((Decimal(v) - axis_lo) / (axis_hi - axis_lo)) * (bottom - top), 1)

    ticks = []
    v = axis_lo
    while v <= axis_hi:
        ticks.append((y_of(v), f"{v:,.0f}"))
        v += step
    return left, top, right, bottom, xs, slot, y_of, tuple(ticks), y_of(Decimal(0))


def line_chart(labels, series: dict[str, list], *, width: int = 1180, height: int = 300, unit: str = "元") -> Chart:
    """One line per series over the months in `labels` (values Decimal or None)."""
    values = [v for vs in series.values() for v in vs if v is not None]
    left, top, right, bottom, xs, _slot, y_of, ticks, zero = _frame(labels, values, width, height)
    lines, legend = [], []
    for i, (name, vs) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        points = tuple(Point(xs[j], y_of(v), f"{name} · {labels[j]} · {_amount(v, unit)}", j)
                       for j, v in enumerate(vs) if v is not None)
        lines.append(Line(name, color, points))
        legend.append((name, color))
    return Chart(width, height, left, top, right, bottom, tuple(zip(xs, labels)), ticks, tuple(lines),
                 legend=tuple(legend), zero=zero)


def bar_chart(labels, groups: dict[str, list], *, width: int = 1180, height: int = 280, unit: str = "元",
              colors: tuple[str, ...] = PALETTE) -> Chart:
    """Grouped bars: for each month, one bar per group (e.g. 罚款 and 奖励)."""
    values = [v for vs in groups.values() for v in vs if v is not None]
    left, top, right, bottom, xs, slot, y_of, ticks, zero = _frame(labels, values, width, height)
    n = max(len(groups), 1)
    bar_w = round(min(slot * 0.8 / n, 48), 1)
    bars, legend = [], []
    for i, (name, vs) in enumerate(groups.items()):
        color = colors[i % len(colors)]
        legend.append((name, color))
        for j, v in enumerate(vs):
            if v is None:
                continue
            x = round(xs[j] - bar_w * n / 2 + bar_w * i, 1)
            y = y_of(v)
            bars.append(Bar(x, min(y, zero), bar_w, round(abs(zero - y), 1), color,
                            f"{name} · {labels[j]} · {_amount(v, unit)}"))
    return Chart(width, height, left, top, right, bottom, tuple(zip(xs, labels)), ticks, bars=tuple(bars),
                 legend=tuple(legend), zero=zero)


@attrs.frozen
class Spark:
    width: int
    height: int
    points: str
    last: Point | None


def sparkline(values: list, *, width: int = 120, height: int = 28) -> Spark:
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if not known:
        return Spark(width, height, "", None)
    hi = max(Decimal(v) for _, v in known)
    lo = min(Decimal(v) for _, v in known)
    span = max(hi - lo, Decimal(1))
    n = max(len(values) - 1, 1)
    pts = [Point(round(2 + (width - 4) * i / n, 1), round(height - 3 - float((Decimal(v) - lo) / span) * (height - 6), 1),
                 "") for i, v in known]
    return Spark(width, height, " ".join(f"{p.x},{p.y}" for p in pts), pts[-1])


def _amount(v, unit: str) -> str:
    return f"{Decimal(v):,.2f}{unit}" if unit == "元" else f"{v}{unit}"
