"""Reads which versions a lock file pins, to show them on the status page."""

import json


def pinned(path: str) -> dict[str, str]:
    with open(path) as fh:
        data = json.load(fh)
    packages = data.get("packages", {})
    return {name.removeprefix("node_modules/"): info["version"] for name, info in packages.items() if name}
