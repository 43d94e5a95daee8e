"""Issue 18, the first hour of a new user: loud failures instead of silent empty runs, strict notebook
names, a current report, a clearer CLI, progress lines with units. Each test asserts exit code and message."""

from __future__ import annotations

import gzip
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline
from pipeline.cli import build_parser
from pipeline.config import ConfigError, validate
from tests.conftest import curate, pipeline_config, write_config


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """`curate ARGS` in this process (seconds faster than a subprocess): exit code, stdout, stderr."""
    from pipeline.cli import main

    def run(*args: str, cwd: Path) -> Result:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def small_config(inputs: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    return {"name": "t", "output": "out", "workers": 1, "inputs": inputs,
            "stages": [{"name": "normalize"}, {"name": "shard"}], **top}


@pytest.fixture
def bad_inputs(tmp_path: Path) -> Path:
    """Ordinary mistakes: Parquet without a text column, gzip declared jsonl, an empty file, a good file."""
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"body": [f"document {i} text" for i in range(20)]}), tmp_path / "in" / "notext.parquet")
    with gzip.open(tmp_path / "in" / "docs.gz", "wt", encoding="utf-8") as fh:
        for i in range(30):
            fh.write(json.dumps({"text": f"document {i}"}) + "\n")
    (tmp_path / "in" / "empty.jsonl").write_text("")
    lines = [json.dumps({"text": f"good document number {i}"}) for i in range(10)] + ['{"text": broken']
    (tmp_path / "in" / "good.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


# -- 1. inputs ----------------------------------------------------------------------------------------
def test_format_is_inferred_from_the_extension_or_fails_clearly(tmp_path: Path) -> None:
    cfg = validate(small_config([{"name": "a", "path": "x/*.jsonl.gz"}, {"name": "b", "path": "y/part-0.parquet"},
                                 {"name": "c", "path": "z/*.JSONL"}, {"name": "d", "path": "w/*.jsonl.zst"}]))
    assert [i.format for i in cfg.inputs] == ["jsonl.gz", "parquet", "jsonl", "jsonl.zst"]
    with pytest.raises(ConfigError) as err:
        validate(small_config([{"name": "a", "path": "x/*.gz"}]))
    assert err.value.problems[0].startswith("inputs[0].format: cannot infer the format of 'x/*.gz'")
    assert "set format: jsonl, jsonl.gz, jsonl.zst, parquet or hf" in err.value.problems[0]


def test_validate_reads_the_first_records_and_exits_2(bad_inputs: Path, cli: Any) -> None:
    write_config(bad_inputs / "p.yaml", small_config([{"name": "pq", "path": "in/notext.parquet"},
                                                      {"name": "gz", "path": "in/docs.gz", "format": "jsonl"},
                                                      {"name": "empty", "path": "in/empty.jsonl"}]))
    proc = cli("validate", "p.yaml", cwd=bad_inputs)
    assert proc.returncode == 2, proc.stderr
    assert ("curate: inputs[0] (pq): notext.parquet: 20 of the first 20 records cannot be read, mostly field "
            "'text': missing text field (is the text in another column? set text_field:") in proc.stderr
    assert "curate: inputs[1] (gz): docs.gz: the file is gzip-compressed but format is jsonl: set format: jsonl.gz" \
        in proc.stderr
    assert "curate: warning: inputs[2] (empty): empty.jsonl: the file holds no records" in proc.stderr
    assert not (bad_inputs / "out").exists()
    write_config(bad_inputs / "ok.yaml", small_config([{"name": "good", "path": "in/good.jsonl"}]))
    proc = cli("validate", "ok.yaml", cwd=bad_inputs)
    assert proc.returncode == 0, proc.stderr
    assert "warning: inputs[0] (good): good.jsonl: 1 of the first 11 records would be quarantined" in proc.stderr


@pytest.mark.parametrize("case", ["no_text_field", "gzip_as_jsonl", "empty"])
def test_run_exits_2_when_an_input_yields_nothing(bad_inputs: Path, case: str, cli: Any) -> None:
    inputs = {"no_text_field": [{"name": "pq", "path": "in/notext.parquet"}, {"name": "good", "path": "in/good.jsonl"}],
              "gzip_as_jsonl": [{"name": "gz", "path": "in/docs.gz", "format": "jsonl"}],
              "empty": [{"name": "empty", "path": "in/empty.jsonl"}]}[case]
    write_config(bad_inputs / "p.yaml", small_config(inputs))
    proc = cli("run", "p.yaml", cwd=bad_inputs)
    assert proc.returncode == 2, proc.stderr
    expected = {"no_text_field": "curate: inputs[0] (pq): notext.parquet: no documents: 20 of 20 records "
                                 "quarantined, mostly field 'text': missing text field",
                "gzip_as_jsonl": "curate: inputs[0] (gz): docs.gz: the file is gzip-compressed but format is jsonl: "
                                 "set format: jsonl.gz",
                "empty": "curate: the inputs yielded no documents (1 file(s), 0 record(s))"}[case]
    assert expected in proc.stderr
    assert not (bad_inputs / "out" / "normalize").exists()  # stopped after ingest
    if case == "no_text_field":
        assert "curate: quarantined 21 records (missing_text 20, invalid_json 1): out/quarantine" in proc.stderr
    # a looser max_quarantine_fraction does not hide a file that yields nothing, but 1.0 lets it through
    if case == "no_text_field":
        proc = cli("run", "p.yaml", "--set", "max_quarantine_fraction=1.0", cwd=bad_inputs)
        assert proc.returncode == 0, proc.stderr


def test_quarantine_line_and_status_column(workdir: Path, cli: Any) -> None:
    proc = curate("run", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert ("quarantined 5 records (empty_text 1, invalid_json 1, invalid_utf8 1, missing_text 1, "
            "non_string_text 1): out/quarantine") in proc.stdout.splitlines()
    assert re.search(r"^total time \d+\.\ds$", proc.stdout, re.M)  # item 6: the last line of a run
    assert proc.stdout.splitlines()[-1].startswith("total time ")
    status = cli("status", "out", cwd=workdir).stdout.splitlines()
    header = status[1].split()
    assert "quarantined" in header
    ingest = dict(zip(header, status[2].split(), strict=False))
    assert ingest["stage"] == "ingest" and ingest["quarantined"] == "5"
    data = json.loads(cli("status", "out", "--json", cwd=workdir).stdout,
                      parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert data["stages"][0]["quarantined"] == 5 and data["stages"][0]["tokens"] is None


# -- 2. notebook ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("strict")
    (root / "corpus").symlink_to(corpus_dir / "corpus")
    cfg = pipeline_config()
    cfg["stages"] = [{"name": "normalize"}, {"name": "dedup", "kind": "exact_dedup"}, {"name": "shard"}]
    write_config(root / "pipeline.yaml", cfg)
    curate("run", cwd=root, check=True)
    return root


def test_notebook_names_are_strict(finished: Path) -> None:
    run = pipeline.open_run(finished / "out")
    with pytest.raises(KeyError, match=r"no stage 'qualty' \(available: ingest, normalize, dedup, shard, shards\)"):
        run.docs("qualty")
    with pytest.raises(KeyError, match="no stage 'nope'"):
        run.sample("nope")
    with pytest.raises(KeyError, match="no stage 'nope'"):
        run.removed("nope")
    assert run.docs("exact_dedup", columns=["id"]).equals(run.docs("dedup", columns=["id"]))  # an unambiguous kind
    final = run.docs(columns=["id"])
    assert final.equals(run.docs("shards", columns=["id"])) and final.equals(run.docs("shard", columns=["id"]))
    assert not final.equals(run.docs("normalize", columns=["id"]))  # shards are shuffled: a different order
    assert len(final) == len(run.docs("dedup", columns=["id"]))


def test_removed_without_removals_has_the_stage_columns(finished: Path) -> None:
    run = pipeline.open_run(finished / "out")
    removed = run.removed("normalize")
    assert removed.empty and {"id", "text", "reason"} <= set(removed.columns)
    assert list(removed["reason"]) == []
    assert list(run.removed("normalize", columns=["id", "reason"]).columns) == ["id", "reason"]


def test_unknown_column_names_it_and_the_available_ones(finished: Path) -> None:
    run = pipeline.open_run(finished / "out")
    with pytest.raises(KeyError, match=r"no column 'nope' in stage 'dedup' \(available: id, text, source, url, meta"):
        run.docs("dedup", columns=["id", "nope"])
    with pytest.raises(KeyError, match=r"no column 'nope' in the final shards"):
        run.docs(columns=["nope"])


# -- 3. report ------------------------------------------------------------------------------------------
def test_run_rewrites_the_report(finished: Path, cli: Any) -> None:
    out = finished / "out"
    page = (out / "report.html").read_text()
    kept = json.loads((out / "dedup" / "_manifest.json").read_text())["counts"]["kept"]
    assert f'data-stage="dedup" data-field="kept">{kept}<' in page
    pair = re.search(r'data-duplicate-of="([^"]+)"><tr><th>removed ([^<]+)</th>', page)  # beside its survivor
    assert pair and run_reason(out, pair.group(2)) == f"exact_dup:of={pair.group(1)}"
    proc = cli("run", "--set", "stages.dedup.lowercase=false", cwd=finished)  # a rerun with other settings
    assert proc.returncode == 0, proc.stderr
    assert f"report: {Path('out') / 'report.html'}" in proc.stdout
    kept2 = json.loads((out / "dedup" / "_manifest.json").read_text())["counts"]["kept"]
    assert kept2 != kept  # the planted duplicates differ in case
    page = (out / "report.html").read_text()
    assert f'data-stage="dedup" data-field="kept">{kept2}<' in page
    for anchor in ("funnel", "reasons", "scores", "mix", "synth"):
        assert f'href="#{anchor}"' in page and f'id="{anchor}"' in page  # table of contents


def run_reason(out: Path, doc_id: str) -> str:
    removed = pipeline.open_run(out).removed("dedup", columns=["id", "reason"])
    return removed.set_index("id")["reason"][doc_id]


# -- 4. CLI ---------------------------------------------------------------------------------------------
def test_version_and_verbose_after_the_subcommand(workdir: Path) -> None:
    proc = curate("--version", cwd=workdir)
    assert proc.returncode == 0 and re.fullmatch(rf"curate {re.escape(pipeline.__version__)}\n", proc.stdout)
    write_config(workdir / "pipeline.yaml", pipeline_config(workers=0))
    proc = curate("run", "pipeline.yaml", "-v", cwd=workdir)
    assert proc.returncode == 2 and "curate: workers: Input should be greater than or equal to 1 (got 0)" in proc.stderr
    args = build_parser().parse_args(["status", "out", "--verbose", "--log-format", "json"])
    assert args.verbose and args.log_format == "json"
    args = build_parser().parse_args(["-v", "status", "out"])
    assert args.verbose and args.log_format == "text"


def test_every_option_has_help_and_shows_its_default() -> None:
    import argparse

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"run", "validate", "status", "report", "demo-data", "dedup-params", "tiny-model", "train"} <= \
        set(subparsers.choices)
    for name, sub in [("curate", parser), *subparsers.choices.items()]:
        text = sub.format_help()
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction | argparse._VersionAction):
                continue
            assert action.help, (name, action.dest)
            if action.default not in (None, argparse.SUPPRESS, False) and action.option_strings:
                assert f"(default: {action.default})" in " ".join(text.split()), (name, action.dest)


def test_not_a_run_folder_exits_2(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "data").mkdir()
    for command in (["status", "data"], ["status", "data", "--json"], ["report", "data"]):
        proc = cli(*command, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == ("curate: data: not a ling-curate run output (no _run.json); give the "
                                       "`output:` directory of a run, e.g. curate status out/demo")
    with pytest.raises(FileNotFoundError, match="not a ling-curate run output"):
        pipeline.open_run(tmp_path / "data")


def test_config_errors_name_stages_suggest_and_list_kinds(workdir: Path, cli: Any) -> None:
    cfg = pipeline_config()
    cfg["stages"] = [{"name": "normalize", "unicode_form": "NFX"}, {"name": "exact_dedup"},
                     {"name": "shard", "max_shard_byte": 1000}, {"name": "qual", "kind": "quality_clasifier"}]
    write_config(workdir / "pipeline.yaml", cfg)
    proc = cli("validate", cwd=workdir)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert "curate: stages.normalize.unicode_form: Input should be 'NFC', 'NFKC' or 'none' (got 'NFX')" in lines
    assert "curate: stages.shard.max_shard_byte: unknown key (did you mean max_shard_bytes?)" in lines
    kinds = next(line for line in lines if line.startswith("curate: stages.qual.kind:"))
    from stages.registry import STAGE_MODULES

    assert kinds == ("curate: stages.qual.kind: unknown stage kind 'quality_clasifier' (did you mean "
                     f"quality_classifier?); valid kinds: {', '.join(sorted(STAGE_MODULES))}")
    cfg["stages"] = [{"name": "quality", "kind": "quality_classifier", "model": "models/none.bin", "threshold": 0.5}]
    write_config(workdir / "pipeline.yaml", cfg)
    proc = cli("run", cwd=workdir)
    assert proc.returncode == 2
    assert (f"curate: stages.quality.model: file not found: models/none.bin (resolved against the current "
            f"directory: {workdir / 'models' / 'none.bin'})") in proc.stderr
    assert not (workdir / "out").exists()


def test_set_bad_index_and_scientific_integers(workdir: Path, cli: Any) -> None:
    proc = cli("validate", "--set", "stages[x].threshold=1", cwd=workdir)
    assert proc.returncode == 2 and "curate: --set stages[x].threshold: bad index [x]: " in proc.stderr
    proc = cli("validate", "--set", "stages[7].threshold=1", cwd=workdir)
    assert proc.returncode == 2 and "curate: --set stages[7]: no such key (stages has 3 entries)" in proc.stderr
    proc = cli("validate", "--no-read", "--set", "stages.shard.max_shard_bytes=1e8", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "max_shard_bytes: 100000000\n" in proc.stdout
    proc = cli("validate", "--set", "stages.shard.max_shard_bytes=2.5e0", cwd=workdir)
    assert proc.returncode == 2 and "stages.shard.max_shard_bytes: Input should be a valid integer" in proc.stderr


# -- 6. progress ------------------------------------------------------------------------------------------
def test_progress_lines_name_unit_and_phase(caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.progress import Reporter, format_seconds

    reporter = Reporter(enabled=True, rich_bars=False)
    with caplog.at_level(logging.INFO, logger="curate"):
        reporter.task("near_dedup", unit="band buckets")(8, 8)
        reporter.task("near_dedup", unit="partitions", phase="verify")(3, 3)
        reporter.task("ingest")(5, 5)  # the old call: no unit
    assert [r.getMessage() for r in caplog.records] == ["near_dedup: band buckets 8/8",
                                                        "near_dedup: verify: partitions 3/3", "ingest: 5/5"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="curate"):  # a stage's phases (StageContext.phase)
        reporter.task("near_dedup", None, "signatures")(14, 14)
        reporter.task("near_dedup", "edge files", "components round 2")(3, 3)
        reporter.task("near_dedup", None, "survivors round 2")  # never called: no line (no empty bar)
    assert [r.getMessage() for r in caplog.records] == ["near_dedup: signatures 14/14",
                                                        "near_dedup: components round 2: edge files 3/3"]
    assert (format_seconds(12.34), format_seconds(245), format_seconds(3720)) == ("12.3s", "4m 05s", "1h 02m")


@pytest.fixture(scope="module")
def filtered(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    """A run with thresholded rules: langid `min_score` and the heuristics' bounds."""
    root = tmp_path_factory.mktemp("filtered")
    (root / "corpus").symlink_to(corpus_dir / "corpus")
    cfg = pipeline_config()
    cfg["stages"] = [{"name": "normalize"}, {"name": "langid", "min_score": 0.3},
                     {"name": "heuristics", "filters": ["gopher_quality"],  # the corpus has no stop words
                      "gopher_quality": {"min_mean_word_length": 6.1, "min_stop_words": 0}}, {"name": "shard"}]
    write_config(root / "pipeline.yaml", cfg)
    curate("run", cwd=root, check=True)
    return root / "out"


def test_report_histograms_have_labels_shared_bins_and_every_threshold(filtered: Path) -> None:
    run = pipeline.open_run(filtered)
    assert run.thresholds("lang_score", "langid") == [("min_score", 0.3)]
    assert run.thresholds("gopher_mean_word_length", "heuristics") == [("max_mean_word_length", 10.0),
                                                                       ("min_mean_word_length", 6.1)]
    assert ("min_words", 50.0) in run.thresholds("gopher_word_count", "heuristics")
    fig = run.plot_scores("gopher_mean_word_length", by="decision")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("gopher_mean_word_length", "documents")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["kept", "removed"]
    assert {"threshold min_mean_word_length=6.1", "threshold max_mean_word_length=10"} <= set(legend)
    kept, removed = ax.patches[:2]  # one filled step outline per group
    assert (kept.get_label(), removed.get_label()) == ("kept", "removed")
    kept_edges, removed_edges = kept.get_data().edges, removed.get_data().edges
    assert list(kept_edges) == list(removed_edges) and len(kept_edges) == 41  # one set of 40 bins for both
    assert kept.get_data().values.sum() + removed.get_data().values.sum() > 0
    page = (filtered / "report.html").read_text()
    assert 'data-score="gopher_mean_word_length"' in page  # the rule that removed documents has its histogram
    assert 'data-threshold="lang_score" data-key="min_score"' in page
    assert 'data-threshold="gopher_mean_word_length" data-key="min_mean_word_length"' in page
    assert '<nav><b>Contents</b>' in page


def test_report_shows_synth_samples_per_recipe(tmp_path: Path) -> None:
    """Rendering only, on a hand-made synth stage output (a real synth run is covered by the synth tests)."""
    from pipeline.report import write_report

    out = tmp_path / "out"
    (out / "synth" / "data").mkdir(parents=True)
    (out / "_run.json").write_text(json.dumps({"name": "s", "plan": [{"stage": "synth", "kind": "synth"}],
                                               "config": {"stages": [{"name": "synth"}]}}))
    (out / "synth" / "_manifest.json").write_text(json.dumps({
        "kind": "synth", "counts": {"in": 2, "added": 3, "kept": 5, "removed": 0, "by_reason": {}},
        "stats": {"prompts": 3, "generated": 3, "synthetic_docs": 3}}))
    pq.write_table(pa.table({"id": ["p1", "p2", "s1", "s2", "s3"],
                             "text": ["parent one", "parent two", "rephrased one", "qa of two", "qa again"],
                             "recipe": [None, None, "wiki_rephrase", "diverse_qa", "diverse_qa"],
                             "parent_id": [None, None, "p1", "p2", "p2"]}), out / "synth" / "data" / "part-0.parquet")
    page = write_report(out).read_text()
    assert 'data-recipe="wiki_rephrase"' in page and 'data-recipe="diverse_qa"' in page
    assert "rephrased one" in page and "parent one" in page and "qa again" in page



# -- 5. startup imports ---------------------------------------------------------------------------------
# Packages that cost from a few tenths of a second (pandas) to seconds (scipy via datasketch, torch) to import,
# and that the commands below never use: a module-level import of one of them slows every `curate` call.
HEAVY = ("scipy", "matplotlib", "datasets", "datasketch", "sklearn", "torch", "vllm", "transformers", "pandas")


def heavy_imports(cwd: Path, *args: str) -> tuple[int | None, list[str]]:
    """`curate ARGS` (no ARGS: only `import pipeline.cli`) in a fresh interpreter: its exit code and the HEAVY
    packages it loaded."""
    call = (f"try:\n    code = main({list(args)!r})\nexcept SystemExit as exc:\n    code = exc.code" if args
            else "code = None")
    probe = (f"import json, sys\nfrom pipeline.cli import main\n{call}\n"
             f"print(json.dumps([code, sorted(m for m in {HEAVY!r} if m in sys.modules)]))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=cwd, text=True, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    code, loaded = json.loads(proc.stdout.splitlines()[-1])
    return code, loaded


def test_cli_startup_imports_no_heavy_package(tmp_path: Path) -> None:
    assert heavy_imports(tmp_path) == (None, [])
    assert heavy_imports(tmp_path, "--help") == (0, [])


def test_status_imports_no_heavy_package(finished: Path) -> None:
    assert heavy_imports(finished, "status", "out") == (0, [])
    assert heavy_imports(finished, "status", "out", "--json") == (0, [])


def test_validate_of_every_stage_imports_no_heavy_package(tmp_path: Path) -> None:
    """The demo config names every stage kind, so every stage module and its settings load; without the demo
    data here validate exits 2 on the missing files, after the stage modules loaded."""
    shutil.copy(Path(__file__).parents[1] / "pipeline.yaml", tmp_path / "pipeline.yaml")
    code, loaded = heavy_imports(tmp_path, "validate", "pipeline.yaml", "--no-read")
    assert code == 2
    # pyarrow imports pandas whenever it builds a scalar from a Python value (synth filter expressions do)
    assert [m for m in loaded if m != "pandas"] == []


def test_validate_reads_warc_inputs_and_names_a_wrong_gzip_name(tmp_path: Path, cli: Any) -> None:
    """WARC and WET files are gzip-compressed exactly when their name ends in .gz (as Common Crawl's):
    `curate validate` reads both kinds and says when a name and the bytes disagree."""
    from tests.warc_util import Rec, write_warc

    (tmp_path / "crawl").mkdir()
    pages = [Rec(url=f"http://example.com/{i}", body=f"<html><body><p>Page {i} text.</p></body></html>".encode())
             for i in range(3)] + [Rec(type="request", status=None, content_type=None, body=b"GET / HTTP/1.1\r\n\r\n")]
    write_warc(tmp_path / "crawl" / "a.warc.gz", pages)
    write_warc(tmp_path / "crawl" / "b.warc", pages)
    (tmp_path / "crawl" / "c.warc").write_bytes((tmp_path / "crawl" / "a.warc.gz").read_bytes())
    (tmp_path / "crawl" / "d.warc.gz").write_bytes((tmp_path / "crawl" / "b.warc").read_bytes())
    stages = [{"name": "extract"}, {"name": "shard"}]
    ok = [{"name": "gz", "path": "crawl/a.warc.gz", "format": "warc"}, {"name": "plain", "path": "crawl/b.warc"}]
    write_config(tmp_path / "ok.yaml", {**small_config(ok), "stages": stages})
    proc = cli("validate", "ok.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "curate:" not in proc.stderr  # no warning either: the request record is not a document
    bad = [{"name": "named_plain", "path": "crawl/c.warc", "format": "warc"},
           {"name": "named_gz", "path": "crawl/d.warc.gz", "format": "warc"}]
    write_config(tmp_path / "bad.yaml", {**small_config(bad), "stages": stages})
    proc = cli("validate", "bad.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "curate: inputs[0] (named_plain): c.warc: the file is gzip-compressed but its name does not end in .gz: "
        "rename it to *.warc.gz",
        "curate: inputs[1] (named_gz): d.warc.gz: the name ends in .gz but the file is not gzip-compressed: "
        "rename it without .gz"]


def test_a_global_stage_names_each_phase_in_its_progress_lines(workdir: Path, cli: Any) -> None:
    write_config(workdir / "p.yaml", pipeline_config(stages=[{"name": "normalize"}, {"name": "near_dedup"},
                                                             {"name": "shard"}]))
    proc = cli("run", "p.yaml", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    lines = [re.sub(r"^\S+ INFO ", "", line) for line in proc.stderr.splitlines()]
    near = [line.rsplit(" ", 1)[0] for line in lines if line.startswith("near_dedup: ") and "/" in line]
    assert list(dict.fromkeys(near))[:5] == [
        "near_dedup: signatures", "near_dedup: verify: sets of u", "near_dedup: verify: sets of v",
        "near_dedup: edge counts", "near_dedup: components round 1"]
    assert near[-1] == "near_dedup: removals: partitions" and "near_dedup: tasks" not in near
