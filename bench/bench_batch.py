"""Batch mode at scale: 200,000 requests through the loopback batch servers, beside the
same work sent live at 600 requests per minute.

The loopback servers (tests/batch_servers.py) stand in for OpenAI's Batch API and
Anthropic's Message Batches and answer every request as the strict live stand-in does.
The requests (short synthetic BMIKE-style prompts) go through the real runner
(:class:`~mike_sdk.batch.runner.BatchRunner`), the official SDKs and the response cache.
The live figures are computed from the rate: 200,000 requests at 600 per minute, one
HTTP call each. Costs are the sums over the answers' real usage, at live and at batch
prices.

    python bench/bench_batch.py [--requests 200000] [--providers openai,anthropic]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from batch_servers import BatchServer, Knobs  # noqa: E402
from strict_api import STRICT_ANTHROPIC_KEY, STRICT_OPENAI_KEY  # noqa: E402

from mike_sdk.backend import BACKENDS, ChatMessage, GenerationRequest  # noqa: E402
from mike_sdk.batch.options import BatchOptions  # noqa: E402
from mike_sdk.batch.provider import provider_for  # noqa: E402
from mike_sdk.batch.runner import BatchRunner  # noqa: E402
from mike_sdk.calls.cache import ResponseCache  # noqa: E402
from mike_sdk.calls.client import ModelClient  # noqa: E402
from mike_sdk.calls.pricing import PriceTable  # noqa: E402

LIVE_RPM = 600
MODELS = {"openai": "gpt-5-mini", "anthropic": "claude-haiku-4-5"}
CITIES = ["Rome", "Oslo", "Lima", "Cairo", "Quito", "Hanoi", "Dakar", "Riga"]


def requests(n: int) -> list[GenerationRequest]:
    system = ChatMessage(role="system", content="Treat the new fact as true. Reply with the "
                         "answer only, in the question's language.")
    return [GenerationRequest(messages=(system, ChatMessage(role="user", content=(
        f'New Fact: "The capital of country {i} is {CITIES[i % len(CITIES)]}."\n'
        f'Question: "What is the capital of country {i}?" Answer: "'))),
        max_new_tokens=15, stop=('"',)) for i in range(n)]


def run(kind: str, n: int, folder: Path) -> dict[str, object]:
    server = BatchServer(folder / "server", Knobs(validating_s=0.05, in_progress_s=0.5,
                                                   finalizing_s=0.05))
    url, key = ((f"{server.url}/v1", STRICT_OPENAI_KEY) if kind == "openai"
                else (server.url, STRICT_ANTHROPIC_KEY))
    backend = BACKENDS.create(kind, model=MODELS[kind], base_url=url, api_key=key,
                              timeout=600)
    asked = requests(n)
    try:
        with ResponseCache(folder / "cache") as cache:
            client = ModelClient(backend, cache=cache)
            keyed = [(client.key(r), r) for r in asked]
            provider = provider_for(backend)
            runner = BatchRunner(client, provider, folder / "run",
                                 BatchOptions(poll_initial_s=0.2, poll_max_s=1.0))
            started = time.perf_counter()

            async def go() -> None:
                try:
                    await runner.run(lambda: keyed)
                finally:
                    await backend.release_connections()

            asyncio.run(go())
            wall = time.perf_counter() - started
            held = cache.get_many(k for k, _ in keyed)
    finally:
        server.close()
    prices = PriceTable()
    from mike_sdk.backend import Generation

    answers = [Generation.model_validate(v) for v in held.values()]
    live = sum(prices.generation_cost(MODELS[kind], g) or 0.0 for g in answers)
    batch = sum(prices.generation_cost(MODELS[kind], g, batch=True) or 0.0 for g in answers)
    return {"kind": kind, "wall": wall, "answered": len(held), "calls": dict(provider.http.calls),
            "server": dict(server.counts), "live_usd": live, "batch_usd": batch,
            "batches": runner.report.submitted, "refused": len(runner.report.refused)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--providers", default="openai,anthropic")
    args = parser.parse_args()
    n = args.requests
    live_minutes = n / LIVE_RPM
    print(f"{n:,} requests per provider; live at {LIVE_RPM} requests/min: {n:,} HTTP calls, "
          f"{live_minutes:,.0f} min ({live_minutes / 60:.1f} h) of wall time")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.providers.split(","):
            out = run(kind, n, Path(tmp) / kind)
            calls, seen = out["calls"], out["server"]
            assert isinstance(calls, dict) and isinstance(seen, dict)
            total = sum(seen.values())  # what reached the server (SDK-internal calls too)
            wall = float(out["wall"])  # type: ignore[arg-type]
            live_usd, batch_usd = float(out["live_usd"]), float(out["batch_usd"])  # type: ignore[arg-type]
            print(f"\n== {kind} ({MODELS[kind]}): {out['answered']:,} answered, "
                  f"{out['refused']} refused, {out['batches']} batches")
            print(f"  batch: {total} HTTP calls {seen} (runner's calls: {calls}), wall "
                  f"{wall:.1f} s (loopback: the provider's processing time, up to 24 h, is "
                  "not included)")
            print(f"  live : {n:,} HTTP calls, {live_minutes * 60:,.0f} s at {LIVE_RPM} rpm")
            print(f"  cost : live ${live_usd:.2f}, batch ${batch_usd:.2f} "
                  f"({batch_usd / live_usd:.0%} of live)" if live_usd else "  cost: no price")


if __name__ == "__main__":
    main()
