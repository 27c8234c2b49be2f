"""A run folder read into DuckDB by DuckDB itself: no Python object per row.

DuckDB's JSON reader parses the results file (``.jsonl`` or ``.jsonl.gz``, by its
extension) with the columns of :mod:`~mike_sdk.view.rowschema`, in parallel and in C++;
SQL then does what the run-folder readers do in Python: the fields a line leaves out
because its id says them (``task/source>target/index/metric``) come from the id, and
each item keeps one row as :func:`~mike_sdk.runfolder.rundir.final_rows` keeps it (its
first answered row, else its first refused row, those after the others). The prompt
store is read the same way. Trust is kept without validating every row in Python: the
manifest is read by the run-folder reader (present, not of a newer format), and one SQL
pass checks what a row must hold (its required fields, a known task and metric, an id
of four parts); a file that fails any of it is handed to the run-folder reader, whose
error names the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from mike_sdk.data.families import LANGUAGE_INFO
from mike_sdk.errors import ConfigError
from mike_sdk.records import METRICS, TASKS
from mike_sdk.runfolder.files import PROMPTS
from mike_sdk.runfolder.members import complete_lines
from mike_sdk.runfolder.rundir import iter_result_rows, results_file
from mike_sdk.scoring.confusion import Label
from mike_sdk.view.rowschema import REQUIRED, row_columns

__all__ = ["load_prompts", "load_rows", "write_rows"]

#: Columns the free-text filter searches (the table's ``haystack``, lower-cased).
TEXT_COLUMNS = ("question", "gold", "answer")


def _literal(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _scan(columns: dict[str, str]) -> str:
    """A JSON-lines file (the query's first parameter) as rows of ``columns``, each
    with its line number (``ordinality``, from 1)."""
    spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    return f"read_json(?, format='newline_delimited', columns={spec}) WITH ORDINALITY"


def _read(con: Any, path: Path, scratch: Path, sql: str) -> Path:
    """Run ``sql`` (a query of :func:`_scan`) over ``path``; returns the file it read:
    ``path``, or a copy without a torn tail (a killed write), left out as the readers
    leave it out."""
    import duckdb

    source = _complete(path, scratch) if path.suffix != ".gz" else path
    try:
        con.execute(sql, [str(source)])
    except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException):
        if path.suffix != ".gz":
            raise
        source = _complete(path, scratch)  # a torn last gzip member: read the whole ones
        con.execute(sql, [str(source)])
    return source


def _complete(path: Path, scratch: Path) -> Path:
    """``path``, or a plain copy of its complete lines (a gzip file's: of its complete
    members) in ``scratch`` when a killed write left a torn tail."""
    if path.suffix != ".gz":
        size = path.stat().st_size
        with path.open("rb") as fh:
            fh.seek(max(0, size - 1))
            if size == 0 or fh.read(1) == b"\n":
                return path
    copy = scratch / f"complete-{path.name.removesuffix('.gz')}"
    with copy.open("wb") as out:
        for _, line in complete_lines(path):
            out.write(line)
    return copy


def _refuse(path: Path, problem: str) -> ConfigError:
    """The run-folder reader's error for the first bad line, or ``problem``."""
    for _ in iter_result_rows(path):  # raises, naming file and line, on a bad row
        pass
    return ConfigError(f"{path}: {problem}. The file is damaged or was not written by "
                       "mike-sdk: re-run into a new --run-dir.")


def load_rows(con: Any, folder: Path, scorers: list[str], with_request: bool,
              scratch: Path) -> tuple[int, Path]:
    """Read and check the results file into the temporary ``chosen`` (each item's kept
    line, its ``seq`` and what its id says) and, for rows of format 0/1 that hold their
    request, ``inline_requests``; returns the items and the file to read them from."""
    import duckdb

    path = results_file(folder)
    missing = " OR ".join(f"{name} IS NULL" for name in REQUIRED)
    request = ", cache_key, prompt, messages" if with_request else ""
    # The narrow columns only: the wide ones are read again, for the chosen lines only,
    # by write_rows (parsing twice costs less than holding every line in memory).
    try:
        source = _read(con, path, scratch, f"""
            CREATE TEMP TABLE raw AS
            SELECT ordinality, id, error, task, source_lang, target_lang, "index", metric,
                   {missing} OR answer_language.label NOT IN {_literal(get_args(Label))}
                       AS lacks{request}
            FROM {_scan(row_columns(scorers, with_request))}""")
    except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        raise _refuse(path, f"DuckDB could not read it ({str(exc).splitlines()[0]})") from None
    # One pass over narrow columns: final_rows's choice (an item's first answered line,
    # else its first refused one, those after the others), what a line of format 2
    # leaves out because its id says it (``task/source>target/index/metric``; once per
    # item), and the first line lacking a field every row has.
    con.execute("""
        CREATE TEMP TABLE chosen AS
        SELECT coalesce(answered, refused) AS line,
               row_number() OVER (ORDER BY answered IS NULL, coalesce(answered, refused))
                   - 1 AS seq,
               coalesce(task, parts[1]) AS task, coalesce(source, pair[1]) AS source,
               coalesce(target, pair[2]) AS target,
               coalesce(item, try_cast(parts[3] AS BIGINT)) AS item,
               coalesce(metric, parts[4]) AS metric, bad,
               id IS NOT NULL AND (len(parts) <> 4 OR len(pair) <> 2) AS malformed
        FROM (SELECT *, string_split(parts[2], '>') AS pair FROM (
              SELECT id, string_split(id, '/') AS parts,
                     min(ordinality) FILTER (WHERE error IS NULL) AS answered,
                     min(ordinality) FILTER (WHERE error IS NOT NULL) AS refused,
                     any_value(task) AS task, any_value(source_lang) AS source,
                     any_value(target_lang) AS target, any_value("index") AS item,
                     any_value(metric) AS metric,
                     min(ordinality) FILTER (WHERE lacks) AS bad
              FROM raw GROUP BY id))""")
    found = con.execute(
        f"SELECT least(min(bad), min(line) FILTER (WHERE task NOT IN {_literal(TASKS)} OR "
        f"metric NOT IN {_literal(METRICS)} OR item IS NULL OR source = '' OR target = '' "
        f"OR malformed)) FROM chosen").fetchone()
    if found is not None and found[0] is not None:
        raise _refuse(path, f"line {found[0]} is not a result row")
    con.execute("ALTER TABLE chosen DROP COLUMN bad")
    con.execute("ALTER TABLE chosen DROP COLUMN malformed")
    if with_request:
        con.execute("""
            CREATE TEMP TABLE inline_requests AS SELECT cache_key AS key,
                CASE WHEN prompt IS NOT NULL THEN to_json([prompt]) END AS prompt,
                CASE WHEN messages IS NOT NULL THEN to_json(list_transform(
                    from_json(messages, '[{"role": "VARCHAR", "content": "VARCHAR"}]'),
                    lambda m: json_array(m.role, json_array(m.content)))) END AS messages
            FROM raw""")
    con.execute("DROP TABLE raw")
    count = con.execute("SELECT count(*) FROM chosen").fetchone()
    return (int(count[0]) if count else 0), source


def write_rows(con: Any, source: Path, scorers: list[str]) -> None:
    """Create the ``rows`` table from the results file ``source``, ``chosen`` and
    ``questions``: one flat record per item, with its request's question and the
    lower-cased search column."""
    languages = ", ".join(f"('{code}', '{info.script}', '{info.family}')"
                          for code, info in LANGUAGE_INFO.items())
    scores = "".join(f', r.scores."{s}" AS "score_{s}"' for s in scorers)
    search = ", ".join(f"coalesce({c}, '')" for c in TEXT_COLUMNS)
    con.execute(f"""
        CREATE TABLE rows AS
        SELECT *, lower(concat_ws(chr(31), {search})) AS haystack FROM (
        SELECT c.seq, r.id, c.task, c.source, c.target, c.item, r.case_id, c.metric,
               r.gold, r.answer, r.output,
               r.answer_language.label AS label, r.answer_language.detected AS detected,
               r.likelihood.new_logprob AS likelihood_new,
               r.likelihood.old_logprob AS likelihood_old,
               r.likelihood.new_logprob > r.likelihood.old_logprob AS likelihood_won,
               r.cached, r.input_tokens, r.output_tokens, r.reasoning_tokens, r.cost_usd,
               r.finish_reason, r.error, r.cache_key, l.script, l.family{scores}, q.question
        FROM {_scan(row_columns(scorers, with_request=False))} r
             JOIN chosen c ON r.ordinality = c.line
             LEFT JOIN (VALUES {languages}) l(code, script, family) ON l.code = c.target
             LEFT JOIN questions q ON q.key = r.cache_key)""", [str(source)])
    for table in ("chosen", "questions", "inline_requests"):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _question(text: str) -> str:
    """SQL of the question a request asks: of a column ``text`` (its prompt's last text
    part, or its last message's, without trailing newlines), what follows its last blank
    line (``rsplit('\n\n', 1)[-1]``: the edit and question, no demonstrations)."""
    return (f"CASE WHEN contains({text}, chr(10) || chr(10)) THEN regexp_extract("
            f"{text}, '(?s)^.*\n\n(.*)$', 1) ELSE {text} END")


def load_prompts(con: Any, folder: Path, inline: bool, scratch: Path) -> None:
    """Create ``requests`` (prompt and messages as stored parts, by key) and ``blocks``
    from the prompt store (and the rows' own requests, ``inline``), and the temporary
    ``questions`` (each key's question)."""
    path = folder / PROMPTS
    columns = {"b": "VARCHAR", "t": "VARCHAR", "k": "VARCHAR", "p": "JSON", "m": "JSON"}
    if path.is_file() and path.stat().st_size:
        _read(con, path, scratch, f"CREATE TEMP TABLE entries AS SELECT * FROM {_scan(columns)}")
    else:
        con.execute("CREATE TEMP TABLE entries (b VARCHAR, t VARCHAR, k VARCHAR, p JSON, "
                    "m JSON, ordinality BIGINT)")
    if inline:
        con.execute("INSERT INTO entries SELECT NULL, NULL, key, prompt, messages, NULL "
                    "FROM inline_requests")
    # The question is the tail of the prompt's last text part, or of the last message's.
    # (Its JSON ends in '"]' when that is text, '}]' when a block.)
    tail = ("CASE WHEN ends_with(p, '\"]') THEN p->>'$[#-1]' WHEN ends_with(m, '\"]]]') "
            "THEN m->>'$[#-1][1][#-1]' ELSE '' END")
    # A key is stored once per folder (merged shards may repeat it, with the same
    # request): no grouping, a row's request is the first its key finds.
    con.execute("CREATE TABLE requests AS SELECT k AS key, p::VARCHAR AS prompt, "
                "m::VARCHAR AS messages FROM entries WHERE k IS NOT NULL")
    con.execute(f"""
        CREATE TEMP TABLE questions AS SELECT key, any_value({_question('tail')}) AS question
        FROM (SELECT key, CASE WHEN ends_with(tail, chr(10)) THEN rtrim(tail, chr(10))
                               ELSE tail END AS tail
              FROM (SELECT k AS key, {tail} AS tail FROM entries WHERE k IS NOT NULL))
        GROUP BY key""")
    con.execute("CREATE TABLE blocks AS SELECT b AS block, any_value(t) AS text "
                "FROM entries WHERE b IS NOT NULL GROUP BY b")
    con.execute("DROP TABLE entries")
