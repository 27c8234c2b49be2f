"""The records of a run folder: ``manifest.json``, ``results.jsonl.gz`` and ``summary.json``.

Each file has a model here, used both to write it and to read it back (through
:mod:`mike_sdk.runfolder.rundir`). Fields that older versions did not write have defaults,
documented in ``docs/run-files.md``; files that do not validate, and manifests of a
newer :data:`FORMAT`, are refused there.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mike_sdk.backend import Abilities, ChatMessage, Identity
from mike_sdk.extras import MissingExtra
from mike_sdk.memory.records import RetrievalRecord, RetrievalStats
from mike_sdk.providers.settings import RequestSettings
from mike_sdk.records import MetricName, TaskName
from mike_sdk.run.config import EvalConfig
from mike_sdk.scoring.confusion import AnswerLanguage, Label

MANIFEST, SUMMARY = "manifest.json", "summary.json"
#: The rows, one gzip member per flush (:mod:`mike_sdk.runfolder.members`), from format 3.
RESULTS = "results.jsonl.gz"
#: The rows of folders begun before format 3, uncompressed (still read and appended to).
PLAIN_RESULTS = "results.jsonl"
#: The requests behind the rows, each stored once (see :mod:`mike_sdk.runfolder.prompts`).
PROMPTS = "prompts.jsonl.gz"

#: The manifest format this version writes. Raise it when a change to any of the three
#: files would make older readers misread them; older readers refuse newer formats.
#: 2: rows leave out what their id says, empty fields and the request (in PROMPTS).
#: 3: rows in RESULTS, gzip-compressed (a folder begun before keeps its PLAIN_RESULTS).
FORMAT = 3
#: Row fields a line of the rows' file leaves out: its ``id`` says them.
FROM_ID = ("task", "source_lang", "target_lang", "index", "metric")



class LikelihoodCheck(BaseModel):
    """The new-vs-old check: is the new answer more probable than ``loc_ans``?"""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    new_logprob: float
    """Mean per-token log-probability of the new (gold) answer."""
    old_logprob: float
    """Mean per-token log-probability of ``loc_ans`` (the old answer on CounterFact)."""

    @property
    def new_more_probable(self) -> bool:
        """The paper's success criterion (lower perplexity = higher mean log-probability)."""
        return self.new_logprob > self.old_logprob


class ResultRow(BaseModel):
    """One scored answer, with everything needed to audit it (a line of ``results.jsonl.gz``)."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    id: str
    """Work-item id: ``task/source>target/index/metric``."""
    task: TaskName
    """Benchmark task."""
    index: int
    """Item position in the test file."""
    case_id: int | str | None = None
    """The item's case id."""
    source_lang: str
    """Language of the edit."""
    target_lang: str
    """Language of the question and gold answer."""
    metric: MetricName
    """What the question probes."""
    prompt: str | None = None
    """The completion prompt sent, if any (rows of format 2 and later keep it in
    ``prompts.jsonl.gz``, by ``cache_key``: :func:`mike_sdk.runfolder.prompts.read_requests`)."""
    messages: tuple[ChatMessage, ...] | None = None
    """The chat messages sent, if any (as ``prompt``)."""
    cache_key: str
    """Response-cache key of the request."""
    output: str
    """The model's raw text."""
    answer: str
    """The answer extracted by the strategy."""
    gold: str
    """The expected answer."""
    scores: dict[str, float]
    """Scores (0..1) by scorer name (see :data:`mike_sdk.scoring.scorers.SCORERS`)."""
    likelihood: LikelihoodCheck | None = None
    """The likelihood check, where run."""
    cached: bool
    """Whether the answer came from the cache (no backend call in this run)."""
    input_tokens: int | None = None
    """Prompt tokens reported by the backend."""
    output_tokens: int | None = None
    """Generated tokens reported by the backend."""
    cached_input_tokens: int | None = None
    """Prompt tokens the provider served from its prompt cache (None in rows of older runs)."""
    reasoning_tokens: int | None = None
    """Hidden reasoning tokens, part of ``output_tokens`` (None: the model did not say)."""
    cost_usd: float | None = None
    """What the call cost (or would have, for a cached answer); None when the price is
    unknown (and in rows of older runs)."""
    finish_reason: str
    """Why generation ended (``error`` for a refused request, ``reasoning`` for an empty
    answer because the token limit ran out while the model reasoned)."""
    error: str | None = None
    """Why the request was refused (its answer is empty and its scores 0), or None."""
    answer_language: AnswerLanguage | None = None
    """The answer's language relative to source and target (None in rows of older runs)."""
    retrieval: RetrievalRecord | None = None
    """What the question retrieved from the edit memory (``--edit-memory`` runs only)."""


    @model_validator(mode="before")
    @classmethod
    def _fields_from_id(cls, data: Any) -> Any:
        # Lines of format 2 leave out what the id says: task/source>target/index/metric.
        if isinstance(data, dict) and "task" not in data and isinstance(data.get("id"), str):
            task, pair, index, metric = data["id"].split("/")
            source, _, target = pair.partition(">")
            data = {**data, "task": task, "source_lang": source, "target_lang": target,
                    "index": int(index), "metric": metric}
        return data

class InLanguage(BaseModel):
    """Mean scores x 100 over the answers labelled ``target`` or ``neutral``."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    n: int
    """Answers kept (labelled target or neutral)."""
    em: float | None = None
    """Exact match over those answers (absent if none was kept)."""
    paper_f1: float | None = None
    """BMIKE-53 F1 over those answers (absent without a tokenizer or none kept)."""
    token_f1: float | None = None
    """Token F1 over those answers (absent if none was kept)."""


class GroupResult(BaseModel):
    """One task x source x target language x metric group of ``summary.json``'s ``results``."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    task: TaskName
    """Benchmark task."""
    source_lang: str
    """Language of the edits."""
    target_lang: str
    """Language of the questions."""
    metric: MetricName
    """What the questions probe."""
    n: int
    """Rows in the group."""
    em: float | None = None
    """Mean exact match x 100."""
    paper_f1: float | None = None
    """Mean BMIKE-53 F1 x 100 (absent for backends without a tokenizer)."""
    token_f1: float | None = None
    """Mean token F1 x 100."""
    answer_language: dict[Label, int] | None = None
    """Answers per language label (absent in summaries of runs before labelling)."""
    wrong_language: float | None = None
    """100 x (source + other) / (target + source + other); None when nothing was decided
    (or answers were not labelled)."""
    in_language: InLanguage | None = None
    """The scores without the wrong-language answers (absent without labels)."""
    likelihood: float | None = None
    """Share x 100 of likelihood checks won by the new answer, where run."""
    likelihood_n: int | None = None
    """Likelihood checks run, where run."""


class LanguageDetection(BaseModel):
    """How answers' languages were identified (see :mod:`mike_sdk.scoring.confusion`)."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    method: str
    """``script+lingua`` or ``script-only``."""
    lingua: str | None = None
    """Version of the ``lingua`` identifier, when used."""
    pair_confidence: float | None = None
    """Confidence a two-language identification needs, when lingua was used."""
    other_confidence: float | None = None
    """Confidence needed to name a third language, when lingua was used."""
    doubt_confidence: float | None = None
    """Confidence of a third language that leaves an answer undetermined, when lingua was used."""
    min_confidence: float | None = None
    """The single threshold of the first labelling versions (absent since)."""
    languages: list[str] | None = None
    """Languages the identifier knows, when lingua was used."""


class Totals(BaseModel):
    """Counts over every row of the folder, and this session's calls and time."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    rows: int
    """Rows in ``results.jsonl`` (one per work item)."""
    cache_hits: int
    """Rows answered from the response cache."""
    backend_calls_this_session: int
    """Requests sent to the backend by the session that wrote the summary."""
    paid_requests: int = 0
    """Unique requests the run paid for, over all its sessions (``spend.jsonl``; older
    versions counted rows instead)."""
    input_tokens: int
    """Prompt tokens of the paid requests, each counted once."""
    output_tokens: int
    """Generated tokens of the paid requests, each counted once."""
    cached_input_tokens: int | None = None
    """Prompt tokens served from the provider's prompt cache (None: older version)."""
    reasoning_tokens: int | None = None
    """Hidden reasoning tokens of those calls (part of ``output_tokens``); None when no
    row reported any."""
    out_of_reasoning_budget: int = 0
    """Rows whose answer is empty because the model ran out of tokens while reasoning."""
    cost_usd: float | None = None
    """What the paid requests cost, each once, over all the run's sessions; None when a
    price is unknown (or an older version wrote it)."""
    usage_unreported: int = 0
    """Paid requests whose server reported no token usage: ``cost_usd`` counts each at
    its request's upper bound (prompt bytes, the whole answer budget)."""
    abandoned: int = 0
    """Requests of this session still in flight when it stopped and given up on after a
    bounded wait: perhaps paid for, not in ``cost_usd`` (the next run asks them again)."""
    errors: int = 0
    """Rows of refused requests (older versions had none)."""
    retries: int = 0
    """Calls retried in this session (older versions did not retry)."""
    rate_limited: int = 0
    """Rate-limit answers received in this session."""
    wall_time_s: float
    """Seconds the session took."""


class _Described(BaseModel):
    """Fields shared by the manifest and the summary: what ran, on what."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    config: EvalConfig
    """The configuration, ``language_id`` as the run resolved it (``auto`` only in
    folders written before that option)."""
    backend: Identity
    """The backend's identity (what makes answers cacheable)."""
    strategy: dict[str, Any]
    """The strategy's own description (``PromptStrategy.describe()``): ``name``, then
    options that depend on the strategy (demonstrations, retrieval settings)."""
    scorers: dict[str, str]
    """Each scorer's name and definition."""
    requests: RequestSettings | None = None
    """How a hosted model's requests were built (profile, sampling, prefill, reasoning);
    None for backends that send requests as rendered."""
    chat_protocol: dict[str, Any] | None = None
    """The strategy's chat protocol (instruction, extraction), for runs that sent chat."""

    @field_validator("strategy")
    @classmethod
    def _named(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("name"), str):
            raise ValueError("a strategy description needs its 'name'")
        return value


class Manifest(_Described):
    """``manifest.json``: what a run folder holds; a resume must match it."""

    format: int = FORMAT
    """The run-files format (:data:`FORMAT`); manifests without one read as 0."""
    abilities: Abilities
    """What the backend could do (decides prompts and the likelihood check)."""
    versions: dict[str, str]
    """Python and package versions of the session that last opened the folder."""
    data_files: dict[str, str] = Field(default_factory=dict)
    """sha256 of each data file read, by path relative to the data root (empty until a
    session finishes planning)."""

    #: Entries that must match for a run to resume in the same folder.
    IDENTITY: ClassVar[tuple[str, ...]] = ("config", "backend", "strategy", "requests",
                                            "chat_protocol")


class SampleRecord(BaseModel):
    """How a sampled run chose its items (``summary.json``'s ``sampling``)."""

    model_config = ConfigDict(frozen=True)

    seed: int
    """Seed of the permutation of item positions (the same in every language)."""
    items: dict[str, int]
    """Item positions evaluated per task (the first this many of the permutation)."""
    available: dict[str, int]
    """Item positions the task's test files hold (a full run's count)."""
    target_ci: float | None = None
    """``--target-ci``: the half-width (points) aimed at, or None for a fixed sample."""
    half_width: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per task and metric, the half-width (points) of the 95% interval of the average
    over target languages that the rounds reached (``--target-ci`` runs only)."""
    rounds: int = 1
    """Rounds the run took (``--target-ci``; 1 for a fixed sample)."""


class Summary(_Described):
    """``summary.json``: the scores of a finished (or stopped) run."""

    results: list[GroupResult]
    """Mean scores per task x source x target language x metric, in that order."""
    language_detection: LanguageDetection | None = None
    """How answer languages were identified (None: written before labelling)."""
    skipped: dict[str, dict[str, int]]
    """Items left out per task and ``source>target`` pair (a language missing)."""
    totals: Totals
    """Row, token, cost and call counts."""
    cost_note: str | None = None
    """Where prices come from, or why ``cost_usd`` is null (None: older version)."""
    stopped: Literal["max_cost", "error"] | None = None
    """Why the session stopped early, if it did; a re-run resumes."""
    error: str | None = None
    """The failure that stopped it (``stopped == "error"``)."""
    sampling: SampleRecord | None = None
    """How the items were sampled (``--sample``, ``--target-ci``); None: every item, or the
    first ``limit``."""

    def table(self) -> str:
        """The plain-text score table that ``mike eval`` and ``mike report`` print."""
        from mike_sdk.report.table import summary_table

        return summary_table(self)

    def __str__(self) -> str:
        return self.table()

    def to_pandas(self) -> Any:
        """:attr:`results` as a pandas DataFrame, one row per group (needs pandas)."""
        try:
            import pandas
        except ImportError:
            raise MissingExtra("Summary.to_pandas() needs pandas, which is not installed: "
                               "pip install pandas.") from None
        return pandas.DataFrame([
            {**r.model_dump(exclude={"answer_language", "in_language"}),
             **{f"answers_{label}": n for label, n in (r.answer_language or {}).items()}}
            for r in self.results])
    retrieval: dict[str, dict[str, RetrievalStats]] | None = None
    """``--edit-memory`` runs: retrieval hit rates by task and target language."""


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each file, by file name (``docs/run-files.md`` shows them)."""
    return {MANIFEST: Manifest.model_json_schema(), RESULTS: ResultRow.model_json_schema(),
            SUMMARY: Summary.model_json_schema()}
