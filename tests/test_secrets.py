"""`secrets`: planted credentials of every kind are gone, their files kept and still parsing; look-alikes stay."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.secrets import KINDS, redact_secrets
from stages.secrets import SecretsConfig, Stage
from tests.conftest import curate, write_config

# Planted values are made up here, in each service's published format (none is a real credential).
AWS_KEY = "AKIA" + "Q7XW3JD9LMPZ4TRB"
AWS_SECRET = "Zt8kQ2vN5xB7mP1rL9cW4yH6jD3fS0aGeUoI+/Rk"
GITHUB = "ghp_" + "r8Tq2LmZ5vX9kB1nW7cH4yD6jF3sA0gPe2Uo"
GITHUB_PAT = "github_pat_" + "11ABCDE2F0r8Tq2LmZ5vX9_kB1nW7cH4yD6jF3sA0gPe2UoQ7XW3JD9LMPZ4TRBa1b2c3d4e5f6g7h8i9j0kLmN"
GITLAB = "glpat-" + "x9Lm2Qv7Zt4Rb8Nc1Kd5"
SLACK = "xoxb-" + "123456789012-1234567890123-Zt8kQ2vN5xB7mP1rL9cW4yH6"
SLACK_HOOK = "https://hooks.slack.com/services/" + "T0ABCDEFG/B0HIJKLMN/Zt8kQ2vN5xB7mP1rL9cW4yH6"
STRIPE = "sk_live_" + "51Hx9Lm2Qv7Zt4Rb8Nc1Kd5aB"
GOOGLE = "AIza" + "SyD-9tLm2Qv7Zt4Rb8Nc1Kd5aBx3Yw6Ue0P"  # AIza + 35
SENDGRID = "SG." + "x9Lm2Qv7Zt4Rb8Nc1Kd5aB" + "." + "Zt8kQ2vN5xB7mP1rL9cW4yH6jD3fS0aGeUoIRk2Lm9q"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ"
       + ".Zt8kQ2vN5xB7mP1rL9cW4yH6jD3fS0aGeUoIRk2Lm9q")
TWILIO = "SK" + "0f3a9c2b7d1e4f5a6b8c9d0e1f2a3b4c"
NPM = "npm_" + "Zt8kQ2vN5xB7mP1rL9cW4yH6jD3fS0aGeUoI"
PRIVATE_KEY = ("-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEAx9Lm2Qv7Zt4Rb8Nc1Kd5aBx3Yw6Ue0PqZt8kQ2vN5xB7mP1r"
               "\\nL9cW4yH6jD3fS0aGeUoIRk2Lm9q\\n-----END RSA PRIVATE KEY-----")
DB_PASSWORD = "s3cr3t-Pa55"
API_TOKEN = "f81d4fae7dec11d0a76500a0c91e6bf6b7e3"

SETTINGS_PY = f'''"""Settings for the shop service."""
import os

AWS_ACCESS_KEY_ID = "{AWS_KEY}"
AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"
GITHUB_TOKEN = '{GITHUB}'
GITHUB_FINE_GRAINED = "{GITHUB_PAT}"
GITLAB_TOKEN = "{GITLAB}"
SLACK = {{"bot": "{SLACK}", "hook": "{SLACK_HOOK}"}}
STRIPE_KEY = "{STRIPE}"
MAPS_KEY = "{GOOGLE}"
SENDGRID = "{SENDGRID}"
SESSION = "{JWT}"
TWILIO_API_KEY = "{TWILIO}"
SIGNING_KEY = "{PRIVATE_KEY}"
DATABASE_URL = "postgresql://shop:{DB_PASSWORD}@db.internal:5432/shop"
db_password = "{DB_PASSWORD}"
api_token = "{API_TOKEN}"
ADMIN_EMAIL = "ops-team@shop-example.com"
UPSTREAM = "93.184.216.34"

# never secrets:
REQUEST_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # sha256 of "test"
PASSWORD = os.environ.get("SHOP_PASSWORD")
password_from_env = "${{SHOP_PASSWORD}}"
token_template = "{{{{ vault_token }}}}"
SECRET_KEY = "changeme"
PASSWORD_HINT = "xxxxxxxx"
LOCAL = "127.0.0.1"
LAN = "192.168.1.20"
DNS = "8.8.8.8"
VERSION = "version 1.2.3.4"
MAX_TOKENS = "1024"
'''
NPMRC = f"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={NPM}\n"
CONFIG_JS = f'''const config = {{
  stripeKey: "{STRIPE}",
  password: "{DB_PASSWORD}",
  mongo: "mongodb+srv://app:{DB_PASSWORD}@cluster0.example.net/shop",
}};
module.exports = config;
'''
PLANTED = [AWS_KEY, AWS_SECRET, GITHUB, GITHUB_PAT, GITLAB, SLACK, SLACK_HOOK, STRIPE, GOOGLE, SENDGRID, JWT, TWILIO,
           NPM, "MIIEowIBAAKCAQEA", DB_PASSWORD, API_TOKEN, "ops-team@shop-example.com", "93.184.216.34"]
KEPT = ["0f8fad5b-d9cb-469f-a165-70867728950e", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        'os.environ.get("SHOP_PASSWORD")', "${SHOP_PASSWORD}", "{{ vault_token }}", '"changeme"', '"xxxxxxxx"',
        "127.0.0.1", "192.168.1.20", "8.8.8.8", "version 1.2.3.4", '"1024"']


def redact(text: str) -> tuple[str, dict[str, int]]:
    out, counts = redact_secrets(pa.array([text]))
    return out.to_pylist()[0], counts[0]


def test_every_kind_is_redacted_and_python_still_parses() -> None:
    out, counts = redact(SETTINGS_PY)
    for value in PLANTED:
        assert value not in out, value
    for value in KEPT:
        assert value in out, value
    ast.parse(out)
    assert 'AWS_ACCESS_KEY_ID = "<SECRET_AWS_KEY>"' in out
    assert 'DATABASE_URL = "postgresql://shop:<SECRET_PASSWORD>@db.internal:5432/shop"' in out
    assert 'SIGNING_KEY = "<SECRET_PRIVATE_KEY>"' in out and 'ADMIN_EMAIL = "<EMAIL>"' in out
    assert counts == {"aws_access_key": 1, "aws_secret_key": 1, "github_token": 2, "gitlab_token": 1,
                      "slack_token": 2, "stripe_key": 1, "google_api_key": 1, "sendgrid_key": 1, "jwt": 1,
                      "twilio_key": 1, "private_key": 1, "connection_string": 1, "password_assignment": 1,
                      "token_assignment": 1, "email": 1, "ip": 1}


def test_other_file_kinds() -> None:
    out, counts = redact(NPMRC)
    assert NPM not in out and counts == {"npm_token": 1}
    assert "//registry.npmjs.org/:_authToken=<SECRET_NPM_TOKEN>" in out
    out, counts = redact(CONFIG_JS)
    assert STRIPE not in out and DB_PASSWORD not in out
    assert 'password: "<SECRET_PASSWORD>"' in out and "mongodb+srv://app:<SECRET_PASSWORD>@cluster0" in out
    block = PRIVATE_KEY.replace("\\n", "\n")
    out, counts = redact(f"# deploy key\n{block}\n")
    assert out == "# deploy key\n<SECRET_PRIVATE_KEY>\n" and counts == {"private_key": 1}


@pytest.mark.parametrize("text", [
    "Plain prose about a password policy: use long passphrases.",
    'checksum = "d41d8cd98f00b204e9800998ecf8427e"  # md5 of the empty file',
    'token = os.getenv("API_TOKEN")',
    'secret = "abcdefghijkl"',
    'api_key = "your_api_key_here"',
    'url = "https://example.org:8443/path"  # a port is not a password',
    "ids: [123e4567-e89b-12d3-a456-426614174000]",
    '"parse-passwd": "^1.0.0",',  # a package named after passwords, in a lock file
    "'/%2fetc%2Fpasswd' => '/etc/passwd',",  # a path, not a password
])
def test_false_positive_guards(text: str) -> None:
    out, counts = redact(text)
    assert out == text and counts == {}


def test_stage_keeps_documents_and_counts(tmp_path: Path) -> None:
    stage = Stage(SecretsConfig(name="secrets", skip_sources=["web"]), None)
    t = pa.table({"id": ["a", "b", "c"], "source": ["code", "code", "web"],
                  "text": [SETTINGS_PY, "print('hello')", f"key {AWS_KEY}"]})
    out = stage.apply(t)
    assert out.column("reason").null_count == 3 and out.num_rows == 3
    assert out.column("secrets").to_pylist() == [18, 0, None]  # the 18 matches counted above
    assert out.column("text").to_pylist()[2] == f"key {AWS_KEY}"  # out of scope: untouched
    totals = stage.counters(out)
    assert totals["secrets_docs"] == 1 and totals["secrets_github_token"] == 2
    counted = Stage(SecretsConfig(name="secrets", mask=False, kinds=["aws_access_key"]), None).apply(t)
    assert counted.column("text").to_pylist() == t.column("text").to_pylist()
    assert counted.column("secret_kinds").to_pylist() == ["aws_access_key:1", None, "aws_access_key:1"]
    assert set(KINDS) >= {"private_key", "email", "ip", "connection_string"}


def test_curate_run(tmp_path: Path) -> None:
    repo = tmp_path / "repos" / "shop"
    repo.mkdir(parents=True)
    (repo / "settings.py").write_text(SETTINGS_PY)
    (repo / ".npmrc").write_text(NPMRC)
    (repo / "config.js").write_text(CONFIG_JS)
    write_config(tmp_path / "pipeline.yaml", {"name": "p", "output": "out", "workers": 1,
                                              "inputs": [{"name": "code", "path": "repos/*", "format": "repo"}],
                                              "stages": [{"name": "secrets"}]})
    curate("run", cwd=tmp_path, check=True)
    manifest = json.loads((tmp_path / "out" / "secrets" / "_manifest.json").read_text())
    assert manifest["counts"]["kept"] == 3 and manifest["counts"]["removed"] == 0
    assert manifest["stats"]["secrets_docs"] == 3 and manifest["stats"]["secrets_npm_token"] == 1
    rows = {r["path"]: r["text"] for r in pq.read_table(tmp_path / "out" / "secrets" / "data").to_pylist()}
    everything = "\n".join(rows.values())
    assert not [v for v in PLANTED if v in everything]
    ast.parse(rows["settings.py"])
