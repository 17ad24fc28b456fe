"""The timeline picture of `tvlt predict --out`: each label's score over the windows of a long clip, and writing it.

One line per label (window scores at the windows' centres, held flat to the clip's ends), the time axis in
(h:)mm:ss, a legend ranked by the mean over the windows, and for single-label heads a strip that names the best label
of each stretch of time. Drawn with Pillow only (no plotting library needed), twice the size and scaled down, which
smooths lines and text. Written through a temporary file in the same folder and an atomic rename, so a failed run
leaves nothing behind and readers never see half a picture.
"""

import itertools
import math
from dataclasses import dataclass

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

from ._picture_file import write_picture


# matplotlib's "tab10": ten colours told apart at a glance, also by most colour-blind readers
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
MAX_LINES = len(PALETTE)
_SCALE = 2  # drawn at twice the size, then scaled down (Pillow draws lines without antialiasing)
_WIDTH = 1200
_PLOT_HEIGHT = 340
_MARGIN_LEFT, _MARGIN_RIGHT = 64, 250
_STRIP_HEIGHT = 26
_BACKGROUND, _TEXT, _MUTED, _GRID, _NOTE = (
    (255, 255, 255),
    (25, 25, 25),
    (100, 100, 100),
    (228, 228, 228),
    (190, 30, 30),
)
_OTHER = (165, 165, 165)  # labels that are not drawn as lines
_MARKERS_UP_TO = 80  # windows; beyond that dots would merge into the line
_TICKS = (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800)


@dataclass
class Timeline:
    """
    What the picture shows.

    Attributes:
        windows (`list[tuple[float, float]]`): `[start, end)` of each window, in seconds, in time order.
        series (`dict[str, list[float]]`): the score per window of the labels to draw, best (by mean) first; the
            first `MAX_LINES` are drawn.
        title (`str`), subtitle (`str`): the clip and model; what the scores are and how the windows lie.
        value_name (`str`): what the y axis holds, e.g. "probability".
        probabilities (`bool`): scores in [0, 1] (fixed axis); otherwise the axis fits the values.
        more_labels (`int`): labels of the head left out of `series` (the legend says how many).
        best (`list[str]`, *optional*): the best label of each window, drawn as a strip under the plot (for
            single-label heads); labels not in `series` are grey.
        notes (`tuple[str, ...]`): lines shown in red under the title (e.g. "RANDOM weights").
    """

    windows: list
    series: dict
    title: str
    subtitle: str
    value_name: str = "probability"
    probabilities: bool = True
    more_labels: int = 0
    best: list | None = None
    notes: tuple = ()


def clock(seconds: float, decimals: int = 0, hours: bool = False) -> str:
    """`mm:ss` (or `h:mm:ss`), with `decimals` digits of the seconds: 83.5 -> "01:23.5"."""
    rounded = round(seconds, decimals)
    minutes, secs = divmod(rounded, 60)
    text_seconds = f"{secs:0{3 + decimals if decimals else 2}.{decimals}f}"
    if hours or minutes >= 60:
        whole_hours, minutes = divmod(int(minutes), 60)
        return f"{whole_hours}:{int(minutes):02d}:{text_seconds}"
    return f"{int(minutes):02d}:{text_seconds}"


def clock_decimals(*times: float) -> int:
    """Digits after the seconds needed to show these times as they are (0, 1 or 2)."""
    return _decimals(times, most=2)


def render(timeline: Timeline) -> PIL.Image.Image:
    """The picture, `_WIDTH` pixels wide."""
    s = _SCALE
    labels = list(timeline.series)[:MAX_LINES]
    colours = dict(zip(labels, PALETTE))
    title_font, font, small = load_font(21 * s), load_font(15 * s), load_font(13 * s)
    header = (14 + 30 + 22 + 22 * len(timeline.notes) + 26) * s
    strip = (_STRIP_HEIGHT + 12) * s if timeline.best else 0
    axis = 48 * s
    height = header + _PLOT_HEIGHT * s + strip + axis
    image = PIL.Image.new("RGB", (_WIDTH * s, height), _BACKGROUND)
    draw = PIL.ImageDraw.Draw(image)
    left, right = _MARGIN_LEFT * s, (_WIDTH - _MARGIN_RIGHT) * s
    top, bottom = header, header + _PLOT_HEIGHT * s

    draw.text((16 * s, 14 * s), timeline.title, fill=_TEXT, font=title_font)
    draw.text((16 * s, 44 * s), timeline.subtitle, fill=_MUTED, font=font)
    for number, note in enumerate(timeline.notes):
        draw.text((16 * s, (66 + 22 * number) * s), note, fill=_NOTE, font=font)

    begin, end = timeline.windows[0][0], timeline.windows[-1][1]
    duration = max(end - begin, 1e-6)

    def x_of(seconds: float) -> float:
        return left + (seconds - begin) / duration * (right - left)

    values = [value for label in labels for value in timeline.series[label]]
    low, high, y_ticks = _value_axis(values, timeline.probabilities)

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    # grid, axes and tick labels
    decimals = _decimals(y_ticks, most=4)
    for tick in y_ticks:
        y = y_of(tick)
        draw.line([(left, y), (right, y)], fill=_GRID, width=s)
        text = f"{tick:.{decimals}f}"
        draw.text((left - 8 * s, y), text, fill=_MUTED, font=small, anchor="rm")
    draw.text((left, top - 8 * s), timeline.value_name, fill=_MUTED, font=small, anchor="ld")
    step = _time_step(duration)
    hours = end >= 3600
    tick_decimals = clock_decimals(step)
    first_tick = math.ceil(begin / step - 1e-9) * step
    tick = first_tick
    while tick <= end + 1e-9:
        x = x_of(tick)
        draw.line([(x, top), (x, bottom)], fill=_GRID, width=s)
        draw.line([(x, bottom), (x, bottom + 5 * s)], fill=_MUTED, width=s)
        draw.text(
            (x, bottom + strip + 12 * s), clock(tick, tick_decimals, hours), fill=_MUTED, font=small, anchor="mt"
        )
        tick += step
    axis_label = "time (h:mm:ss)" if hours else "time (mm:ss)"
    draw.text(((left + right) / 2, bottom + strip + 32 * s), axis_label, fill=_MUTED, font=small, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=_MUTED, width=s)

    # lines: the best label last, so that it is drawn on top
    centres = [(start + stop) / 2 for start, stop in timeline.windows]
    for label in reversed(labels):
        scores = timeline.series[label]
        points = [(x_of(begin), y_of(scores[0]))]
        points += [(x_of(centre), y_of(score)) for centre, score in zip(centres, scores)]
        points.append((x_of(end), y_of(scores[-1])))
        draw.line(points, fill=colours[label], width=3 * s, joint="curve")
        if len(centres) <= _MARKERS_UP_TO:
            radius = 3.5 * s
            for x, y in points[1:-1]:
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colours[label])

    if timeline.best:
        _draw_best_label_strip(draw, timeline, colours, x_of, centres, bottom + 10 * s, small)

    _draw_legend(draw, timeline, labels, colours, right + 18 * s, top, font, small)
    return image.resize((_WIDTH, height // s), PIL.Image.LANCZOS)


def save(image: PIL.Image.Image, path: str, picture: tuple[str, str]) -> None:
    """Write `image` to `path` in `picture` (format and mode, from `_picture_file.picture_format`), atomically."""
    write_picture(image, path, picture)


# -- helpers ----------------------------------------------------------------------------------------------------------


def _draw_best_label_strip(draw, timeline: Timeline, colours, x_of, centres, top, font) -> None:
    """Each window's best label over its share of time: from halfway to the previous window's centre to halfway to
    the next one's (overlapping windows then share time instead of covering each other)."""
    s = _SCALE
    begin, end = timeline.windows[0][0], timeline.windows[-1][1]
    bounds = [begin] + [(a + b) / 2 for a, b in itertools.pairwise(centres)] + [end]
    runs = []  # merge neighbours with the same best label
    for index, label in enumerate(timeline.best):
        if runs and runs[-1][0] == label:
            runs[-1][2] = bounds[index + 1]
        else:
            runs.append([label, bounds[index], bounds[index + 1]])
    bottom = top + _STRIP_HEIGHT * s
    for label, start, stop in runs:
        x0, x1 = x_of(start), x_of(stop)
        draw.rectangle([x0, top, x1, bottom], fill=colours.get(label, _OTHER))
        text = _fit(draw, label, font, x1 - x0 - 8 * s)
        if text == label or len(text) > 4:  # a name cut to a letter or two says nothing: the colour does
            draw.text(((x0 + x1) / 2, (top + bottom) / 2), text, fill=(255, 255, 255), font=font, anchor="mm")
    draw.text((x_of(begin) - 8 * s, (top + bottom) / 2), "top", fill=_MUTED, font=font, anchor="rm")


def _draw_legend(draw, timeline: Timeline, labels, colours, left, top, font, small) -> None:
    s = _SCALE
    draw.text((left, top), "mean over the windows", fill=_MUTED, font=small)
    row = top + 26 * s
    width = (_MARGIN_RIGHT - 30) * s
    for label in labels:
        scores = timeline.series[label]
        mean = sum(scores) / len(scores)
        y = row + 10 * s
        draw.line([(left, y), (left + 22 * s, y)], fill=colours[label], width=4 * s)
        value = f"{mean:.3f}" if abs(mean) < 1000 else f"{mean:.3g}"
        value_width = draw.textlength(value, font=font)
        name = _fit(draw, label, font, width - 32 * s - value_width - 10 * s)
        draw.text((left + 30 * s, y), name, fill=_TEXT, font=font, anchor="lm")
        draw.text((left + width, y), value, fill=_TEXT, font=font, anchor="rm")
        row += 26 * s
    hidden = len(timeline.series) - len(labels) + timeline.more_labels
    if hidden:
        text = f"+ {hidden} more label{'s' if hidden > 1 else ''}" + (", grey in the strip" if timeline.best else "")
        draw.text((left, row + 4 * s), text, fill=_MUTED, font=small)
        row += 22 * s
    if timeline.best:
        draw.text((left, row + 4 * s), "strip: each window's top label", fill=_MUTED, font=small)


def _value_axis(values: list[float], probabilities: bool) -> tuple[float, float, list[float]]:
    if probabilities:
        return 0.0, 1.0, [0.0, 0.25, 0.5, 0.75, 1.0]
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    return low, high, [round(low + i * step, 12) + 0.0 for i in range(round((high - low) / step) + 1)]  # no -0.0


def _decimals(values, most: int) -> int:
    """The fewest digits after the point (up to `most`) that show all `values` exactly."""
    return next((d for d in range(most) if all(abs(v * 10**d - round(v * 10**d)) < 1e-6 for v in values)), most)


def _time_step(duration: float) -> float:
    """A round tick interval giving at most about 10 ticks."""
    return next((step for step in _TICKS if duration / step <= 10), _TICKS[-1])


def _fit(draw, text: str, font, width: float) -> str:
    """`text`, shortened with an ellipsis to fit `width`; empty when not even one letter fits."""
    if draw.textlength(text, font=font) <= width:
        return text
    for length in range(len(text) - 1, 0, -1):
        shortened = text[:length] + "…"
        if draw.textlength(shortened, font=font) <= width:
            return shortened
    return ""


def load_font(size: int):
    """Pillow's default font at `size` pixels (the pictures of `tvlt predict` and `tvlt reconstruct`)."""
    try:
        return PIL.ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return PIL.ImageFont.load_default()


__all__ = [
    "MAX_LINES",
    "PALETTE",
    "Timeline",
    "clock",
    "clock_decimals",
    "load_font",
    "render",
    "save",
]
