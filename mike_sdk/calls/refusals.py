"""Telling a systematic refusal from an isolated one.

A 400 on one prompt (a content filter, a prompt too long) is that item's error row and
the run goes on. The same 400 on every request of a run means that every request is
built wrong for this model (a parameter it refuses): going on would write an error row
for each of half a million items. So refusals are held back until the model has answered
once. When :data:`WINDOW` identical ones have come and no answer, the watch becomes
*suspicious*: the client sends nothing new and waits for the requests in flight, since
any of them may still be answered. If none is (nothing pending, still no answer), the
run stops with the provider's message and the held requests are left unwritten so that
the next run sends them again; if one is, the held refusals were isolated after all.

A content filter refusing a tenth of the prompts at concurrency 64 therefore never
stops a run: 20 identical refusals with no answer among them would need every one of
the first twenty requests to land refused, and even then the answers in flight decide.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from mike_sdk.backend import Backend
from mike_sdk.calls.failures import CallFailed

__all__ = ["WINDOW", "RefusalWatch", "SystematicRefusal", "profile_hint"]

#: Identical refusals, with no answer among the completed requests, that make the watch
#: suspicious (the run then stops if the requests still in flight are not answered).
WINDOW = 20

Deliver = Callable[[str, str], None]


class SystematicRefusal(CallFailed):
    """The first requests were all refused with the same error: the run stops."""


class RefusalWatch:
    """Holds refusals until the first answer; says when the first ones are all the same."""

    def __init__(self, hint: str = "") -> None:
        self.hint = hint
        """What to change, appended to the stop message (the profile to fix, say)."""
        self.answered = False
        """Whether the model has answered at least once (refusals then pass straight on)."""
        self._held: list[tuple[str, str, Deliver]] = []
        self._counts: Counter[str] = Counter()

    def refused(self, key: str, message: str, deliver: Deliver) -> None:
        """Pass on (``deliver(key, message)``) or hold a refusal."""
        if self.answered:
            deliver(key, message)
            return
        self._held.append((key, message, deliver))
        self._counts[message] += 1

    @property
    def suspicious(self) -> bool:
        """:data:`WINDOW` identical refusals and no answer yet: send nothing new until
        the requests in flight have landed, then :meth:`verdict`."""
        return not self.answered and bool(self._counts) \
            and self._counts.most_common(1)[0][1] >= WINDOW

    def verdict(self) -> SystematicRefusal | None:
        """With nothing left in flight: the failure that stops the run (the held
        refusals are dropped: their requests are sent again next time), or None."""
        if not self.suspicious:
            return None
        message, count = self._counts.most_common(1)[0]
        self._held.clear()
        return SystematicRefusal(
            f"Stopped: the first {count} completed requests were all refused with the same "
            f"error and none was answered, so every request would be: {message}"
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
    """What to change when every request is refused: the model profile they were built
    from ("" for a backend without one)."""
    settings = backend.request_settings()
    if settings is None:
        return ""
    return (f"The requests were built from model profile {settings.profile!r} (see `mike "
            "backends --models`): correct it in a profile file (--backend-option "
            "profiles=FILE or $MIKE_PROFILES), choose another entry (--backend-option "
            "profile=NAME), or change reasoning_effort / reasoning_budget.")
