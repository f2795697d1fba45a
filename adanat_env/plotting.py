"""Line plots as PNG with Pillow only (matplotlib is not a dependency of this project).

:func:`line_panels` draws side-by-side panels, each with one or more series and optional horizontal reference
lines; enough for training curves (reward, discriminator accuracy, FID over iterations).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["Series", "Panel", "line_panels"]

_COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75)]


@dataclass
class Series:
    """:param label: legend text. :param x: x values. :param y: y values (NaN points are skipped)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]


@dataclass
class Panel:
    """:param title: panel title. :param series: lines. :param hlines: label -> y of dashed reference lines.
    :param xlabel: x-axis label. :param ylim: fixed (low, high) or ``None`` for automatic."""

    title: str
    series: list[Series]
    hlines: dict[str, float] = field(default_factory=dict)
    xlabel: str = "iteration"
    ylim: tuple[float, float] | None = None


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:.3g}"


def line_panels(panels: Sequence[Panel], path: str | os.PathLike[str], panel_size: tuple[int, int] = (420, 300),
                columns: int | None = None) -> Path:
    """Draw ``panels`` in a grid (``columns`` per row; default: one row) and save a PNG; returns the path."""
    pw, ph = panel_size
    cols = len(panels) if columns is None else max(1, min(columns, len(panels)))
    rows = -(-len(panels) // cols)
    img = Image.new("RGB", (pw * cols, ph * rows), "white")
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 52, 12, 26, 40
    for k, panel in enumerate(panels):
        ox, oy = (k % cols) * pw, (k // cols) * ph
        x0, x1, y0, y1 = ox + left, ox + pw - right, oy + top, oy + ph - bottom
        pts = [(x, y) for s in panel.series for x, y in zip(s.x, s.y) if y == y]
        ys = [y for _, y in pts] + list(panel.hlines.values())
        xs = [x for x, _ in pts] or [0.0, 1.0]
        xlo, xhi = min(xs), max(xs)
        if xhi == xlo:
            xhi = xlo + 1
        if panel.ylim is not None:
            ylo, yhi = panel.ylim
        else:
            ylo, yhi = (min(ys), max(ys)) if ys else (0.0, 1.0)
            pad = 0.08 * (yhi - ylo) or 1.0
            ylo, yhi = ylo - pad, yhi + pad

        def tx(x: float) -> float:
            return x0 + (x - xlo) / (xhi - xlo) * (x1 - x0)

        def ty(y: float) -> float:
            return y1 - (y - ylo) / (yhi - ylo) * (y1 - y0)

        draw.rectangle([x0, y0, x1, y1], outline=(80, 80, 80))
        draw.text((x0, oy + 6), panel.title, fill="black")
        draw.text(((x0 + x1) // 2 - 20, oy + ph - 16), panel.xlabel, fill=(60, 60, 60))
        for t in _ticks(ylo, yhi):
            draw.line([x0 - 4, ty(t), x0, ty(t)], fill=(80, 80, 80))
            draw.text((ox + 4, ty(t) - 6), _fmt(t), fill=(60, 60, 60))
        for t in _ticks(xlo, xhi):
            draw.line([tx(t), y1, tx(t), y1 + 4], fill=(80, 80, 80))
            draw.text((tx(t) - 6, y1 + 6), _fmt(t), fill=(60, 60, 60))
        legend_y = y0 + 4
        for j, (name, v) in enumerate(panel.hlines.items()):
            color = _COLORS[(len(panel.series) + j) % len(_COLORS)]
            x = x0
            while x < x1:  # dashed
                draw.line([x, ty(v), min(x + 6, x1), ty(v)], fill=color, width=1)
                x += 10
            draw.text((x1 - 110, legend_y), f"-- {name} {_fmt(v)}", fill=color)
            legend_y += 12
        for j, s in enumerate(panel.series):
            color = _COLORS[j % len(_COLORS)]
            line = [(tx(x), ty(y)) for x, y in zip(s.x, s.y) if y == y]
            if len(line) > 1:
                draw.line(line, fill=color, width=2)
            for px, py in line:
                draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=color)
            draw.text((x1 - 110, legend_y), f"- {s.label}", fill=color)
            legend_y += 12
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
