"""Caption vocabulary: word <-> id, built from the training captions (count threshold, <unk>, maximum length).

Conventions follow Show and Tell (Vinyals et al., TPAMI 2016: "words that occur at least 5 times in the training
set") and Karpathy's preprocessing (lower-case tokens without punctuation, from `datasets.text.tokenize`; captions
cut to 16 words). Ids 0-3 are reserved: <pad> 0 (ignored by the loss), <start> 1, <end> 2, <unk> 3; words follow by
falling count, then alphabetically, so that a vocabulary is the same wherever it is built.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from ..errors import ConfigError, DatasetError
from ..io import atomic_write_json

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
PAD_ID, START_ID, END_ID, UNK_ID = 0, 1, 2, 3


class Vocabulary:
    """An ordered word list with the four special tokens first; `encode`/`decode` map captions to ids and back."""

    def __init__(self, words: Sequence[str]) -> None:
        words = list(words)
        if tuple(words[:4]) != SPECIALS:
            raise ConfigError(f"a vocabulary must start with {list(SPECIALS)}, got {words[:4]}")
        if len(set(words)) != len(words):
            dup = [w for w, n in Counter(words).items() if n > 1][:5]
            raise ConfigError(f"vocabulary words must be unique; repeated: {dup}")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}

    def __len__(self) -> int:
        return len(self.words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.words == other.words

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def id(self, word: str) -> int:
        """The id of `word`, UNK_ID when it is not in the vocabulary."""
        return self.index.get(word, UNK_ID)

    def encode(self, tokens: Sequence[str], max_len: int) -> list[int]:
        """Word ids of the first `max_len` tokens, unknown words as <unk>; no <start>/<end> added."""
        return [self.index.get(w, UNK_ID) for w in list(tokens)[:max_len]]

    def decode(self, ids: Iterable[int]) -> str:
        """Caption text of an id sequence: stops at <end>, skips <pad> and <start>, keeps '<unk>' visible."""
        out = []
        for i in ids:
            i = int(i)
            if i == END_ID:
                break
            if i in (PAD_ID, START_ID):
                continue
            out.append(self.words[i])
        return " ".join(out)

    def to_json(self) -> dict:
        return {"words": self.words}

    def save(self, path: str | os.PathLike) -> None:
        """Write `{"words": [...]}` atomically."""
        atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary written by `save`; DatasetError naming the file when it is missing or malformed."""
        path = Path(path)
        try:
            words = json.loads(path.read_text())["words"]
        except FileNotFoundError:
            raise DatasetError(
                f"vocabulary file not found: {path}; it is written to the work dir by "
                f"tools/train_caption.py (vocab.json)"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DatasetError(
                f"{path} is not a vocabulary file ({type(e).__name__}: {e}); expected JSON "
                f'{{"words": ["<pad>", "<start>", "<end>", "<unk>", ...]}}'
            ) from None
        return cls(words)


def build_vocab(captions_tokens: Iterable[Sequence[str]], min_count: int = 5) -> Vocabulary:
    """Vocabulary of the words that occur at least `min_count` times in the given tokenised training captions.

    Rare words map to <unk>. Order: the specials, then by count (descending), ties alphabetically.
    """
    if not isinstance(min_count, int) or min_count < 1:
        raise ConfigError(f"vocabulary min_count must be a positive integer, got {min_count!r}")
    counts: Counter[str] = Counter()
    for toks in captions_tokens:
        counts.update(toks)
    for s in SPECIALS:
        counts.pop(s, None)
    kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return Vocabulary(list(SPECIALS) + kept)


def encode_batch(vocab: Vocabulary, captions: Sequence[Sequence[str]], max_len: int) -> torch.Tensor:
    """(N, max_len + 2) int64 padded targets: <start> w1 .. wn <end> <pad>...; n <= max_len (longer ones cut)."""
    out = torch.full((len(captions), max_len + 2), PAD_ID, dtype=torch.long)
    for i, toks in enumerate(captions):
        ids = [START_ID] + vocab.encode(toks, max_len) + [END_ID]
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out
