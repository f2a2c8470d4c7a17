"""Template captions of the demo's one-object scenes, written the way COCO's annotators write (case, full stop).

Each caption names the head's colour (the class), the body's size, shape and position, with synonyms drawn from
the image's RNG; five distinct templates per image, like COCO's five references.
"""

from __future__ import annotations

import re

import numpy as np

from .scene import SceneObject, class_hue_names

# Plain colour words for captions (several hue names share one word; captions stay natural).
_CAPTION_COLOR = {
    "red": "red",
    "orange": "orange",
    "yellow": "yellow",
    "chartreuse": "lime",
    "green": "green",
    "spring": "mint",
    "cyan": "cyan",
    "azure": "sky blue",
    "blue": "blue",
    "violet": "purple",
    "magenta": "magenta",
    "rose": "pink",
}
_SYN = {
    "object": ["object", "shape", "blob", "thing", "figure"],
    "square": ["square", "patch", "block", "spot"],
    "background": ["cluttered background", "busy background", "noisy background", "messy background"],
    "striped": ["striped", "stripy", "banded"],
}
_TEMPLATES = [
    "a {size} {striped} {shape} {object} with a {color} {square} {pos}",
    "a {color} {square} on a {striped} {object} {pos}",
    "a {striped} {object} with a small {color} {square} on a {background}",
    "there is a {size} {shape} {object} {pos} with a {color} {square} on it",
    "a {shape} {striped} {object} marked {color} sits {pos} on a {background}",
    "a {color} {square} inside a {size} {striped} {object}",
    "the {striped} {object} {pos} has a {color} {square}",
]


def _caption_words(rng: np.random.Generator, obj: SceneObject, width: int, height: int, num_classes: int) -> dict:
    """The words a caption of `obj` fills in: head colour, body size and shape, position in the image."""
    color = _CAPTION_COLOR[class_hue_names(num_classes)[obj.label]]
    x0, y0, x1, y1 = obj.box_xyxy.tolist()
    cx, cy = (x0 + x1) / 2.0 / width, (y0 + y1) / 2.0 / height
    area = (x1 - x0) * (y1 - y0) / float(width * height)
    horiz = "on the left" if cx < 0.4 else "on the right" if cx > 0.6 else "in the middle"
    vert = "at the top" if cy < 0.4 else "at the bottom" if cy > 0.6 else None
    pos = horiz if vert is None or rng.random() < 0.5 else vert
    return dict(
        color=color,
        size="large" if area > 0.16 else "small",
        shape="elongated" if obj.elongation > 1.3 else "round",
        pos=pos,
    )


def make_captions(
    rng: np.random.Generator, obj: SceneObject, width: int, height: int, num_classes: int, k: int = 5
) -> list[str]:
    """`k` template captions for a one-object scene (distinct templates, synonyms drawn from `rng`)."""
    words = _caption_words(rng, obj, width, height, num_classes)
    out = []
    for t in rng.choice(len(_TEMPLATES), size=k, replace=k > len(_TEMPLATES)):
        fill = dict(words)
        fill.update({key: vals[int(rng.integers(0, len(vals)))] for key, vals in _SYN.items()})
        text = re.sub(r"\ba (?=[aeiou])", "an ", _TEMPLATES[int(t)].format(**fill))
        if rng.random() < 0.5:  # COCO captions are written both ways
            text = text[0].upper() + text[1:] + "."
        out.append(text)
    return out
