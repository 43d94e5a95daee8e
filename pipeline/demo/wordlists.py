"""Word lists and sentence templates of the demo generator, read from `pipeline/demo/data/*.yaml` once.

They are data, not code: `text.py` names a file (`load("news_en")`) and picks entries by key. Lists come
back as tuples (immutable, shared by every document) so no generator can change a list another one reads.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    return value


@cache
def load(name: str) -> dict[str, Any]:
    """The entries of `data/<name>.yaml` (a missing file or key fails at import, naming it)."""
    text = resources.files("pipeline.demo").joinpath("data", f"{name}.yaml").read_text(encoding="utf-8")
    return _freeze(yaml.load(text, Loader=_Loader))
