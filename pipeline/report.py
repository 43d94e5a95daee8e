"""`curate report OUT`: one self-contained HTML page about a run.

Everything the page shows comes from the manifests and the stage outputs: numbers, and figures drawn
as inline SVG (`pipeline/svg_chart.py`), so it opens offline and can be mailed around. Numbers carry
`data-*` attributes, figures `data-figure`, so tests (and scripts) can read them back.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import storage, svg_chart
from pipeline.io import atomic_open, read_json_or_none
from pipeline.run_view import RunView

SCORE_COLUMNS = ("quality_score", "lang_score", "domain_score", "gopher_mean_word_length", "fineweb_line_punct_ratio")
CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}h2{border-bottom:1px solid #ddd;margin-top:2em}
pre{white-space:pre-wrap;background:#f8f8f8;padding:6px;max-height:9em;overflow:auto;font-size:12px}
img{max-width:100%}.muted{color:#777}nav ul{columns:2}table.pair td{vertical-align:top;text-align:left;width:50%}"""
SECTIONS = (("funnel", "Funnel"), ("reasons", "Removals by reason"), ("code", "Source code"), ("math", "Math"),
            ("scores", "Score distributions"), ("mix", "Language, domain and token mix"), ("synth", "Synthetic data"))


def _figure(name: str, svg: str) -> str:
    return f'<figure data-figure="{_esc(name)}">{svg}</figure>'


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _funnel(view: RunView) -> str:
    stats = view.stats()
    rows = []
    for _, r in stats.iterrows():
        cells = "".join(f'<td data-stage="{_esc(r["stage"])}" data-field="{f}">{_esc(_num(r[f]))}</td>'
                        for f in ("in", "added", "kept", "removed", "tokens", "seconds"))
        rows.append(f'<tr><td class="l">{_esc(r["stage"])}</td><td class="l">{_esc(r["kind"])}</td>'
                    f'<td class="l">{_esc(r["state"])}</td>{cells}</tr>')
    head = "".join(f"<th>{h}</th>" for h in ("in", "added", "kept", "removed", "tokens", "seconds"))
    table = (f'<table id="funnel-table"><tr><th class="l">stage</th><th class="l">kind</th><th class="l">state</th>'
             f'{head}</tr>{"".join(rows)}</table>')
    return f'<h2 id="funnel">Funnel</h2>{table}{_funnel_figure(stats)}'


def _funnel_figure(stats: pd.DataFrame) -> str:
    """Kept and removed documents per finished stage (what `RunView.plot_funnel` draws)."""
    done = stats[stats["state"] == "done"]
    values = {f: [float(v) if v == v else 0.0 for v in done[f]] for f in ("kept", "removed")}
    return _figure("funnel", svg_chart.bars(list(done["stage"]), [("kept", values["kept"]),
                                                                   ("removed", values["removed"])],
                                            "Documents per stage", "stage", "documents", stacked=True))


def _num(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _reasons(view: RunView, examples: int = 2) -> str:
    parts = ['<h2 id="reasons">Removals by reason</h2><table id="reasons-table"><tr><th class="l">stage</th>'
             '<th class="l">reason</th><th>documents</th></tr>']
    blocks = []
    for name in view.stage_names():
        manifest = view.manifest(name) or {}
        by_reason = manifest.get("counts", {}).get("by_reason") or {}
        for reason, count in by_reason.items():
            parts.append(f'<tr><td class="l">{_esc(name)}</td><td class="l">{_esc(reason)}</td>'
                         f'<td data-stage="{_esc(name)}" data-reason="{_esc(reason)}">{count}</td></tr>')
        wanted = [r for r in by_reason if not r.startswith("quarantine:")]
        samples = view.removed_examples(name, wanted, ["id", "text", "reason"], examples) if wanted else {}
        for reason in wanted:
            for _, row in samples[reason].iterrows():
                blocks.append(_example(view, name, row))
    parts.append("</table>")
    if blocks:
        parts.append("<h3>Examples</h3>" + "".join(blocks))
    return "".join(parts)


def _example(view: RunView, stage: str, row: Any) -> str:
    """One removed document; a duplicate (`...:of=<id>`) beside the document it duplicates."""
    head = f'<p class="muted">{_esc(stage)} · {_esc(row["reason"])} · {_esc(row["id"])}</p>'
    reason = str(row["reason"])
    if ":of=" in reason:
        survivor_id = reason.split(":of=", 1)[1]
        survivor = view._find(view.path / stage / "data", survivor_id)
        if not survivor.empty:
            return (f'{head}<table class="pair" data-duplicate-of="{_esc(survivor_id)}"><tr><th>removed '
                    f'{_esc(row["id"])}</th><th>kept {_esc(survivor_id)}</th></tr><tr><td><pre>'
                    f'{_esc(str(row["text"])[:600])}</pre></td><td><pre>{_esc(str(survivor.iloc[0]["text"])[:600])}'
                    "</pre></td></tr></table>")
    return f"{head}<pre>{_esc(str(row['text'])[:600])}</pre>"


def _code(view: RunView) -> str:
    """The code funnel: files ingest skipped (binary, non-UTF-8, ...), then per stage the code documents
    (those with a `language`) removed, by reason, with the languages they were in."""
    head = '<h2 id="code">Source code</h2>'
    skipped = ((view.manifest("ingest") or {}).get("stats") or {}).get("skipped") or {}
    rows = []
    has_code = False
    for name in view.stage_names():
        try:
            frame = view.removed(name, columns=["language", "reason"])
        except Exception:  # no code columns in this stage's output (or no removed documents)
            continue
        has_code = True
        frame = frame[frame["language"].notna()] if not frame.empty else frame
        for reason, group in (frame.groupby(frame["reason"].str.split(":of=").str[0]) if not frame.empty else []):
            langs = ", ".join(f"{k} {v}" for k, v in group["language"].value_counts().head(4).items())
            rows.append(f'<tr><td class="l">{_esc(name)}</td><td class="l">{_esc(reason)}</td>'
                        f'<td data-code-stage="{_esc(name)}" data-reason="{_esc(reason)}">{len(group)}</td>'
                        f'<td class="l">{_esc(langs)}</td></tr>')
    skip = ", ".join(f"{k}: {v}" for k, v in skipped.items() if not k.startswith(("record_type", "http_status",
                                                                                     "content_type")))
    table = ('<table id="code-table"><tr><th class="l">stage</th><th class="l">reason</th><th>files</th>'
             f'<th class="l">languages</th></tr>{"".join(rows)}</table>')
    note = f'<p class="muted">files not ingested: {_esc(skip)}</p>' if skip else ""
    if not has_code and not skip:
        return head + '<p class="muted">no source-code input in this run</p>'
    return head + note + (table if rows else '<p class="muted">no code document was removed</p>')


def _math(view: RunView) -> str:
    """The math funnel: documents math_detect measured and called math (and by which source), then per later
    stage the math documents removed, by reason, and how many reach the end of the run."""
    head = '<h2 id="math">Math</h2>'
    names = view.stage_names()
    kinds = view.stage_kinds()
    detect = [n for n in names if kinds.get(n) == "math_detect" and view.manifest(n)]
    if not detect:
        return head + '<p class="muted">no math_detect stage in this run</p>'
    name = detect[0]
    stats = (view.manifest(name) or {}).get("stats") or {}
    found = view.docs(name, columns=["source", "is_math"])
    by_source = found[found["is_math"].fillna(False).astype(bool)]["source"].value_counts()
    sources = ", ".join(f"{k} {v}" for k, v in by_source.items())
    rows = [f'<tr><td class="l">{_esc(name)}</td><td class="l">found</td>'
            f'<td data-math-stage="{_esc(name)}" data-reason="found">{int(stats.get("math", 0))}</td>'
            f'<td class="l">of {int(stats.get("math_measured", 0))} measured; {_esc(sources)}</td></tr>']
    for later in names[names.index(name) + 1:]:
        try:
            frame = view.removed(later, columns=["is_math", "reason"])
        except Exception:  # no removed documents, or a stage that writes no partitions
            continue
        frame = frame[frame["is_math"].fillna(False).astype(bool)] if not frame.empty else frame
        for reason, group in (frame.groupby(frame["reason"].str.split(":of=").str[0]) if not frame.empty else []):
            rows.append(f'<tr><td class="l">{_esc(later)}</td><td class="l">{_esc(reason)}</td>'
                        f'<td data-math-stage="{_esc(later)}" data-reason="{_esc(reason)}">{len(group)}</td>'
                        '<td class="l"></td></tr>')
    for last in reversed(names[names.index(name):]):
        if kinds.get(last) == "shard" or not view.manifest(last):
            continue
        try:
            kept = int(view.docs(last, columns=["is_math"])["is_math"].fillna(False).astype(bool).sum())
        except Exception:  # this stage's output has no is_math column: try the one before
            continue
        rows.append(f'<tr><td class="l">{_esc(last)}</td><td class="l">kept</td><td data-math-stage="{_esc(last)}" '
                    f'data-reason="kept">{kept}</td><td class="l">math documents after the last stage</td></tr>')
        break
    return (head + '<table id="math-table"><tr><th class="l">stage</th><th class="l">what</th><th>documents</th>'
            f'<th class="l"></th></tr>{"".join(rows)}</table>')


def _rule_columns(view: RunView) -> list[str]:
    """Signal columns of the heuristic rules that removed documents (`gopher_quality:mean_word_length`
    -> `gopher_mean_word_length`), so each gets a histogram with its thresholds."""
    out = []
    for name in view.stage_names():
        for reason in ((view.manifest(name) or {}).get("counts", {}).get("by_reason") or {}):
            family, _, rule = reason.partition(":")
            if rule and ":" not in rule and "=" not in rule and not reason.startswith(("quarantine", "quality")):
                column = f"{family.split('_')[0]}_{rule}"
                if column not in out:
                    out.append(column)
    return out


def _scores(view: RunView) -> str:
    figures = []
    for column in [*SCORE_COLUMNS, *(c for c in _rule_columns(view) if c not in SCORE_COLUMNS)]:
        edges, groups, marks, stage = view.score_histogram(column, by="decision")
        if stage is None or not groups:
            continue
        lines = "".join(f'<span data-threshold="{_esc(column)}" data-key="{_esc(k)}">{_esc(k)} = {v:.4g}</span> '
                        for k, v in view.thresholds(column, stage))
        svg = svg_chart.histogram(edges, groups, marks, f"{column} ({stage})", column)
        figures.append(f'<div data-score="{column}">{_figure(column, svg)}<p class="muted">{lines}</p></div>')
    return '<h2 id="scores">Score distributions</h2>' + ("".join(figures) or '<p class="muted">no score columns</p>')


def _mix(view: RunView) -> str:
    out = []
    final = _final_frame(view)
    for column in ("lang", "domain", "source"):
        if column in final.columns:  # documents without a value are counted too, as "(none)"
            counts = final[column].fillna("(none)").value_counts().sort_index()
            rows = "".join(f'<tr><td class="l">{_esc(k)}</td><td data-mix="{column}" data-key="{_esc(k)}">{v}</td></tr>'
                           for k, v in counts.items())
            out.append(f'<h3>{column}</h3><table id="mix-{column}"><tr><th class="l">{column}</th><th>documents</th>'
                       f"</tr>{rows}</table>")
    shards = read_json_or_none(view.path / "shards" / "manifest.json") or {}
    domains = shards.get("domains") or {}
    if domains:
        rows = "".join(
            f'<tr><td class="l">{_esc(d)}</td>'
            + "".join(f'<td data-domain="{_esc(d)}" data-field="{f}">{_esc(_num(r.get(f)))}</td>'
                      for f in ("available_tokens", "target_tokens", "realized_tokens", "epochs", "docs"))
            + f'<td class="l">{_esc(r.get("note") or "")}</td></tr>' for d, r in domains.items())
        out.append('<h3>Token budget per domain</h3><table id="budget"><tr><th class="l">domain</th>'
                   "<th>available</th><th>target</th><th>realized</th><th>epochs</th><th>docs</th>"
                   f'<th class="l">note</th></tr>{rows}</table>')
        out.append(_figure("budget", _budget_figure(domains)))
    body = "".join(out) or '<p class="muted">no mix information</p>'
    return f'<h2 id="mix">Language, domain and token mix</h2>{body}'


def _budget_figure(domains: dict[str, Any]) -> str:
    names = list(domains)
    return svg_chart.bars(names, [("target", [domains[d].get("target_tokens") or 0 for d in names]),
                                  ("realized", [domains[d].get("tokens") or 0 for d in names])],
                          "Token budget per domain", "domain", "tokens")


def _final_frame(view: RunView) -> pd.DataFrame:
    cols = ["lang", "domain", "source"]
    files = sorted((view.path / "shards" / "text" / "parquet").glob("*.parquet"))
    if not files:
        return pd.DataFrame()
    import pyarrow.parquet as pq

    from pipeline.storage import arrow

    names = pq.read_schema(arrow(files[0])).names
    return view._read(view.path / "shards" / "text" / "parquet", [c for c in cols if c in names], None)


def _synth(view: RunView, per_recipe: int = 2) -> str:
    rows = []
    samples = []
    for name in view.stage_names():
        manifest = view.manifest(name) or {}
        if manifest.get("kind") != "synth":
            continue
        stats = manifest.get("stats", {})
        for key in ("prompts", "cache_hits", "generated", "failed", "dropped", "synthetic_docs", "generated_tokens",
                    "tokens_per_s"):
            rows.append(f'<tr><td class="l">{_esc(name)}</td><td class="l">{key}</td>'
                        f'<td data-synth="{key}">{_esc(stats.get(key))}</td></tr>')
        spec = stats.get("speculative")
        if spec:
            rate = spec.get("acceptance_rate")
            shown = (f"{rate:.1%} ({spec.get('accepted_tokens')} of {spec.get('draft_tokens')} draft tokens, "
                     f"{spec.get('method')}, k={spec.get('num_speculative_tokens')})") if rate is not None else \
                "nothing drafted"
            rows.append(f'<tr><td class="l">{_esc(name)}</td><td class="l">speculative acceptance</td>'
                        f'<td data-synth="acceptance_rate">{_esc(shown)}</td></tr>')
        prefix = stats.get("prefix_cache")
        if prefix:
            shown = f"{prefix['hit_rate']:.1%} ({prefix['hit_tokens']} of {prefix['queried_tokens']} prompt tokens)"
            rows.append(f'<tr><td class="l">{_esc(name)}</td><td class="l">prefix-cache hits</td>'
                        f'<td data-synth="prefix_cache_hit_rate">{_esc(shown)}</td></tr>')
        for label, causes in (("failed", stats.get("failures_by_cause")), ("dropped", stats.get("dropped_by_cause")),
                              ("dropped (recipe:cause)", stats.get("dropped_by_recipe_cause"))):
            for cause, n in (causes or {}).items():
                rows.append(f'<tr><td class="l">{_esc(name)}</td><td class="l">{label}: {_esc(cause)}</td>'
                            f"<td>{n}</td></tr>")
        samples.append(_synth_samples(view, name, per_recipe))
    body = f'<table id="synth-table">{"".join(rows)}</table>' if rows else '<p class="muted">no synth stage</p>'
    from synth.fate import report_html  # model named (test models flagged), per-recipe kept/removed

    return '<h2 id="synth">Synthetic data</h2>' + report_html(view) + body + "".join(samples)


def _synth_samples(view: RunView, stage: str, per_recipe: int) -> str:
    """A few synthetic documents of every recipe, beside the text they were written from."""
    try:
        docs = view.docs(stage, columns=["id", "text", "recipe", "parent_id"])
    except KeyError:
        return ""
    docs = docs[docs["recipe"].notna()]
    out = []
    for recipe, group in docs.groupby("recipe", sort=True):
        out.append(f'<h3 data-recipe="{_esc(recipe)}">{_esc(stage)} · recipe {_esc(recipe)}</h3>')
        for _, row in group.head(per_recipe).iterrows():
            parent = view._find(view.path / stage / "data", str(row["parent_id"]))
            source = str(parent.iloc[0]["text"])[:600] if not parent.empty else "(parent not kept)"
            out.append(f'<table class="pair"><tr><th>source {_esc(row["parent_id"])}</th><th>output {_esc(row["id"])}'
                       f"</th></tr><tr><td><pre>{_esc(source)}</pre></td><td><pre>{_esc(str(row['text'])[:600])}"
                       "</pre></td></tr></table>")
    return "".join(out)


def _contents() -> str:
    return "<nav><b>Contents</b><ul>" + "".join(f'<li><a href="#{a}">{_esc(t)}</a></li>' for a, t in SECTIONS) + \
        "</ul></nav>"


def write_report(out: str | Path) -> Path:
    view = RunView(out)
    info = view.run_info
    title = f"ling-curate report: {_esc(info.get('name', view.path.name))}"
    header = (f"<h1>{title}</h1><p>status <b>{_esc(info.get('status'))}</b> · started {_esc(info.get('started'))} · "
              f"finished {_esc(info.get('finished'))} · executor {_esc(info.get('executor'))} · "
              f"config hash <code>{_esc(info.get('config_hash'))}</code></p>")
    body = "".join([header, _contents(), _funnel(view), _reasons(view), _code(view), _math(view),
                    _scores(view), _mix(view),
                    _synth(view)])
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{CSS}</style></head>" \
           f"<body>{body}</body></html>"
    path = storage.location(out) / "report.html"
    with atomic_open(path, "w") as fh:
        fh.write(page)
    return path
