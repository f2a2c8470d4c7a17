"""The caption tokenizer shared by the caption readers, the demo generator and the captioning task.

Karpathy-style preprocessing: lower case, tokens are the runs of [a-z0-9], so punctuation and apostrophes split
words ("It's" -> "it", "s"). Non-ASCII letters split words as well ("café" -> "caf"): the PTB tokenizer of the COCO
scorers would keep them, but the vocabularies built so far use this rule, so it stays.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")


def tokenize(caption: str) -> list[str]:
    """Karpathy-style tokens of a caption: lower case, runs of [a-z0-9] (punctuation and apostrophes split words)."""
    return _WORD.findall(caption.lower())
