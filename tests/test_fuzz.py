"""Property-based tests: whatever the input bytes or config, ingest and validation never crash and
never lose a record."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import ConfigError, InputConfig, load_config, validate
from pipeline.ingest import InputFile, ingest_file

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
records = st.one_of(
    st.dictionaries(st.sampled_from(["text", "id", "url", "meta", "x"]), json_values, max_size=5)
    .map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=200),
    st.text(alphabet=string.printable + "\x00\u00e9\u4e2d\ud7ff", max_size=200).map(
        lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(lambda n: json.dumps({"text": "x" * n}).encode(), st.integers(0, 200_000)),
    st.builds(lambda d: ("[" * d + "]" * d).encode(), st.integers(1, 50_000)),
    st.builds(lambda t: json.dumps({"text": t, "id": t}).encode(), st.text(max_size=50)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=25))
def test_ingest_accounts_for_every_line(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.jsonl"
        payload = b"\n".join(line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines) + b"\n"
        path.write_bytes(payload)
        inp = InputConfig(name="fuzz", path=str(path), format="jsonl", id_field=None, url_field="url")
        result = ingest_file((InputFile(0, 0, inp, str(path), "in.jsonl"), Path(tmp) / "ingest", 7, "h"))
        non_blank = [raw for raw in payload.split(b"\n")[:-1] if raw.strip()]
        assert result["records"] == len(non_blank)
        docs = sum(pq.read_table(Path(tmp) / "ingest" / "_raw" / f"{p}.parquet").num_rows for p in result["parts"])
        assert docs + result["quarantined"] == result["records"]
        for part in result["parts"]:
            for text in pq.read_table(Path(tmp) / "ingest" / "_raw" / f"{part}.parquet").column("text").to_pylist():
                assert isinstance(text, str) and text.strip()


config_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**9) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=15,
)
stage_names = st.sampled_from(["normalize", "exact_dedup", "shard", "langid", "heuristics", "pii", "mix", "tokenize",
                               "quality_classifier", "domain_classifier", "bogus", ""])


@settings(max_examples=150, deadline=None)
@given(
    top=st.dictionaries(st.sampled_from(["name", "output", "executor", "workers", "seed", "partition_rows", "x"]),
                        config_values, max_size=5),
    stages=st.lists(st.builds(lambda name, extra: {"name": name, **extra}, stage_names,
                              st.dictionaries(st.text(max_size=10), config_values, max_size=3)), max_size=4),
)
def test_validation_only_ever_raises_config_error(top: dict, stages: list) -> None:
    data = {"output": "out", "inputs": [{"name": "a", "path": "x"}], **top, "stages": stages}
    try:
        validate(data)
    except ConfigError as err:
        assert err.problems and all(isinstance(p, str) and ":" in p for p in err.problems)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_yaml_text_gives_config_or_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass") if "\ud800" not in text else None
        if not path.exists():
            return
        try:
            load_config(path)
        except ConfigError as err:
            assert err.problems
