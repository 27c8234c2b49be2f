"""A helper process: answers the blocks it claims from the cache alone.

Started by :class:`~mike_sdk.parallel.pool.HelperPool` as ``python -m
mike_sdk.parallel.helper READ_FD WRITE_FD`` (a fresh interpreter: no state of the run's
process is inherited, its SQLite connections least of all). It reads a
:class:`~mike_sdk.parallel.messages.Job`, then claims blocks one at a time until none is
left, answering each as the run's process would: the same planner, keys, scorers,
language labels and row and request encodings. The first block it cannot answer from
the cache (an answer, a likelihood score or a language verdict never stored) is given
back whole, and the helper stops: the run is not a cached re-run.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence
from itertools import islice
from multiprocessing.connection import Connection

from mike_sdk.backend import (
    Abilities,
    Backend,
    Generation,
    GenerationRequest,
    Identity,
    Likelihood,
    Tokenizer,
)
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.cli.include import include
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import one_line
from mike_sdk.parallel.messages import CLAIM, BlockRows, Failed, GaveBack, Job
from mike_sdk.providers.settings import RequestSettings
from mike_sdk.run.likelihood import likelihood_requests
from mike_sdk.run.plan import Planner, WorkItem
from mike_sdk.run.results import Aggregator
from mike_sdk.run.rows import answer_texts, result_rows
from mike_sdk.runfolder.files import ResultRow
from mike_sdk.runfolder.prompts import PromptStore
from mike_sdk.runfolder.rundir import packed_rows
from mike_sdk.scoring.confusion import LanguageIdentifier
from mike_sdk.scoring.verdicts import IdentificationCache
from mike_sdk.strategy import get_strategy

__all__ = ["BlockAnswerer", "Replay"]

#: Work items keyed and looked up together (a block has a few thousand).
CHUNK = 512


class Replay(Backend):
    """The run's model as a helper sees it: identity, abilities and tokenizer; it is
    never called (a helper answers from the cache only)."""

    def __init__(self, identity: Identity, abilities: Abilities,
                 settings: RequestSettings | None, tokenizer: Tokenizer | None) -> None:
        self._identity, self._abilities = identity, abilities
        self._settings, self._tokenizer = settings, tokenizer

    @property
    def identity(self) -> Identity:
        return self._identity

    @property
    def abilities(self) -> Abilities:
        return self._abilities

    def request_settings(self) -> RequestSettings | None:
        return self._settings

    def get_tokenizer(self) -> Tokenizer | None:
        return self._tokenizer

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        raise RuntimeError("A helper process answers from the cache only.")


class Missing(Exception):
    """Something a block needs is not stored: the block goes back to the run."""


class BlockAnswerer:
    """Answers blocks of one run's plan from the cache (one per helper process)."""

    def __init__(self, job: Job) -> None:
        for module in job.modules:
            include(module)
        self.config = job.config
        benchmark = Benchmark(job.data_root)
        self.strategy = get_strategy(job.config.strategy, **job.config.strategy_options)
        self.strategy.bind(benchmark)
        self.abilities = job.abilities
        self.tokenizer = job.tokenizer  # None unless the backend scores with its tokenizer
        self.client = ModelClient(Replay(job.identity, job.abilities, job.settings,
                                         job.tokenizer), cache=ResponseCache(job.cache_dir),
                                  limits=job.limits, shared=False)
        self.planner = Planner(benchmark, job.config, self.strategy, job.abilities,
                               recorded=job.recorded)
        self.blocks = self.planner.blocks()
        store = None if job.verdicts is None else IdentificationCache(job.verdicts)
        self.identifier = LanguageIdentifier(use_lingua=store is not None, store=store)
        if store is not None and not self.identifier.lingua:
            raise RuntimeError("lingua is not importable in the helper process.")
        self.store = PromptStore(None)

    def answer(self, index: int) -> BlockRows:
        """Block ``index`` answered (raises :class:`Missing` to give it back)."""
        block = self.blocks[index]
        work = self.planner.block(block)
        prompts: list[bytes] = []
        rows: list[bytes] = []
        aggregator = Aggregator()
        requests = likelihoods = 0
        while chunk := list(islice(work, CHUNK)):
            answered, checks = self._rows(chunk)
            prompts.append(self.store.encode((row.cache_key, row) for row in answered))
            rows.append(packed_rows(answered))
            for row in answered:
                aggregator.add(row)
            requests += len(chunk)
            likelihoods += checks
        return BlockRows(index=index, prompts=b"".join(prompts), rows=b"".join(rows),
                         count=aggregator.rows, requests=requests, likelihoods=likelihoods,
                         aggregator=aggregator, plan=self.planner.record(block),
                         strategy_files=dict(self.strategy.files))

    def _rows(self, todo: list[WorkItem]) -> tuple[list[ResultRow], int]:
        """A chunk's rows, and how many likelihood scores they read."""
        client = self.client
        keys = [client.key(w.request) for w in todo]
        answers = {a.key: a for a in client.answered(client.lookup(keys))}
        if len(answers) < len(set(keys)):
            raise Missing(f"{len(set(keys)) - len(answers)} answers are not cached")
        scoring = likelihood_requests(todo, self.config, self.abilities)
        pair_keys = {wid: (client.key(new), client.key(old))
                     for wid, (new, old) in scoring.items()}
        wanted = {key for pair in pair_keys.values() for key in pair}
        checks = {k: Likelihood.model_validate(v) for k, v in client.lookup(wanted).items()}
        if len(checks) < len(wanted):
            raise Missing(f"{len(wanted) - len(checks)} likelihood scores are not cached")
        outputs, extracted = answer_texts(todo, keys, answers, self.strategy)
        if not self.identifier.prefetch_stored(
                (a, w.item.target_lang, w.item.source_lang)
                for a, w in zip(extracted, todo, strict=True)):
            raise Missing("some answers' languages were never identified")
        rows = result_rows(todo, keys, outputs, extracted, answers, pair_keys, checks,
                           self.tokenizer, self.identifier)
        return rows, len(checks)


def serve(inbox: Connection, outbox: Connection) -> None:
    """Claim, answer and send blocks until none is left (or one must be given back)."""
    job: Job = inbox.recv()
    try:
        answerer = BlockAnswerer(job)
    except Exception as exc:  # the run's process does the work: say why, and stop
        outbox.send(Failed(one_line(exc)))
        return
    while True:
        outbox.send(CLAIM)
        index: int | None = inbox.recv()
        if index is None:
            return
        try:
            outbox.send(answerer.answer(index))
        except Missing as missing:
            outbox.send(GaveBack(index, str(missing)))
            return
        except Exception as exc:
            outbox.send(Failed(one_line(exc)))
            return


def main(argv: Sequence[str]) -> None:
    """``python -m mike_sdk.parallel.helper READ_FD WRITE_FD``."""
    # Ctrl-C reaches the whole process group: the run's process stops its helpers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    logging.basicConfig(level=logging.WARNING, format="mike helper: %(message)s")
    inbox = Connection(int(argv[0]), writable=False)
    outbox = Connection(int(argv[1]), readable=False)
    try:
        serve(inbox, outbox)
    except (EOFError, BrokenPipeError):
        pass  # the run's process is gone: nothing to send to
    finally:
        inbox.close()
        outbox.close()


if __name__ == "__main__":
    main(sys.argv[1:])
