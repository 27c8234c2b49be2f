"""One self-contained HTML page: tables inline, figures embedded as base64 PNG."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from mike_sdk.report.tables import Table

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
p.note { color: #555; font-size: 0.85em; margin: 0; }
figure { margin: 1em 0; } img { max-width: 100%; }
"""


def table_html(table: Table) -> str:
    """A titled HTML table."""
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = "\n".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                     for row in table.rows)
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (f"<h3>{escape(table.title)}</h3>\n{note}\n<table>\n<thead><tr>{head}</tr></thead>"
            f"\n<tbody>\n{body}\n</tbody>\n</table>")


def image_html(path: Path, caption: str) -> str:
    """A figure with its PNG inlined, so the page needs no other file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def page(title: str, intro: list[str], sections: list[tuple[str, list[str]]]) -> str:
    """The whole document; ``sections`` are (heading, already-rendered HTML blocks)."""
    parts = [f"<h1>{escape(title)}</h1>", *(f"<p>{escape(line)}</p>" for line in intro)]
    for heading, blocks in sections:
        parts.append(f"<h2>{escape(heading)}</h2>")
        parts.extend(blocks)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")
