"""Labelled training sets for the demo's fastText classifiers, drawn apart from the demo corpus.

`make run` trains the quality and domain classifiers on these files and the pipeline scores the
demo corpus with them, so the corpus itself serves as held-out data (different seeds, same styles).
"""

from __future__ import annotations

import json
from pathlib import Path
from random import Random

from pipeline.demo.text import generate
from pipeline.io import atomic_open

SEED_OFFSET = 1_000_003  # keeps label documents' seeds away from the corpus's
QUALITY_DOMAINS = ("news", "forum", "encyclopedia")  # where low-quality and spam pages exist
DOMAIN_LANGS = {"news": ("en", "zh"), "forum": ("en", "zh"), "encyclopedia": ("en", "zh"), "code": ("en",),
                "math": ("en",)}


def write_training_sets(out_dir: str | Path, n: int = 2000, seed: int = 0) -> dict[str, str]:
    """Write `quality.jsonl` (label hq/lq, balanced) and `domain.jsonl` (label = domain) under out_dir."""
    out = Path(out_dir)
    rng = Random(seed)
    paths = {"quality": out / "quality.jsonl", "domain": out / "domain.jsonl"}
    with atomic_open(paths["quality"], "w") as fh:
        for i in range(n):
            lang = "zh" if rng.random() < 0.2 else "en"
            domain = rng.choice(QUALITY_DOMAINS)
            quality = "high" if i % 2 == 0 else rng.choice(("low", "low", "spam"))
            doc = generate(lang, domain, quality, SEED_OFFSET + seed * 7919 + i)
            fh.write(json.dumps({"text": doc.text, "label": "hq" if quality == "high" else "lq", "lang": lang,
                                 "domain": domain}, ensure_ascii=False) + "\n")
    with atomic_open(paths["domain"], "w") as fh:
        domains = sorted(DOMAIN_LANGS)
        for i in range(n):
            domain = domains[i % len(domains)]
            lang = "zh" if "zh" in DOMAIN_LANGS[domain] and rng.random() < 0.2 else "en"
            doc = generate(lang, domain, "high", SEED_OFFSET * 2 + seed * 7919 + i)
            fh.write(json.dumps({"text": doc.text, "label": domain, "lang": lang}, ensure_ascii=False) + "\n")
    return {k: str(v) for k, v in paths.items()}
