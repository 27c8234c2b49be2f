"""The ``mike`` command line."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from mike_sdk.backend import Backend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.cli.backend_args import (
    OPTION_HELP,
    add_backend_arguments,
    backend_options,
    build_backend,
    parse_options,
)
from mike_sdk.cli.batches import add_parser as add_batches_parser
from mike_sdk.cli.data import add_data_parser
from mike_sdk.cli.export import add_export_parser
from mike_sdk.cli.include import include_all
from mike_sdk.cli.listing import cmd_backends, cmd_strategies
from mike_sdk.cli.memory_args import add_memory_arguments, memory_settings
from mike_sdk.cli.sample_args import add_sample_arguments
from mike_sdk.cli.serve import add_parser as add_serve_parser
from mike_sdk.cli.view import add_view_parser
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.data.languages import parse_languages
from mike_sdk.errors import ConfigError, MikeError, one_line, problems
from mike_sdk.records import TASKS
from mike_sdk.run.config import EvalConfig
from mike_sdk.runfolder.rundir import results_file
from mike_sdk.strategy import get_strategy


def default_run_dir(backend: Backend, config: EvalConfig) -> Path:
    """``runs/<model>-<strategy>-<hash>``: the same command always resumes the same folder."""
    import hashlib

    ident = backend.identity
    digest = hashlib.sha256(f"{ident.model_dump_json()}{config.fingerprint()}".encode())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(ident.model).name or ident.model)[:40]
    return Path("runs") / f"{slug}-{config.strategy}-{digest.hexdigest()[:8]}"


def cmd_eval(args: argparse.Namespace) -> int:
    from mike_sdk.calls.client import ModelClient
    from mike_sdk.calls.limits import Limits
    from mike_sdk.providers.notice import backend_notice
    from mike_sdk.run.evaluator import Evaluator

    options = backend_options(args)
    if args.pilot and not args.dry_run:
        raise ConfigError("--pilot K goes with --dry-run (it sends K requests per task and "
                          "prints what the run would cost).")
    if args.processes is not None and args.processes < 1:
        raise ConfigError(f"--processes {args.processes}: give 1 or more (1: this process "
                          "only; leave it out to use one per core).")
    if args.source_language and args.source_languages:
        raise ConfigError("give --source-languages or --source-language, not both.")
    try:
        config = EvalConfig(tasks=args.tasks, languages=args.languages,
                            source_languages=parse_languages(
                                args.source_languages or args.source_language or "en"),
                            skip_same_language=args.skip_same_language,
                            language_id=args.language_id, strategy=args.strategy,
                            strategy_options=parse_options(args.strategy_option),
                            metrics=args.metrics, limit=args.limit, sample=args.sample,
                            seed=args.seed, target_ci=args.target_ci,
                            likelihood=not args.no_likelihood, shard=args.shard,
                            edit_memory=memory_settings(args))
    except ValidationError as exc:
        raise _flag_error(exc) from None
    # Unknown strategies and strategy options fail here, before any model loads.
    get_strategy(config.strategy, **config.strategy_options)
    benchmark = Benchmark(args.data_dir)
    backend = build_backend(args.backend, args.model, options)
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(backend, config)
    print(f"Run folder: {run_dir}", file=sys.stderr)
    try:
        limits = Limits(rpm=args.rpm, tpm=args.tpm, max_concurrency=args.concurrency,
                        max_cost=args.max_cost, prices=args.prices)
    except ValidationError as exc:
        raise _flag_error(exc) from None
    with ResponseCache(args.cache_dir) as cache:
        client = ModelClient(backend, cache=cache, limits=limits)
        notice = backend_notice(backend, client.guard.prices)
        if notice is not None:
            print(f"mike: {notice}", file=sys.stderr)
        if args.dry_run:
            from mike_sdk.cli.sample_args import print_dry_run

            print_dry_run(client, benchmark, config, run_dir, batch=args.batch,
                          pilot=args.pilot)
            return 0
        if args.batch:
            from mike_sdk.batch.mode import run_batched
            from mike_sdk.batch.options import BatchOptions

            summary = run_batched(client, config, run_dir, benchmark=benchmark,
                                  options=BatchOptions(fallback=args.batch_fallback),
                                  progress=not args.no_progress).summary
        else:
            evaluator = Evaluator(client, benchmark=benchmark, progress=not args.no_progress,
                                  processes=args.processes)
            summary = evaluator.run(config, run_dir, retry_errors=args.retry_errors)
    from mike_sdk.report.table import summary_table

    print(summary_table(summary))
    print(f"\nResults: {results_file(run_dir)}  Summary: {run_dir / 'summary.json'}")
    if summary.stopped == "max_cost":
        spent = summary.totals.cost_usd
        shown = f"${spent:.4f}" if spent is not None else "an unknown amount"
        print(f"mike: stopped at --max-cost ${args.max_cost} (the run has spent "
              f"{shown} over all its sessions): re-run the same "
              "command with a higher --max-cost (or none) to resume.", file=sys.stderr)
        return 3
    errors = summary.totals.errors
    if errors:
        print(f"mike: {errors} of {summary.totals.rows} requests were refused (error rows, "
              f"scored 0); see their `error` in {results_file(run_dir).name}, and re-run with "
              "--retry-errors to send them again.", file=sys.stderr)
        return 1
    return 0


#: CLI flag of each configuration field whose name differs.
_FLAGS = {"max_concurrency": "concurrency", "source_languages": "source-languages",
          "strategy_options": "strategy-option"}


def _flag_error(exc: ValidationError) -> ConfigError:
    """A validation error of a configuration built from flags, named by its flag."""
    name, wrong = problems(exc)[0]
    name = name.split(".")[0]
    return ConfigError(f"--{_FLAGS.get(name, name.replace('_', '-'))}: {wrong}.")


def cmd_merge(args: argparse.Namespace) -> int:
    from mike_sdk.report.table import summary_table
    from mike_sdk.runfolder.merge import merge_shards

    summary = merge_shards(args.shard_dirs, args.out)
    print(summary_table(summary))
    print(f"\nMerged {len(args.shard_dirs)} shards into {args.out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mike_sdk.runfolder.merge import shards_as_run

    given = list(args.run_dirs)
    with shards_as_run(given) as run_dirs:
        if run_dirs != given:
            print(f"(the {len(given)} shards merged, as `mike merge` would)")
        return _report(args, [str(d) for d in run_dirs], shown=" + ".join(given))


def _report(args: argparse.Namespace, run_dirs: list[str], shown: str) -> int:
    from mike_sdk.report.table import load_summary, summary_table

    merged = run_dirs != args.run_dirs
    for i, run_dir in enumerate(run_dirs):
        if i:
            print()
        print(f"== {shown if merged else run_dir}")
        print(summary_table(load_summary(run_dir)))
    if args.out or args.format:
        from mike_sdk.report.build import ReportOptions, build_report, parse_formats

        out = Path(args.out) if args.out else Path(args.run_dirs[0]) / "report"
        if args.resamples < 100:
            raise ConfigError("--resamples must be at least 100 for a 95% interval.")
        options = ReportOptions(formats=parse_formats(args.format or "md,csv,html,png"),
                                resamples=args.resamples, seed=args.seed, scorer=args.scorer,
                                labels=args.labels.split(",") if args.labels else None,
                                sources=[shown] if merged else None)
        written = build_report(run_dirs, out, options)
        print(f"\nReport: {len(written)} files in {out}"
              + (f" (open {out / 'report.html'})" if "html" in options.formats else ""))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from mike_sdk.run.reproduce import ReproduceOptions, format_reproduction, reproduce

    options = backend_options(args)
    if args.exact:
        if args.backend != "hf":
            raise ConfigError("--exact is the authors' procedure on a local model: it needs "
                              "--backend hf.")
        # The authors' procedure: float32 weights, one prompt at a time, nothing shared.
        options.update(dtype="float32", batch_size=1, prefix_reuse=False)
        print("Exact mode: float32, one prompt at a time, no prefix reuse.", file=sys.stderr)
    backend = build_backend(args.backend, args.model, options)
    result = reproduce(backend, ReproduceOptions(
        out=args.out, languages=args.languages, limit=None if args.limit == 0 else args.limit,
        data_dir=args.data_dir, cache_dir=args.cache_dir, progress=not args.no_progress))
    print(format_reproduction(result))
    return 0


NO_PROGRESS_HELP = "no progress bar (plain progress lines are printed when stderr is no terminal)"
INCLUDE_HELP = ("import a module (dotted name) or .py file before the command, so that its "
                "@STRATEGIES.register / @BACKENDS.register run (repeatable)")


def _add_include(command: argparse.ArgumentParser) -> None:
    # Its own dest: a subcommand's default would otherwise replace the top-level value.
    command.add_argument("--include", dest="include_after", action="append", default=[],
                         metavar="MODULE_OR_FILE", help=INCLUDE_HELP)


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``mike``."""
    top = argparse.ArgumentParser(prog="mike", description="Cross-lingual in-context knowledge "
                                  "editing (MIKE) on the BMIKE-53 benchmark.")
    top.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    top.add_argument("--include", action="append", default=[], metavar="MODULE_OR_FILE",
                     help=INCLUDE_HELP)
    sub = top.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="evaluate a backend on BMIKE-53 (resumable, cached)")
    add_backend_arguments(ev)
    ev.add_argument("--tasks", default=",".join(TASKS), help="comma list of "
                    f"{', '.join(TASKS)} (default: all)")
    ev.add_argument("--languages", default="targets", help="target languages: comma list of "
                    "codes, 'targets' (the 52 non-English, default) or 'all'")
    ev.add_argument("--source-languages", help="languages of the edit: comma list, 'targets' "
                    "or 'all'; each is paired with every target language (default: en)")
    ev.add_argument("--source-language", help="one language of the edit (older spelling)")
    ev.add_argument("--skip-same-language", action="store_true", help="leave out pairs whose "
                    "source is the target (monolingual editing)")
    ev.add_argument("--language-id", choices=("auto", "script", "lingua"), default="auto",
                    help="tell answer languages apart by Unicode script plus the lingua "
                    "identifier for same-script pairs ('lingua', the analysis extra), by script "
                    "only ('script'), or 'lingua' when installed ('auto', default)")
    ev.add_argument("--strategy", default="8-shot-metric-specific",
                    help="prompt strategy (see `mike strategies`)")
    ev.add_argument("--strategy-option", action="append", default=[], metavar="KEY=VALUE",
                    help=OPTION_HELP.format(what="the strategy's constructor"))
    ev.add_argument("--metrics", default="reliability,generality,locality,portability",
                    help="comma list of reliability, generality, locality, portability "
                    "(default: all four)")
    ev.add_argument("--limit", type=int, help="first N items of each test file")
    add_sample_arguments(ev)
    ev.add_argument("--shard", metavar="I/N", help="run shard I of N (items whose position "
                    "is I-1 modulo N, every language); `mike merge` joins the N folders")
    ev.add_argument("--no-likelihood", action="store_true", help="skip the new-vs-old check")
    ev.add_argument("--data-dir", help="BMIKE-53 folder (default: $MIKE_DATA_DIR, then cache)")
    ev.add_argument("--run-dir", help="run folder (default: runs/<model>-<strategy>-<hash>)")
    ev.add_argument("--cache-dir", help="response cache folder (default: user cache)")
    ev.add_argument("--no-progress", action="store_true", help=NO_PROGRESS_HELP)
    ev.add_argument("--rpm", type=float, help="requests per minute the account allows")
    ev.add_argument("--tpm", type=float, help="tokens per minute the account allows")
    ev.add_argument("--concurrency", type=int, help="backend calls in flight at once, the one "
                    "limit of the run (default: the backend's max_concurrency)")
    ev.add_argument("--max-cost", type=float, metavar="USD", help="stop cleanly before this "
                    "session could spend more (resumable)")
    ev.add_argument("--prices", metavar="FILE", help="price file (JSON/TOML, USD per million "
                    "tokens) overriding the shipped defaults (default: $MIKE_PRICES)")
    ev.add_argument("--dry-run", action="store_true", help="print calls, estimated tokens "
                    "and cost; send nothing")
    ev.add_argument("--batch", action="store_true", help="send the requests the cache lacks "
                    "through the provider's batch interface (half price, up to 24 h); re-run "
                    "the same command to re-attach (see `mike batches`)")
    ev.add_argument("--batch-fallback", choices=("error", "live"), default="error",
                    help="with --batch: a request still unanswered after 3 batches becomes "
                    "an error row (default) or is sent live, at the live price")
    ev.add_argument("--processes", type=int, metavar="N", help="processes that answer "
                    "from the cache, this one included (default: one per core up to 4, for "
                    "runs of 20,000 rows or more; 1: this process only)")
    ev.add_argument("--retry-errors", action="store_true", help="send the requests of "
                    "refused items (error rows) again; their new rows replace them in the "
                    "summary")
    _add_include(ev)
    add_memory_arguments(ev)
    ev.set_defaults(func=cmd_eval)

    rep = sub.add_parser("report", help="print the summary tables of run folders; with "
                         "--out/--format also write tables with bootstrap CIs, figures, HTML")
    rep.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders; the first "
                     "is the baseline the others are compared with")
    rep.add_argument("--out", help="report folder (default: RUN_DIR/report of the first run)")
    rep.add_argument("--format", help="comma list of md,csv,html,png (default: all four)")
    rep.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    rep.add_argument("--seed", type=int, default=53, help="bootstrap seed")
    rep.add_argument("--scorer", help="scorer of the figures and group tables (default: "
                     "paper_f1, else token_f1, else em)")
    rep.add_argument("--labels", help="comma list of run names (default: folder names)")
    rep.set_defaults(func=cmd_report)

    rp = sub.add_parser("reproduce", help="the paper's four configurations beside its "
                        "published table (default: a CPU-sized smoke slice)")
    add_backend_arguments(rp)
    rp.add_argument("--languages", default="de,zh", help="target languages: comma list, "
                    "or 'targets' for the paper's 52 (default: de,zh)")
    rp.add_argument("--limit", type=int, default=2, help="first N items of each test file "
                    "(default 2; 0 = all)")
    rp.add_argument("--out", default="runs/reproduce", help="folder of the four run folders")
    rp.add_argument("--exact", action="store_true", help="the authors' procedure exactly: "
                    "float32, one prompt at a time (hf backend; slow)")
    rp.add_argument("--data-dir", help="BMIKE-53 folder (default: $MIKE_DATA_DIR, then cache)")
    rp.add_argument("--cache-dir", help="response cache folder (default: user cache)")
    rp.add_argument("--no-progress", action="store_true", help=NO_PROGRESS_HELP)
    _add_include(rp)
    rp.set_defaults(func=cmd_reproduce)

    add_data_parser(sub)
    add_export_parser(sub)
    add_view_parser(sub)
    mg = sub.add_parser("merge", help="join the run folders of --shard 1/N .. N/N into one "
                        "run (results, summary), refusing shards of different runs")
    mg.add_argument("shard_dirs", nargs="+", metavar="SHARD_DIR", help="the shards' folders")
    mg.add_argument("--out", required=True, help="the merged run folder (new)")
    mg.set_defaults(func=cmd_merge)
    add_batches_parser(sub)
    add_serve_parser(sub)
    for name, func, what in (("strategies", cmd_strategies, "prompt strategies"),
                             ("backends", cmd_backends, "backends")):
        listing = sub.add_parser(name, help=f"list {what}, including broken plugins")
        _add_include(listing)
        listing.set_defaults(func=func)
        if name == "backends":
            listing.add_argument("--models", action="store_true", help="print the model "
                                 "profiles: what each hosted model family accepts")
            listing.add_argument("--profiles", metavar="FILE", help="with --models: a "
                                 "profile file to add (default: $MIKE_PROFILES)")
            listing.add_argument("--presets", action="store_true", help="print the "
                                 "OpenAI-compatible provider presets")
    return top


def os_error(exc: OSError, *, runs: bool = True) -> str:
    """One line for a file-system failure: the file, the problem, the way out (``runs``:
    the command writes rows, and says that the finished ones are kept)."""
    where = f" {exc.filename}" if exc.filename else ""
    problem = exc.strerror or one_line(exc)
    if exc.errno == errno.ENOSPC:
        fix = "free some space, or choose a --run-dir / --cache-dir on another disk"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose a --run-dir / --cache-dir you can write to"
    elif exc.errno in (errno.EEXIST, errno.ENOTDIR):
        problem, fix = "a file is where a folder is needed", "choose another folder"
    elif exc.errno == errno.ENOENT:
        problem, fix = "no such file or folder", "create its folder or choose another path"
    else:
        fix = "check the path"
    kept = "; finished rows are kept" if runs else ""
    return f"cannot use{where}: {problem}. {fix[0].upper()}{fix[1:]}{kept}."


def _quiet_stdout() -> None:
    """Stdout's reader left (``mike data info | head``): drop what is still buffered."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mike``; exits 2 with a one-line message on bad input."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        include_all([*args.include, *getattr(args, "include_after", [])],
                    verbose=args.verbose)
        return int(args.func(args))
    except MikeError as exc:
        if args.verbose:
            logging.getLogger("mike_sdk").exception("the failure in full")
        print(f"mike: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of our output closed it: not a failure to report
        _quiet_stdout()
        return 141  # as if killed by SIGPIPE, like other tools in a pipe
    except OSError as exc:  # a read-only folder, a full disk: say which file and what to do
        if args.verbose:
            logging.getLogger("mike_sdk").exception("the failure in full")
        runs = args.command in ("eval", "reproduce")
        print(f"mike: error: {os_error(exc, runs=runs)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mike: interrupted; re-run the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
