"""`pii`: masking and counting e-mail, IP and phone numbers; no masks on ordinary numbers and dates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.pii import mask_pii
from stages.pii import PiiConfig, Stage
from tests.conftest import curate, write_config


def masked(text: str, **kw: Any) -> tuple[str, dict[str, int]]:
    texts, counts = mask_pii(pa.array([text]), **kw)
    return texts.to_pylist()[0], {k: int(v[0]) for k, v in counts.items()}


@pytest.mark.parametrize(("text", "expected"), [
    ("Write to john.doe+news@example.co.uk today.", "Write to <EMAIL> today."),
    ("联系邮箱：zhang_san@163.com。", "联系邮箱：<EMAIL>。"),
    ("a@b.c is not one, x@y.io is", "a@b.c is not one, <EMAIL> is"),
])
def test_email(text: str, expected: str) -> None:
    out, counts = masked(text)
    assert out == expected
    assert counts["email"] == expected.count("<EMAIL>")


@pytest.mark.parametrize(("text", "expected"), [
    ("Server at 192.168.1.1, gateway 10.0.0.254.", "Server at <IP_ADDRESS>, gateway <IP_ADDRESS>."),
    ("IP地址192.168.0.1已被封禁", "IP地址<IP_ADDRESS>已被封禁"),
    ("255.255.255.255 and 0.0.0.0", "<IP_ADDRESS> and <IP_ADDRESS>"),
    ("fe80::1ff:fe23:4567:890a and 2001:db8::1 and ::ffff:192.0.2.128",
     "<IP_ADDRESS> and <IP_ADDRESS> and <IP_ADDRESS>"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "<IP_ADDRESS>"),
])
def test_ip_addresses(text: str, expected: str) -> None:
    out, counts = masked(text)
    assert out == expected
    assert counts["ip"] == expected.count("<IP_ADDRESS>")


@pytest.mark.parametrize("text", [
    "256.1.1.1 is not an address, nor is 10.0.0.300.",  # octets <= 255
    "We run version 1.2.3.4 and v2.0.0.1, firmware 3.1.0.2; 版本 1.0.0.1",  # version numbers are kept
    "The sequence 1.2.3.4.5 continues.",  # part of a longer dotted number
    "std::vector and a::b, at 10:30:45, MAC 00:1a:2b:3c:4d:5e, ratio 3:2:1",
])
def test_ip_false_positives(text: str) -> None:
    out, counts = masked(text)
    assert out == text and counts["ip"] == 0


@pytest.mark.parametrize(("text", "n"), [
    ("手机13812345678，请联系", 1),
    ("电话 138-1234-5678 或 +86 139 1234 5678", 2),
    ("Call +1 (555) 123-4567 or +44 20 7946 0958.", 2),
    ("US office: 555-123-4567, (555) 987-6543, 555.321.7654.", 3),
    ("座机 010-12345678，深圳 0755-1234567。", 2),
])
def test_phones(text: str, n: int) -> None:
    out, counts = masked(text)
    assert counts["phone"] == n
    assert out.count("<PHONE>") == n
    assert not any(ch.isdigit() for ch in out.replace("<PHONE>", ""))


@pytest.mark.parametrize("text", [
    "On 2023-10-15 we sold 1,234,567 units at 3.14159 each; ISBN 978-3-16-148410-0; 12/25/2023.",
    "Population 1400000000, season 2021-2022, score 3-2, room 101, 2024.05.01, 01.05.2024.",
    "Order 12345678901 shipped; account 9876543210123456; price +5 points; year 2024 12 31.",
    "The 555 123 items cost 4567 dollars in 1999-2000.",
])
def test_no_masks_on_ordinary_numbers_and_dates(text: str) -> None:
    out, counts = masked(text)
    assert out == text
    assert counts == {"email": 0, "ip": 0, "phone": 0}


def test_count_only_and_kinds() -> None:
    text = "mail a.b@example.com from 10.1.2.3 or call 13812345678"
    out, counts = masked(text, mask=False)
    assert out == text and counts == {"email": 1, "ip": 1, "phone": 1}
    out, counts = masked(text, kinds=["phone"], placeholders={"phone": "[TEL]"})
    assert out == "mail a.b@example.com from 10.1.2.3 or call [TEL]" and counts == {"phone": 1}


def test_stage_columns_and_counters() -> None:
    stage = Stage(PiiConfig(name="pii", kind="pii"), None)
    t = pa.table({"id": ["a", "b", "c"], "source": ["w"] * 3,
                  "text": ["x@y.com and z@w.org", "no pii here, 2024-01-01", "ip 1.2.3.4, tel 13912345678"]})
    out = stage.apply(t)
    assert out.column("text").to_pylist() == ["<EMAIL> and <EMAIL>", "no pii here, 2024-01-01",
                                              "ip <IP_ADDRESS>, tel <PHONE>"]
    assert out.column("pii_email").to_pylist() == [2, 0, 0]
    assert out.column("pii_ip").to_pylist() == [0, 0, 1]
    assert out.column("pii_phone").to_pylist() == [0, 0, 1]
    assert out.column("reason").null_count == 3
    assert stage.counters(out) == {"pii_email": 2, "pii_ip": 1, "pii_phone": 1, "pii_docs": 2}
    empty = stage.apply(t.slice(0, 0))
    assert empty.schema == out.schema


def test_curate_run_writes_totals_to_manifest(tmp_path: Path) -> None:
    docs = ["Contact me at jane@example.org or 555-123-4567.", "Nothing to see on 2024-05-01.",
            "服务器 10.0.0.1，手机 13812345678，邮箱 li@example.cn"]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs))
    write_config(tmp_path / "pipeline.yaml", {"name": "p", "output": "out", "workers": 1,
                                              "inputs": [{"name": "a", "path": "a.jsonl"}],
                                              "stages": [{"name": "pii"}]})
    curate("run", cwd=tmp_path, check=True)
    manifest = json.loads((tmp_path / "out" / "pii" / "_manifest.json").read_text())
    assert manifest["counts"]["kept"] == 3 and manifest["counts"]["removed"] == 0
    assert {k: manifest["stats"][k] for k in ("pii_email", "pii_ip", "pii_phone", "pii_docs")} == {
        "pii_email": 2, "pii_ip": 1, "pii_phone": 2, "pii_docs": 2}
    texts = pq.read_table(tmp_path / "out" / "pii" / "data").column("text").to_pylist()
    assert "jane@" not in " ".join(texts) and "13812345678" not in " ".join(texts)
