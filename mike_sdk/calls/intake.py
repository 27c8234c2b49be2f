"""Where money enters the client: answers priced, recorded in the run's ledger, cached,
counted and charged to the budget, live or from a collected batch. The one pricing site.

:class:`Intake` is the part of :class:`~mike_sdk.calls.client.ModelClient` that takes in
what a provider answered; the client owns the state it reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from mike_sdk.backend import Generation, GenerationRequest
from mike_sdk.calls.cache import ResponseCache, cacheable
from mike_sdk.calls.limits import CallGuard
from mike_sdk.runfolder.ledger import Ledger

__all__ = ["Answered", "Intake", "OnBatch", "OnSend"]


@dataclass(frozen=True, slots=True)
class Answered:
    """What became of one generation request."""

    key: str
    """Its response-cache key."""
    generation: Generation | None
    """The answer, or None when the request was refused."""
    cached: bool
    """Whether the answer came from the cache (no call made for it now)."""
    cost_usd: float | None
    """What the call cost, or would have for a cached answer (None: no price, or refused)."""
    error: str | None = None
    """Why the request was refused (a 400 with its message), or None."""


OnBatch = Callable[[Sequence[Answered]], None]
OnSend = Callable[[Sequence[str]], None]


class Intake:
    """Pricing and taking in paid answers (mixed into the client)."""

    guard: CallGuard
    cache: ResponseCache | None
    calls: int
    errors: int
    held: dict[str, Answered] | None
    held_costs: dict[str, float | None]
    _billed_failures: Counter[str]

    def cost(self, generation: Generation, *, batch: bool | None = None) -> float | None:
        """USD of one generation at this client's prices (None: the model has no price);
        ``batch``: at batch rates (default: in batch mode)."""
        return self.guard.cost(generation, batch=self.held is not None if batch is None
                               else batch)

    def upper_bound(self, requests: Sequence[GenerationRequest], *,
                    batch: bool | None = None) -> float | None:
        """Upper-bound USD of sending ``requests`` (None: no price); ``batch``: at batch
        rates (default: in batch mode)."""
        return self.guard.estimated_cost(requests, batch=self.held is not None
                                         if batch is None else batch)

    def charged(self, generation: Generation, request: GenerationRequest,
                calls: int = 1) -> float | None:
        """What a fresh answer billed ``calls`` times is counted as costing: its price from
        the usage the server reported, else the request's upper bound (``max_cost`` holds)."""
        usd = (self.guard.estimated_cost([request]) if generation.input_tokens is None
               or generation.output_tokens is None else self.cost(generation))
        return None if usd is None else usd * calls

    def store(self, answers: Mapping[str, BaseModel], *, batch: bool = False,
              ledger: Ledger | None = None,
              requests: Mapping[str, BaseModel] | None = None) -> dict[str, float | None]:
        """Take in what the provider answered (live, or a collected batch: ``batch``
        prices it at batch rates): each paid answer is recorded in the run's ``ledger``,
        then cached, counted and charged to the budget. The one place answers enter;
        returns each paid answer's USD (None: no price). With the ``requests`` they
        answer, an answer without usage is charged at its request's upper bound."""
        paid = [(k, v, self._price(k, v, batch, (requests or {}).get(k)))
                for k, v in answers.items() if isinstance(v, Generation)]
        # The ledger first: a kill between the two writes leaves an answer paid for and
        # sent again (counted once), never one cached and missing from the bill.
        if ledger is not None and paid:
            ledger.record(paid)
        if self.cache is not None:
            self.cache.put_many((k, v.model_dump()) for k, v in answers.items()
                                if not isinstance(v, Generation) or cacheable(v))
        self.calls += len(answers)
        self.guard.charge(sum(usd or 0.0 for _, _, usd in paid))
        return {k: usd for k, _, usd in paid}

    def _price(self, key: str, generation: Generation, batch: bool,
               request: BaseModel | None) -> float | None:
        if isinstance(request, GenerationRequest):
            # An answer cut short before this one was billed too: the same request.
            return self.charged(generation, request, 1 + self._billed_failures.pop(key, 0))
        return self.cost(generation, batch=batch)

    def take_batch(self, answers: Mapping[str, Generation], refused: Mapping[str, str], *,
                   ledger: Ledger | None = None) -> float | None:
        """A collected batch: its answers :meth:`store` d at batch rates, its refusals
        counted; both wait (in batch mode) for the caller that asks for them. Returns the
        USD the answers cost (None: no price)."""
        costs = self.store(answers, batch=True, ledger=ledger)
        cost = None if None in costs.values() else sum(c or 0.0 for c in costs.values())
        self.errors += len(refused)
        if self.held is not None:  # the texts are in the cache: only what each cost is held
            self.held_costs.update((k, self.cost(g, batch=True)) for k, g in answers.items())
            self.held.update((k, Answered(k, None, False, None, m)) for k, m in refused.items())
        return cost

    def take_held(self, keys: Iterable[str]) -> list[Answered]:
        """Batch mode: this session's batch answers among ``keys``, each taken once, their
        texts read from the cache. Holding the texts instead kept a whole round's answers
        in memory until the run's pass reached them: 1.3 GB for a full configuration."""
        held = self.held or {}
        wanted = [k for k in keys if k in held or k in self.held_costs]
        costs = {k: self.held_costs.pop(k) for k in wanted if k in self.held_costs}
        stored = self.cache.get_many(costs) if costs and self.cache is not None else {}
        out: list[Answered] = []
        for key in wanted:
            if key not in costs:
                out.append(held.pop(key))
            elif key in stored:  # else gone from the cache (its checksum failed): asked again
                out.append(Answered(key, Generation.model_validate(stored[key]), False,
                                    costs[key]))
        return out

