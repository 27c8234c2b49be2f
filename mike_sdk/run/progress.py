"""A progress bar for long runs: items/s, ETA and cache hits."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """tqdm wrapper that counts cache hits; silent when disabled."""

    def __init__(self, total: int, *, enabled: bool = True, initial: int = 0) -> None:
        self._bar: Any = None
        self.cached = 0
        self.cost: float | None = None
        """USD spent so far, shown when known."""
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="item", dynamic_ncols=True,
                             file=sys.stderr, smoothing=0.1, mininterval=0.5)

    def update(self, n: int, *, cached: int) -> None:
        """Advance by ``n`` items, ``cached`` of them answered from the cache."""
        self.cached += cached
        if self._bar is not None and n:
            self._bar.update(n)
            postfix: dict[str, Any] = {"cache_hits": self.cached}
            if self.cost is not None:
                postfix["cost"] = f"${self.cost:.4f}"
            self._bar.set_postfix(postfix, refresh=False)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
