// mike view: one page, no build step, nothing fetched from elsewhere.
// Every string from the runs (answers are untrusted model output) reaches the page
// through text nodes (textContent), never as HTML. The URL's query string is the whole
// state of a view, so every view has a permalink.
"use strict";

const SCORERS = ["em", "paper_f1", "token_f1", "likelihood", "wrong_language"];
const LABELS = ["source", "other", "target", "neutral", "none"];
const NUMERIC = new Set(["seq", "cost_usd", "likelihood_new", "likelihood_old", "input_tokens",
  "output_tokens", "reasoning_tokens", "item"]);
const TEXT = new Set(["question", "gold", "answer", "output", "error"]);
// A comparison's per-run columns: answer_2 is run 2's answer.
const PER_RUN = /^(answer|score|label)_(\d+)$/;

function kind(name) { const m = PER_RUN.exec(name); return m ? m[1] : name; }
let RUNS = [];

// A DOM element; string and number children become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") { for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn); }
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function params() { return new URLSearchParams(location.search); }

function link(changes, text, keep) {
  const next = keep ? params() : new URLSearchParams();
  for (const [key, value] of Object.entries(changes)) {
    if (value === "" || value === null || value === undefined) next.delete(key);
    else next.set(key, value);
  }
  const a = el("a", { href: "?" + next.toString() }, text);
  a.addEventListener("click", (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    history.pushState(null, "", a.href);
    render();
  });
  return a;
}

function go(query) { history.pushState(null, "", "?" + query.toString()); render(); }

async function api(path, query) {
  const started = performance.now();
  const response = await fetch(path + "?" + (query || new URLSearchParams()).toString());
  const body = await response.json();
  if (response.status === 503 && body.building) {
    // The rows' tables are still being built: render() shows the notice and asks again.
    throw Object.assign(new Error(body.message), { building: body });
  }
  if (!response.ok) throw new Error(body.error || response.statusText);
  const took = body && body.took_ms !== undefined ? `, query ${body.took_ms} ms` : "";
  document.getElementById("status").textContent =
    `${path}: ${Math.round(performance.now() - started)} ms${took}`;
  return body;
}

function fmt(value, digits) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return Number.isInteger(value) && !digits ? String(value)
    : value.toFixed(digits === undefined ? 3 : digits);
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

function cell(name, value) {
  const classes = [];
  if (NUMERIC.has(name) || name.startsWith("score_")) classes.push("num");
  if (TEXT.has(kind(name))) classes.push("text");
  if (name.startsWith("score_")) {
    if (value !== null && value !== undefined) classes.push(value >= 0.5 ? "right" : "wrong");
  }
  // dir=auto: an Arabic or Hebrew answer reads right to left, inside its own cell.
  return el("td", { className: classes.join(" "), dir: TEXT.has(kind(name)) ? "auto" : null,
                    "data-col": name }, fmt(value, name === "cost_usd" ? 6 : undefined));
}

function nav(query) {
  const view = query.get("view") || "summary";
  const run = query.get("run") || "0";
  const items = [["summary", "Summary"], ["rows", "Rows"]];
  if (RUNS.length > 1) items.push(["compare", "Compare runs"]);
  const node = document.getElementById("nav");
  node.replaceChildren(...items.map(([name, text]) => {
    const a = link(name === "compare" ? { view: name, a: run, b: run === "0" ? "1" : "0",
                                          runs: RUNS.map((r) => r.index).join(",") }
      : { view: name, run }, text);
    if (name === view) a.className = "current";
    return a;
  }));
  if (RUNS.length > 1 && view !== "compare") {
    const select = el("select", { id: "run-select", on: { change: () => {
      const next = params(); next.set("run", select.value); next.delete("offset"); go(next);
    } } }, RUNS.map((r) => el("option", { value: r.index, selected: String(r.index) === run },
      `${r.index}: ${r.label}`)));
    node.append(" run ", select);
  }
}

function describeRun(run) {
  const backend = run.backend || {};
  const strategy = (run.strategy || {}).name;
  const rows = run.rows === null || run.rows === undefined ? "" : `${run.rows} rows `;
  return `${run.label}: ${backend.kind} ${backend.model}, strategy ${strategy}, ` +
    `${rows}(${run.sources.join(", ")})`;
}

// The build's state under the summary: indexing (polled until done) or its failure.
function buildNotice(build) {
  if (build.error) return el("p", { className: "error", id: "build-error" }, build.error);
  if (!build.building) return null;
  const done = build.done === null ? "" : ` ${Math.round(build.done * 100)}% done.`;
  return el("p", { className: "meta", id: "indexing" }, build.message + done);
}

async function showSummary(main, query) {
  const run = query.get("run") || "0";
  const data = await api("/api/summary", new URLSearchParams({ run }));
  const summary = data.summary;
  main.replaceChildren(el("h2", {}, "Summary"), el("p", { className: "meta" },
    describeRun(data.run)), buildNotice(data.build) || []);
  if (data.build.building) poll();
  if (!summary && data.build.building) return;  // shards: merged by the build
  if (!summary) {
    main.append(el("p", { className: "error" }, "This run has no summary.json yet (it has not " +
      "finished): the heatmap needs it. Its rows are in the Rows view; re-run the same " +
      "`mike eval` command to finish it."));
    return;
  }
  const scorer = query.get("scorer") || "em";
  const sources = [...new Set(summary.results.map((r) => r.source_lang))];
  const source = query.get("source") || sources[0];
  const controls = el("p", {}, "value: ", ...SCORERS.filter((s) =>
    summary.results.some((r) => r[s] !== null && r[s] !== undefined)).map((s) =>
    s === scorer ? el("strong", {}, s + " ") : [link({ scorer: s }, s, true), " "]));
  if (sources.length > 1) {
    controls.append(" source: ", ...sources.map((s) => s === source ? el("strong", {}, s + " ")
      : [link({ source: s }, s, true), " "]));
  }
  main.append(controls);
  const groups = summary.results.filter((r) => r.source_lang === source);
  const columns = [...new Set(groups.map((r) => `${r.task}/${r.metric}`))];
  const targets = [...new Set(groups.map((r) => r.target_lang))];
  const byKey = new Map(groups.map((r) => [`${r.task}/${r.metric}/${r.target_lang}`, r]));
  const higherIsWorse = scorer === "wrong_language";
  const table = el("table", { className: "heatmap", id: "heatmap" },
    el("tr", {}, el("th", {}, `${source} > target`), columns.map((c) => el("th", {}, c))));
  for (const target of targets) {
    const tr = el("tr", {}, el("th", {}, target));
    for (const column of columns) {
      const [task, metric] = column.split("/");
      const group = byKey.get(`${column}/${target}`);
      const value = group ? group[scorer] : null;
      const td = el("td", { "data-cell": `${task}/${source}/${target}/${metric}`,
                            title: group ? `n=${group.n}` : "" });
      if (value !== null && value !== undefined) {
        const good = higherIsWorse ? 100 - value : value;
        td.style.background = `hsl(${Math.round(good * 1.2)}, 70%, 85%)`;
      }
      const rowScorer = scorer === "wrong_language" || scorer === "likelihood" ? "em" : scorer;
      td.append(group ? link({ view: "rows", run, task, source, target, metric,
                               scorer: rowScorer }, fmt(value, 2)) : "");
      tr.append(td);
    }
    table.append(tr);
  }
  main.append(table);
  const totals = summary.totals || {};
  main.append(el("p", { className: "meta" }, "Totals: " + Object.entries(totals)
    .map(([k, v]) => `${k}=${fmt(v, k === "cost_usd" ? 6 : undefined)}`).join(", ")));
  if (summary.cost_note) main.append(el("p", { className: "meta" }, summary.cost_note));
}

function filterForm(query, facets, scorers, extra) {
  const field = (name, label, options) => el("label", {}, label, el("select", { name },
    el("option", { value: "" }, "all"), options.map((o) => el("option",
      { value: o, selected: query.get(name) === o }, o))));
  const input = (name, label, attrs) => el("label", {}, label, el("input",
    { name, value: query.get(name) || "", ...attrs }));
  const form = el("form", { className: "filters", id: "filters" },
    extra || [],
    field("task", "task", facets.task), field("source", "source", facets.source),
    field("target", "target", facets.target), field("metric", "metric", facets.metric),
    field("script", "script", facets.script), field("family", "family", facets.family),
    field("label", "answer language", LABELS),
    el("label", {}, "scorer", el("select", { name: "scorer" }, scorers.map((s) =>
      el("option", { value: s, selected: (query.get("scorer") || "em") === s }, s)))),
    input("min", "score ≥", { type: "number", step: "0.01", min: 0, max: 1 }),
    input("max", "score ≤", { type: "number", step: "0.01", min: 0, max: 1 }),
    el("label", {}, "errors", el("select", { name: "errors" }, [["", "all rows"],
      ["only", "errors only"], ["none", "no errors"]].map(([v, t]) => el("option",
      { value: v, selected: (query.get("errors") || "") === v }, t)))),
    input("q", "text in question, gold, answer", { type: "search", size: 24 }),
    el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const key of ["view", "run", "sort", "desc"]) {
      if (query.get(key)) next.set(key, query.get(key));
    }
    const shown = [];
    for (const [key, value] of new FormData(form).entries()) {
      if (key === "runs") shown.push(value);
      else if (value !== "") next.set(key, value);
    }
    if (shown.length) next.set("runs", shown.join(","));
    go(next);
  });
  return form;
}

function pager(query, total, limit) {
  const offset = Number(query.get("offset") || 0);
  const box = el("div", { className: "pager" },
    el("span", { id: "total" }, `${total} rows`),
    `showing ${total ? offset + 1 : 0}–${Math.min(offset + limit, total)}`);
  if (offset > 0) box.append(link({ offset: Math.max(0, offset - limit) || "" }, "◀ previous", true));
  if (offset + limit < total) box.append(link({ offset: offset + limit }, "next ▶", true));
  return box;
}

function header(query, columns) {
  const sort = query.get("sort") || "seq";
  const desc = query.get("desc") === "true";
  const a = query.get("a") || "0";
  return el("tr", {}, columns.map((name) => {
    // A comparison sorts by run A's columns; other runs' columns are not sortable.
    const perRun = PER_RUN.exec(name);
    const label = perRun ? `${perRun[1]} · ${(RUNS[Number(perRun[2])] || {}).label}` : name;
    const column = !perRun ? name : perRun[2] === a && perRun[1] !== "score" ? perRun[1] : null;
    if (!column) return el("th", {}, label);
    const mark = column === sort ? (desc ? " ▼" : " ▲") : "";
    return el("th", { className: "sortable" }, link({ sort: column,
      desc: column === sort && !desc ? "true" : "", offset: "" }, label + mark, true));
  }));
}

async function showRows(main, query, compare) {
  const run = compare ? query.get("a") || "0" : query.get("run") || "0";
  const meta = await api("/api/summary", new URLSearchParams({ run }));
  const path = compare ? "/api/compare" : "/api/rows";
  const data = await api(path, query);
  const limit = Number(query.get("limit") || 50);
  const shown = new Set((data.runs || []).map(String));
  const extra = compare ? [
    el("fieldset", { id: "runs" }, el("legend", {}, "runs side by side"),
      RUNS.map((r) => el("label", {}, el("input", { type: "checkbox", name: "runs",
        value: r.index, checked: shown.has(String(r.index)) }), `${r.index}: ${r.label}`))),
    el("label", {}, "run A", runSelect("a", query.get("a") || "0")),
    el("label", {}, "run B", runSelect("b", query.get("b") || "1")),
    el("label", {}, "pair", el("select", { name: "pair" }, [["all", "all items"],
      ["a_right_b_wrong", "right in A, wrong in B"], ["a_wrong_b_right", "wrong in A, right in B"],
      ["differ", "scored differently"], ["same", "scored the same"]].map(([v, t]) =>
      el("option", { value: v, selected: (query.get("pair") || "all") === v }, t))))] : null;
  const title = compare ? "Compare runs (paired by item id; filters apply to run A; right: " +
    "score ≥ 0.5)" : "Rows";
  main.replaceChildren(el("h2", {}, title),
    el("p", { className: "meta" }, describeRun(meta.run)),
    filterForm(query, meta.facets, meta.run.scorers, extra), pager(query, data.total, limit));
  const table = el("table", { id: "rows" }, header(query, data.columns));
  for (const values of data.rows) {
    const tr = el("tr", {});
    data.columns.forEach((name, i) => {
      if (name === "id") {
        tr.append(el("td", {}, link({ view: "row", run, id: values[i] }, values[i])));
      } else tr.append(cell(name, values[i]));
    });
    table.append(tr);
  }
  main.append(table, pager(query, data.total, limit));
}

function runSelect(name, current) {
  return el("select", { name }, RUNS.map((r) => el("option",
    { value: r.index, selected: String(r.index) === current }, `${r.index}: ${r.label}`)));
}

function promptView(parts, id) {
  // Each part's exact text in its own <pre>; demonstration blocks start folded.
  return el("div", { className: "prompt", id }, parts.map((part) => part.block
    ? el("details", { className: "block" }, el("summary", {},
      `demonstrations (block ${part.block}, ${part.text.length} characters)`),
      el("pre", { className: "part", dir: "auto" }, part.text))
    : el("pre", { className: "part", dir: "auto" }, part.text)));
}

async function showRow(main, query) {
  const run = query.get("run") || "0";
  const data = await api("/api/row", new URLSearchParams({ run, id: query.get("id") || "" }));
  const info = RUNS[Number(run)] || {};
  const row = data.row;
  main.replaceChildren(el("h2", {}, row.id), el("p", { className: "meta" },
    link({ view: "rows", run, task: row.task, source: row.source, target: row.target,
           metric: row.metric }, "◀ the rows of this cell")));
  main.append(el("dl", { className: "fields", id: "fields" }, Object.entries(row).flatMap(
    ([key, value]) => [el("dt", {}, key), el("dd", { dir: TEXT.has(key) ? "auto" : null,
                                                      "data-field": key }, fmt(value))])));
  main.append(el("h3", {}, "Request"));
  if (!data.stored) {
    main.append(el("p", { className: "error" }, "The prompt store (prompts.jsonl.gz) has no " +
      "request for this row's cache key."));
  }
  if (data.request.prompt) main.append(promptView(data.request.prompt, "prompt"));
  if (data.request.messages) {
    data.request.messages.forEach((message, i) => main.append(el("h4", {}, message.role),
      promptView(message.parts, `message-${i}`)));
  }
  const settings = JSON.stringify({ backend: info.backend, strategy: info.strategy,
                                    requests: info.requests, cache_key: row.cache_key }, null, 2);
  // Lists of numbers (demonstration positions) on one line each.
  main.append(el("h3", {}, "Request settings"), el("pre", { className: "part", id: "settings" },
    settings.replace(/\[\s+([-\d.,\s]+?)\s+\]/g, (_, inner) => `[${inner.replace(/\s+/g, " ")}]`)));
}

async function render() {
  delete document.body.dataset.ready;  // set again once this view is on screen
  const query = params();
  const main = document.getElementById("main");
  nav(query);
  try {
    const view = query.get("view") || "summary";
    if (view === "rows") await showRows(main, query, false);
    else if (view === "compare") await showRows(main, query, true);
    else if (view === "row") await showRow(main, query);
    else await showSummary(main, query);
  } catch (error) {
    if (error.building) {
      main.replaceChildren(buildNotice(error.building));
      poll();
    } else {
      main.replaceChildren(el("p", { className: "error", id: "error" }, String(error.message)));
    }
  }
  document.body.dataset.ready = String(Date.now());
}

// Render the same view again in a second (while the rows are indexed), unless the
// reader has moved to another view meanwhile.
let polling = null;
function poll() {
  const url = location.href;
  clearTimeout(polling);
  polling = setTimeout(() => { if (location.href === url) render(); }, 1000);
}

async function start() {
  RUNS = await (await fetch("/api/runs")).json();
  window.addEventListener("popstate", render);
  render();
}

start();
