"""Scheduled incremental runs: `curate run --incremental`.

OUT holds generations: each run processes only input files it has not seen before (by path, size
and content hash) into `OUT/gen-NNNNN/` (the normal output layout), deduplicating them against
everything kept by earlier generations (exact-hash and near-duplicate indexes under `OUT/_state/`),
and records itself in the cumulative `OUT/generations.json`. A generation that was interrupted is
resumed by the next run with the same file list; a run with nothing new does nothing and exits 0.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from pipeline import storage
from pipeline.config import PipelineConfig
from pipeline.ingest import InputFile, list_input_files
from pipeline.io import read_json_or_none, sha256_file, write_json
from pipeline.paths import resolve_write_path
from pipeline.progress import Reporter
from pipeline.runner import Runner, _now, run_lock

log = logging.getLogger("curate")
INDEXED_KINDS = ("exact_dedup", "near_dedup")
STATE_DIR = "_state"  # under the root OUT: the dedup indexes every generation shares


def file_identity(f: InputFile) -> dict[str, Any]:
    """What makes an input file 'the same file': path, size and content hash (directories: by file)."""
    p = storage.location(f.path)
    if p.is_dir():
        parts = sorted(x for x in p.rglob("*") if x.is_file())
        digest = hashlib.sha256()
        for x in parts:
            digest.update(str(x.relative_to(p)).encode())
            digest.update(sha256_file(str(x)).encode())
        return {"input": f.input.name, "path": f.path, "size": sum(x.stat().st_size for x in parts),
                "sha256": digest.hexdigest()}
    return {"input": f.input.name, "path": f.path, "size": p.stat().st_size, "sha256": sha256_file(f.path)}


def _key(identity: dict[str, Any]) -> tuple[str, str, int, str]:
    return identity["input"], identity["path"], identity["size"], identity["sha256"]


def generation_config(cfg: PipelineConfig, gen_dir: Path) -> PipelineConfig:
    """The pipeline config of one generation: its own output dir, dedup indexes shared across runs.

    Write paths (`index`, `cache`) stay relative to the root OUT, not the generation's dir, so every
    generation shares them: they are resolved here (and checked, pipeline/paths.py) against the root,
    which the generation may then write into."""
    gen = cfg.model_copy(deep=True)
    gen.output = str(gen_dir)
    gen.allow_write_outside_output = [*cfg.allow_write_outside_output, cfg.output]
    for i, stage in enumerate(gen.stages):
        if stage.kind in INDEXED_KINDS and hasattr(stage, "index") and stage.index is None:
            stage.index = f"{STATE_DIR}/{stage.name}_index"
        for field in stage.write_paths:
            value = getattr(stage, field)
            if value:
                setattr(stage, field, resolve_write_path(cfg.output, value, cfg.allow_write_outside_output,
                                                         f"stages[{i}].{field}"))
    return gen


def run_incremental(cfg: PipelineConfig, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run one generation over the unseen input files; returns a summary (status 'nothing new' or 'finished')."""
    root = storage.location(cfg.output)
    files = list_input_files(cfg.inputs)
    with run_lock(root):
        registry: dict[str, Any] = read_json_or_none(root / "generations.json") or {"generations": []}
        seen = {_key(i) for g in registry["generations"] if g.get("status") == "finished" for i in g["files"]}
        pending = next((g for g in registry["generations"] if g.get("status") != "finished"), None)
        if pending is not None:
            chosen = [f for f in files if f.path in {i["path"] for i in pending["files"]}]
            entry = pending
            log.info("resuming generation %d", entry["generation"])
        else:
            identities = [(f, file_identity(f)) for f in files]
            chosen = [f for f, ident in identities if _key(ident) not in seen]
            if not chosen:
                log.info("nothing new: %d input files were all processed by earlier generations", len(files))
                return {"status": "nothing new", "generations": len(registry["generations"])}
            number = len(registry["generations"]) + 1
            entry = {"generation": number, "dir": f"gen-{number:05d}", "status": "running", "started": _now(),
                     "files": [ident for f, ident in identities if f in chosen]}
            registry["generations"].append(entry)
            write_json(registry, root / "generations.json")
        gen_dir = root / entry["dir"]
        gen_cfg = generation_config(cfg, gen_dir)
        info = Runner(gen_cfg, reporter, files=chosen).run()
        shards = read_json_or_none(gen_dir / "shards" / "manifest.json") or {}
        entry.update(status="finished", finished=_now(), docs_in=info["stages"][0]["in"],
                     docs_out=shards.get("docs"), tokens=shards.get("tokens"),
                     shards_manifest=f"{entry['dir']}/shards/manifest.json" if shards else None,
                     stages=info["stages"])
        registry["total_docs_out"] = sum(g.get("docs_out") or 0 for g in registry["generations"])
        registry["updated"] = _now()
        write_json(registry, root / "generations.json")
        return {"status": "finished", "generation": entry["generation"], "files": len(chosen)}
