"""``mike merge``: the folders of a sharded run (``--shard I/N``) joined into one.

The shards must be one run cut in ``N``: the same configuration but for ``shard``, the
same backend and request settings, the same strategy, the same data (every data file
two shards read has the same sha256), and shards ``1..N`` each exactly once. The
merged folder holds every shard's rows in plan order (task, source, target, position,
metric), their stored requests and spending, a manifest without ``shard``, and a
summary computed from the rows as an unsharded run's would be; its totals add the
shards' (cost included: two shards with their own caches may each have paid for one
prompt).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from mike_sdk.errors import ConfigError
from mike_sdk.run.results import Aggregator
from mike_sdk.runfolder.files import (
    MANIFEST,
    PROMPTS,
    GroupResult,
    Manifest,
    ResultRow,
    Summary,
    Totals,
)
from mike_sdk.runfolder.ledger import SPEND
from mike_sdk.runfolder.members import member
from mike_sdk.runfolder.rundir import (
    final_lines,
    read_manifest,
    read_summary,
    results_file,
    write_manifest,
    write_summary,
)

__all__ = ["merge_shards", "shards_as_run"]

#: Manifest entries that must be equal in every shard.
SAME = ("backend", "strategy", "requests", "chat_protocol", "scorers")


def _check(manifests: list[tuple[Path, Manifest]]) -> int:
    """The number of shards, after checking that the folders are one run's shards."""
    first_path, first = manifests[0]
    shards = [m.config.shard for _, m in manifests]
    if None in shards:
        unsharded = next(p for (p, m) in manifests if m.config.shard is None)
        raise ConfigError(f"{unsharded} is not a shard (its run had no --shard I/N).")
    total = first.config.shard[1] if first.config.shard else 0
    seen = sorted(s[0] for s in shards if s is not None)
    if seen != list(range(1, total + 1)) or any(s is not None and s[1] != total
                                                for s in shards):
        raise ConfigError(f"Shards to merge must be 1..{total} of {total}, each once; got "
                          f"{', '.join(f'{s[0]}/{s[1]}' for s in shards if s)}.")
    base = first.config.model_copy(update={"shard": None})
    data: dict[str, tuple[str, Path]] = {}
    for path, manifest in manifests:
        if manifest.config.model_copy(update={"shard": None}) != base:
            raise ConfigError(f"{path} has another configuration than {first_path} "
                              "(beyond --shard): not shards of one run.")
        for key in SAME:
            if getattr(manifest, key) != getattr(first, key):
                raise ConfigError(f"{path} differs from {first_path} in {key}: not shards "
                                  "of one run.")
        for name, digest in manifest.data_files.items():
            other = data.setdefault(name, (digest, path))
            if other[0] != digest:
                raise ConfigError(f"Data file {name} differs between {other[1]} and {path}: "
                                  "the shards read different data.")
    return total


#: Rows per gzip member of the merged file.
MEMBER_ROWS = 4096


def _order(item: str, config_order: dict[str, int]) -> tuple[int, ...]:
    task, pair, index, metric = item.split("/")
    source, _, target = pair.partition(">")
    return (config_order[task], config_order[f"src:{source}"], config_order[f"tgt:{target}"],
            int(index), config_order[metric])


def merge_shards(shard_dirs: Sequence[str | Path], out: str | Path) -> Summary:
    """Join the shards' folders into ``out`` (which must not hold a run); returns the
    merged summary."""
    paths = [Path(p) for p in shard_dirs]
    out = Path(out)
    if results_file(out).exists() or (out / MANIFEST).exists():
        raise ConfigError(f"{out} already holds a run: merge into a new folder.")
    manifests = [(p, read_manifest(p)) for p in paths]
    _check(manifests)
    summaries = [read_summary(p) for p in paths]
    for path, summary in zip(paths, summaries, strict=True):
        if summary.stopped:
            raise ConfigError(f"Shard {path} stopped before its end ({summary.stopped}): "
                              "re-run its command to finish it, then merge.")
    first = manifests[0][1]
    config = first.config.model_copy(update={"shard": None})
    order: dict[str, int] = {name: i for i, name in enumerate(config.tasks)}
    order.update({f"src:{s}": i for i, s in enumerate(config.source_languages)})
    order.update({f"tgt:{t}": i for i, t in enumerate(config.languages)})
    order.update({m: i for i, m in enumerate(config.metrics)})
    # Lines rather than rows: a fifth of the memory.
    lines = sorted(((row.id, line) for path in paths for row, line in final_lines(path)),
                   key=lambda item: _order(item[0], order))
    out.mkdir(parents=True, exist_ok=True)
    data_files = {k: v for _, m in manifests for k, v in m.data_files.items()}
    write_manifest(out, first.model_copy(update={"config": config, "data_files": data_files}))
    for name in (PROMPTS, SPEND):  # gzip members and JSON lines both concatenate
        with (out / name).open("wb") as sink:
            for path in paths:
                if (path / name).exists():
                    with (path / name).open("rb") as source:
                        shutil.copyfileobj(source, sink)
    aggregator = Aggregator()
    with results_file(out).open("wb") as fh:
        for start in range(0, len(lines), MEMBER_ROWS):
            chunk = [line for _, line in lines[start:start + MEMBER_ROWS]]
            for line in chunk:  # every line a row: the summary is computed from them
                aggregator.add(ResultRow.model_validate_json(line))
            fh.write(member(b"".join(chunk)))
    summary = _summary(summaries, config, aggregator)
    write_summary(out, summary)
    return summary


def _summary(summaries: list[Summary], config: object, aggregator: Aggregator) -> Summary:
    first = summaries[0]
    skipped: dict[str, dict[str, int]] = {}
    for summary in summaries:
        for task, pairs in summary.skipped.items():
            for pair, n in pairs.items():
                skipped.setdefault(task, {})[pair] = skipped.get(task, {}).get(pair, 0) + n
    totals = [s.totals for s in summaries]

    def total(name: str) -> int | float | None:
        values = [getattr(t, name) for t in totals]
        return None if any(v is None for v in values) else sum(values)

    merged = Totals(
        rows=aggregator.rows, cache_hits=aggregator.cached, errors=aggregator.errors,
        out_of_reasoning_budget=aggregator.out_of_reasoning_budget,
        backend_calls_this_session=sum(t.backend_calls_this_session for t in totals),
        paid_requests=sum(t.paid_requests for t in totals),
        input_tokens=sum(t.input_tokens for t in totals),
        output_tokens=sum(t.output_tokens for t in totals),
        cached_input_tokens=total("cached_input_tokens"),  # type: ignore[arg-type]
        reasoning_tokens=total("reasoning_tokens"),  # type: ignore[arg-type]
        cost_usd=total("cost_usd"), retries=sum(t.retries for t in totals),
        rate_limited=sum(t.rate_limited for t in totals),
        wall_time_s=max(t.wall_time_s for t in totals))
    return first.model_copy(update={
        "config": config, "skipped": skipped, "totals": merged,
        "results": [GroupResult.model_validate(g) for g in aggregator.table()]})


@contextlib.contextmanager
def shards_as_run(run_dirs: Sequence[str | Path]) -> Iterator[list[str | Path]]:
    """``run_dirs`` as given, or, when they are the shards of one run, that run merged
    into a temporary folder (for reading: ``mike report`` over shards)."""
    sharded = [d for d in run_dirs
               if (Path(d) / MANIFEST).is_file() and read_manifest(d).config.shard]
    if not sharded:
        yield list(run_dirs)
        return
    if len(sharded) < len(run_dirs):
        raise ConfigError(f"{sharded[0]} is a shard: report the shards of a run alone (they "
                          "are merged on the fly), or `mike merge` them first to compare the "
                          "run with others.")
    with tempfile.TemporaryDirectory(prefix="mike-merged-") as scratch:
        merge_shards(run_dirs, Path(scratch) / "run")
        yield [Path(scratch) / "run"]
