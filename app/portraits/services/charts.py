"""Small server-side SVG charts (no script, no CDN): readable without colour, with a
``<title>`` per mark so hovering (or a screen reader) gives the number."""

from __future__ import annotations

from markupsafe import Markup, escape

# Colour-blind-safe sequential blues (ColorBrewer "Blues"), light = weak, dark = mastered.
SCALE = ["#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c"]


def colour(p: float | None) -> str:
    if p is None:
        return "#ffffff"
    return SCALE[min(len(SCALE) - 1, int(p * len(SCALE)))]


def text_colour(p: float | None) -> str:
    return "#ffffff" if p is not None and p >= 4 / len(SCALE) else "#111111"


def trend_svg(
    points: list[tuple[str, float]], label: str, width: int = 560, height: int = 180
) -> Markup:
    """A line of the average mastery per day (0..1)."""
    left, right, top, bottom = 36, 10, 10, 28
    inner_w, inner_h = width - left - right, height - top - bottom
    parts = [
        f'<svg class="chart trend" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} '
        f'{height}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    for tick in (0.0, 0.5, 1.0):
        y = top + inner_h * (1 - tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ccc"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" '
            f'text-anchor="end">{tick:.1f}</text>'
        )
    values = [(d, v) for d, v in points if v is not None]
    if values:
        step = inner_w / max(1, len(values) - 1)
        coords = [(left + i * step, top + inner_h * (1 - v)) for i, (_d, v) in enumerate(values)]
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords)
        )
        parts.append(f'<path d="{path}" fill="none" stroke="#08519c" stroke-width="2"/>')
        for (x, y), (day, v) in zip(coords, values, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#08519c">'
                f"<title>{escape(day)}: {v:.2f}</title></circle>"
            )
        parts.append(
            f'<text x="{left}" y="{height - 8}" font-size="11">{escape(values[0][0])}</text>'
            f'<text x="{width - right}" y="{height - 8}" font-size="11" text-anchor="end">'
            f"{escape(values[-1][0])}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every value escaped above)


def bars_svg(
    points: list[tuple[str, float]], label: str, unit: str, width: int = 560, height: int = 120
) -> Markup:
    """Bars per day (e.g. minutes on task)."""
    left, bottom, top = 4, 20, 8
    inner_h = height - top - bottom
    biggest = max((v for _d, v in points), default=0) or 1
    parts = [
        f'<svg class="chart bars" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} '
        f'{height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
    ]
    if points:
        step = (width - 2 * left) / len(points)
        for i, (day, v) in enumerate(points):
            h = inner_h * v / biggest
            parts.append(
                f'<rect x="{left + i * step:.1f}" y="{top + inner_h - h:.1f}" '
                f'width="{max(1, step - 1):.1f}" '
                f'height="{h:.1f}" fill="#3182bd"><title>{escape(day)}: {v:.0f} '
                f"{escape(unit)}</title></rect>"
            )
        parts.append(
            f'<text x="{left}" y="{height - 4}" font-size="11">{escape(points[0][0])}</text>'
            f'<text x="{width - left}" y="{height - 4}" font-size="11" '
            f'text-anchor="end">{escape(points[-1][0])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every value escaped above)
