"""What every tool shares: logging set-up and turning user errors into one line and exit code 2."""
from __future__ import annotations

import functools
import logging
import sys
from typing import Callable

from .errors import CutmixTransferError


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s", datefmt="%H:%M:%S")


def main_guard(fn: Callable[..., int | None]) -> Callable[..., int]:
    """Run a tool's main(); a CutmixTransferError becomes `error: <message>` on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> int:
        try:
            return int(fn(*args, **kwargs) or 0)
        except CutmixTransferError as e:
            msg = " ".join(str(e).split())  # one line, always
            print(f"error: {msg}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper
