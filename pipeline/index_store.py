"""The persistent dedup index both dedup kinds share: keys of documents kept by earlier runs.

An index directory holds one store per dedup key, named by the key (`exact_dup/`, `url_dup/`; near_dedup's
one key is the directory itself). A store is guarded by the parameters that give its entries meaning (the
key's Arrow type, its normalization, MinHash permutations and bands...) in `_params.json`: a run whose
settings give its keys another meaning cannot join them, so it is a config error naming the difference,
never an Arrow type error in the middle of a group-by. A changed key kind is another key name, hence
another store: exact_dedup switched from text to URL keys starts an empty `url_dup/` line of generations.

Entries are append-only generations, `gen-<seq>-<run key>/part-*.parquet`, one per (output directory,
stage): a rerun of the same output replaces its own generation instead of matching itself, and a
generation counts once its `_gen.json` exists (written last; a directory rename where the file system has
one).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from pipeline import storage
from pipeline.config import ConfigError
from pipeline.io import read_json_or_none, write_json

INDEX_FORMAT = 1


def run_key(output: str | Path, stage: str) -> str:
    """Which run wrote a generation: the output directory and the stage name (a rerun replaces its own)."""
    out = storage.location(output)
    where = f"{out.resolve() if storage.is_local(out) else out}\0{stage}"
    return hashlib.blake2b(where.encode(), digest_size=6).hexdigest()


class IndexStore:
    """Generations of one dedup key's entries under `root`, guarded by `params`."""

    def __init__(self, root: str | Path, params: dict[str, Any], run_key: str, where: str = "index"):
        self.root = storage.location(root)
        self.params = {"format": INDEX_FORMAT, **params}
        self.run_key = run_key
        self.where = where  # the config key, for messages (`stages.exact_dedup.index`)

    def generations(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        gens = [p for p in self.root.glob("gen-*") if p.is_dir() and (p / "_gen.json").exists()]
        return sorted(gens, key=lambda p: p.name)

    def others(self) -> list[Path]:
        """Generations written by other runs (what this run deduplicates against)."""
        return [g for g in self.generations() if not g.name.endswith(f"-{self.run_key}")]

    def files(self) -> list[Path]:
        return [f for g in self.others() for f in sorted(g.glob("part-*.parquet"))]

    def check(self) -> None:
        """ConfigError when the store was built with settings that give its entries another meaning."""
        found = read_json_or_none(self.root / "_params.json")
        if found is not None and found != self.params:
            diff = {k: (found.get(k), v) for k, v in sorted({**found, **self.params}.items())
                    if found.get(k) != self.params.get(k)}
            shown = "; ".join(f"{k}: {a!r} in the index, {b!r} now" for k, (a, b) in diff.items())
            raise ConfigError([f"{self.where}: {self.root} holds keys built with other settings ({shown}); "
                               "use another index path or the same settings"])

    def current(self, stage_hash: str) -> Path | None:
        """This run's generation if a run killed before its manifest already wrote it."""
        for g in self.generations():
            if g.name.endswith(f"-{self.run_key}") and (read_json_or_none(g / "_gen.json") or {}).get(
                    "stage_hash") == stage_hash:
                return g
        return None

    def write(self, files: list[Path], stage_hash: str, docs: int) -> Path:
        """Commit a generation atomically: files are linked into a temporary directory, renamed."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / "_params.json").exists():
            write_json(self.params, self.root / "_params.json")
        stale = [g for g in self.generations() if g.name.endswith(f"-{self.run_key}")]
        seq = max((int(g.name.split("-")[1]) for g in self.generations()), default=0) + 1
        info = {"stage_hash": stage_hash, "docs": docs, "format": INDEX_FORMAT}
        if not storage.is_local(self.root):
            # no directory rename on object stores: a generation counts once its _gen.json exists
            final = self.root / f"gen-{seq:06d}-{self.run_key}"
            storage.rmtree(final)
            for i, f in enumerate(files):
                storage.link_or_copy(f, final / f"part-{i:06d}.parquet")
            write_json(info, final / "_gen.json")
            for g in stale:
                storage.rmtree(g)
            return final
        tmp = self.root / f".tmp-{self.run_key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for i, f in enumerate(files):
            try:
                os.link(f, tmp / f"part-{i:06d}.parquet")
            except OSError:  # index on another filesystem
                shutil.copyfile(f, tmp / f"part-{i:06d}.parquet")
        write_json(info, tmp / "_gen.json")
        while True:
            final = self.root / f"gen-{seq:06d}-{self.run_key}"
            try:
                os.rename(tmp, final)
                break
            except OSError:
                if not final.exists():
                    raise
                seq += 1
        for g in stale:
            shutil.rmtree(g, ignore_errors=True)
        return final
