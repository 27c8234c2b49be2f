"""Regenerate ``mike_sdk/data/data_files.json`` (the pinned BMIKE-53 manifest) from a local copy.

Usage: ``python bench/make_data_files.py <folder> [--out PATH] [--commit SHA]``

``<folder>`` is a checkout of ``ercong21/MultiKnow`` (or a copy laid out like one), i.e. the
folder that contains ``data/``; passing the ``data`` folder itself works too. Only metadata
(path, size, sha256) is written, never the data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mike_sdk.data.download import sha256_file

REPOSITORY = "ercong21/MultiKnow"
COMMIT = "6e3e245bf0a17edaecfb4d71664efc1b5fb67906"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "mike_sdk" / "data" / "data_files.json"


def build_manifest(folder: Path, *, repository: str = REPOSITORY,
                   commit: str = COMMIT) -> dict[str, Any]:
    """The manifest of every file under ``folder/data``, paths relative to the repo root."""
    root = folder.parent if folder.name == "data" else folder
    data = root / "data"
    if not data.is_dir():
        raise SystemExit(f"{data} is not a folder: pass the folder that contains data/.")
    entries = []
    for path in sorted(data.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        # Hidden files (.DS_Store, editor droppings) are not part of the benchmark.
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        entries.append({"path": path.relative_to(root).as_posix(), "size": path.stat().st_size,
                        "sha256": sha256_file(path)})
    if not entries:
        raise SystemExit(f"No files under {data}.")
    return {
        "repository": repository,
        "commit": commit,
        "base_url": f"https://raw.githubusercontent.com/{repository}/{commit}/",
        "files": entries,
    }


def render(manifest: dict[str, Any]) -> str:
    """The manifest as JSON with one file per line, so a data update reads well in a diff."""
    head = {k: v for k, v in manifest.items() if k != "files"}
    lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    rows = [f"  {json.dumps(entry, ensure_ascii=False)}" for entry in manifest["files"]]
    return "{\n" + "\n".join(lines) + '\n "files": [\n' + ",\n".join(rows) + "\n ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    """Write the manifest and print a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folder", type=Path, help="folder containing data/ (a MultiKnow checkout)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    parser.add_argument("--repository", default=REPOSITORY, help="GitHub owner/name")
    parser.add_argument("--commit", default=COMMIT, help="the commit the copy was taken from")
    args = parser.parse_args(argv)
    manifest = build_manifest(args.folder, repository=args.repository, commit=args.commit)
    args.out.write_text(render(manifest), encoding="utf-8")
    total = sum(int(entry["size"]) for entry in manifest["files"])
    print(f"{args.out}: {len(manifest['files'])} files, {total:,} bytes, commit {args.commit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
