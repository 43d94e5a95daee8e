"""No function in `stages/` above cyclomatic complexity 15: a stage is settings, declared columns and short
functions; a longer decision goes into a helper with a name that says what it decides.

Complexity is McCabe's, counted on the syntax tree as radon does: 1, plus one per `if`/`elif`, ternary,
loop (`for`, `while`, and every `for`/`if` of a comprehension), `except`, `assert`, `case`, and per extra
operand of `and`/`or`. A nested function or lambda is a function of its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

LIMIT = 15
NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _decisions(node: ast.AST) -> int:
    """Decision points in `node`'s body, not descending into nested functions or classes."""
    total = 0
    for child in ast.iter_child_nodes(node):
        if isinstance(child, NESTED):
            continue
        if isinstance(child, ast.If | ast.IfExp | ast.For | ast.AsyncFor | ast.While | ast.ExceptHandler
                      | ast.Assert | ast.match_case):
            total += 1
        elif isinstance(child, ast.BoolOp):
            total += len(child.values) - 1
        elif isinstance(child, ast.comprehension):
            total += 1 + len(child.ifs)
        total += _decisions(child)
    return total


def complexities(source: str, filename: str) -> list[tuple[str, int, int]]:
    """(qualified name, line, complexity) of every function and lambda in `source`."""
    out = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                name = f"{prefix}{getattr(child, 'name', '<lambda>')}"
                out.append((name, child.lineno, 1 + _decisions(child)))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source, filename), "")
    return out


def test_counting_matches_mccabe_on_known_shapes() -> None:
    src = ("def f(a, b):\n    if a and b or a:\n        return [x for x in a if x]\n"
           "    for i in b:\n        try:\n            pass\n        except ValueError:\n            pass\n"
           "    return 1 if a else 2\n")
    # 1 + if + (and, or) + comprehension for + its if + for + except + ternary
    assert complexities(src, "f.py") == [("f", 1, 9)]


@pytest.mark.parametrize("path", sorted((REPO / "stages").glob("*.py")), ids=lambda p: p.name)
def test_no_function_in_stages_above_the_limit(path: Path) -> None:
    over = [f"{path.name}:{line} {name} has complexity {cc}" for name, line, cc in
            complexities(path.read_text(encoding="utf-8"), str(path)) if cc > LIMIT]
    assert not over, "\n".join(over)
