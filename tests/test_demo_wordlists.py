"""The demo generator's word lists and templates: data files, read once, shipped in a built wheel."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo import plants, text
from pipeline.demo.wordlists import load

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "pipeline" / "demo" / "data"


def _names_loaded_by_text() -> set[str]:
    """Data files the generator loads: text.py's, and plants.py's (eval set and boilerplate)."""
    sources = [Path(text.__file__), Path(plants.__file__)]
    return {name for src in sources for name in re.findall(r'\bload\("(\w+)"\)', src.read_text(encoding="utf-8"))}


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, tuple):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_every_data_file_is_loaded_by_the_generator_and_none_is_missing() -> None:
    files = {p.stem for p in DATA.glob("*.yaml")}
    assert files, DATA
    assert _names_loaded_by_text() == files


@pytest.mark.parametrize("name", sorted(p.stem for p in DATA.glob("*.yaml")))
def test_data_file_loads_frozen_and_cached(name: str) -> None:
    entries = load(name)
    assert load(name) is entries  # read once
    assert entries and all(isinstance(k, str) for k in entries)
    leaves = _leaves(entries)
    assert leaves and all(isinstance(leaf, str) for leaf in leaves), name  # no lists or numbers (YAML typing)


def test_templates_from_data_compile_to_the_generators_pools() -> None:
    news = load("news_en")
    assert len(text.NEWS_LEAD) == len(news["NEWS_LEAD"])
    assert text.CITIES == load("vocabulary_en")["CITIES"]
    assert text._CLAUSES[("zh", "forum")] == load("near_dup")["_CLAUSES"]["zh/forum"]


def test_built_wheel_ships_the_data_files(tmp_path: Path) -> None:
    """A non-editable install must find the YAML files (package data, not only the source tree)."""
    src = tmp_path / "src"  # a copy: an in-tree build would leave build/ and *.egg-info in the checkout
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    for package in ("pipeline", "stages", "filters", "synth"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist")], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"pipeline/demo/data/{p.name}" for p in DATA.glob("*.yaml")}
    assert expected <= names
    assert {"pipeline/demo/__init__.py", "pipeline/demo/wordlists.py", "pipeline/demo/text.py"} <= names
