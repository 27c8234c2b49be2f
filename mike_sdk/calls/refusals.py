"""Telling a systematic refusal from an isolated one.

A 400 on one prompt (a content filter, a prompt too long) is that item's error row and
the run goes on. The same 400 on the first requests of a run means that every request is
built wrong for this model (a parameter it refuses): going on would write an error row
for each of half a million items. So refusals are held back until the model has answered
once; if :data:`STOP_AFTER` identical ones come first, the run stops with the provider's
message, and the held requests are left unwritten so that the next run sends them again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from mike_sdk.backend import Backend
from mike_sdk.calls.failures import CallFailed

__all__ = ["STOP_AFTER", "RefusalWatch", "SystematicRefusal", "profile_hint"]

#: Identical refusals, before any answer, that stop a run.
STOP_AFTER = 5

Deliver = Callable[[str, str], None]


class SystematicRefusal(CallFailed):
    """The first requests were all refused with the same error: the run stops."""


class RefusalWatch:
    """Holds refusals until the first answer; raises :class:`SystematicRefusal` when the
    first ones are all the same."""

    def __init__(self, hint: str = "") -> None:
        self.hint = hint
        """What to change, appended to the stop message (the profile to fix, say)."""
        self.answered = False
        """Whether the model has answered at least once (refusals then pass straight on)."""
        self._held: list[tuple[str, str, Deliver]] = []
        self._counts: Counter[str] = Counter()

    def refused(self, key: str, message: str, deliver: Deliver) -> None:
        """Pass on (``deliver(key, message)``) or hold a refusal; raise if it is systematic."""
        if self.answered:
            deliver(key, message)
            return
        self._held.append((key, message, deliver))
        self._counts[message] += 1
        if self._counts[message] >= STOP_AFTER:
            self._held.clear()
            raise SystematicRefusal(
                f"Stopped: the first {STOP_AFTER} requests were all refused with the same "
                f"error, so every request would be: {message}"
                + (f" {self.hint}" if self.hint else ""), status=400)

    def answer(self) -> None:
        """The model answered: refusals held so far were isolated ones; pass them on."""
        self.answered = True
        self.flush()

    def flush(self) -> None:
        """Pass on every held refusal (the requests are done: nothing else will come)."""
        held, self._held = self._held, []
        for key, message, deliver in held:
            deliver(key, message)


def profile_hint(backend: Backend) -> str:
    """What to change when a hosted model refuses every request: its profile."""
    settings = backend.request_settings()
    if settings is None:
        return ""
    return (f"The requests were built from model profile {settings.profile!r} (see `mike "
            "backends --models`): correct it in a profile file (--backend-option "
            "profiles=FILE or $MIKE_PROFILES), choose another entry (--backend-option "
            "profile=NAME), or change reasoning_effort / reasoning_budget.")
