"""Whether a session of a run starts helper processes, and with what job."""

from __future__ import annotations

import importlib.util
import logging
import pickle
import sys
from typing import TYPE_CHECKING

from mike_sdk.parallel.messages import Job
from mike_sdk.parallel.pool import HelperPool, RunSink, helper_count
from mike_sdk.runfolder.rundir import read_manifest

if TYPE_CHECKING:
    from mike_sdk.run.evaluator import Evaluator, Session

__all__ = ["start_helpers"]

log = logging.getLogger(__name__)


def start_helpers(evaluator: Evaluator, session: Session, rows: int) -> HelperPool | None:
    """Helper processes for ``session`` (``rows``: the rows it plans), or None where they
    would not pay (a small run, one core) or do not apply (:func:`why_not`)."""
    count = helper_count(evaluator.processes, rows)
    if count == 0:
        return None
    why = why_not(evaluator, session)
    if why is not None:
        log.info("No helper processes: %s.", why)
        return None
    client, config = evaluator.client, session.config
    tokenizer = evaluator.backend.get_tokenizer() if client.backend.abilities.tokenizer \
        else None
    verdicts = evaluator.identifier.store
    job = Job(data_root=evaluator.benchmark.root, config=config,
              modules=(importable(type(session.strategy).__module__),), identity=client.identity,
              abilities=client.backend.abilities, settings=client.backend.request_settings(),
              tokenizer=tokenizer, limits=client.limits, cache_dir=evaluator.cache.directory,
              verdicts=None if verdicts is None else verdicts.path,
              recorded=dict(read_manifest(session.run.path).data_files))
    try:
        payload = pickle.dumps(job)
    except Exception as exc:  # a plugin's tokenizer, say: this process does it all
        log.info("No helper processes: the run's job cannot be sent to one (%s).", exc)
        return None
    sink = RunSink(session.store, session.run, session.state.aggregator, session.planner,
                   session.bar)
    try:
        return HelperPool(payload, blocks=len(session.planner.blocks()), count=count,
                          take=sink)
    except OSError as exc:  # no interpreter to start (an embedded Python), no processes left
        log.info("No helper processes: %s.", exc)
        return None


def importable(name: str) -> str:
    """How a helper imports module ``name``: by name where that finds this file, else by
    its file (a module that ``--include FILE`` loaded under a name of its own)."""
    file: str | None = getattr(sys.modules.get(name), "__file__", None)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if file is None or (spec is not None and spec.origin == file):
        return name
    return file


def why_not(evaluator: Evaluator, session: Session) -> str | None:
    """Why helpers cannot take part in this session (None: they can)."""
    client = evaluator.client
    if client.cache is None:
        return "no response cache"
    if session.state.done or session.state.unchecked or not session.run.packed:
        return "the run folder already has rows"
    if session.config.edit_memory is not None or session.planner.sizes is not None:
        return "edit memory and target_ci rounds run in one process"
    if client.held is not None:
        return "batch mode"
    if type(session.strategy).__module__ == "__main__":
        return "the prompt strategy is defined in the script (a helper cannot import it)"
    if len(session.planner.blocks()) < 2:
        return "the plan has one block"
    return None
