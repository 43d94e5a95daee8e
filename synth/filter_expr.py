"""Safe filter expressions over signal columns, e.g. ``quality_bucket <= 11`` or
``quality_score < 0.5 and lang == 'en'``, compiled to ``pyarrow.compute`` expressions.

Why not ``eval``: recipes may come from user files, and a selection rule must never run code. The text is
parsed with :mod:`ast` and only a whitelist of node kinds is accepted (comparisons, ``and``/``or``/``not``,
column names, constants, ``in``/``not in`` a literal list, ``is None``/``is not None``); anything else is
rejected with the offending construct named. The result runs vectorized inside Arrow, and a reference to a
column the documents do not have is a configuration error, not a silent empty selection.

Null semantics are Arrow's: a comparison with a null value is null and the row is not selected (use
``x is None`` to select missing values explicitly).
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_EXPR_CHARS = 2000
_CONST_TYPES = (bool, int, float, str)


class FilterError(ValueError):
    """An expression that is not allowed, does not parse, or does not fit the documents' columns."""


_CMP = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}


class FilterExpr:
    """A parsed, validated expression: ``columns`` it reads and ``expression`` for ``Table.filter``."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text.strip():
            raise FilterError("filter expression is empty")
        if len(text) > MAX_EXPR_CHARS:
            raise FilterError(f"filter expression longer than {MAX_EXPR_CHARS} characters")
        self.text = text.strip()
        try:
            tree = ast.parse(self.text, mode="eval")
        except SyntaxError as e:
            raise FilterError(f"cannot parse filter {self.text!r}: {e.msg}") from None
        self.columns: list[str] = []
        self.expression: pc.Expression = self._bool(tree.body)

    def __repr__(self) -> str:
        return f"FilterExpr({self.text!r})"

    # -- validation against data ------------------------------------------------------------------------
    def check(self, schema: pa.Schema, where: str = "select") -> None:
        """Raise FilterError naming the missing column or the type mismatch, before any work is done."""
        missing = [c for c in self.columns if c not in schema.names]
        if missing:
            have = ", ".join(n for n in schema.names if n not in ("text", "meta"))
            raise FilterError(f"{where}: {self.text!r} uses column {missing[0]!r}, which the documents do not "
                              f"have (columns: {have}); add the stage that computes it before this one")
        try:
            schema.empty_table().filter(self.expression)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
            raise FilterError(f"{where}: {self.text!r} does not fit the column types: {e}") from None

    def mask(self, table: pa.Table) -> np.ndarray:
        """Boolean numpy mask of the selected rows (nulls count as not selected)."""
        if table.num_rows == 0:
            return np.zeros(0, dtype=bool)
        rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
        probe = table.select(self.columns).append_column("__row__", rows) if self.columns else \
            pa.table({"__row__": rows})
        selected = probe.filter(self.expression).column("__row__").to_numpy()
        out = np.zeros(table.num_rows, dtype=bool)
        out[selected] = True
        return out

    # -- compilation ------------------------------------------------------------------------------------
    def _bool(self, node: ast.AST) -> pc.Expression:
        """A node in boolean position: and/or/not, a comparison, a bare (boolean) column, True/False."""
        if isinstance(node, ast.BoolOp):
            parts = [self._bool(v) for v in node.values]
            out = parts[0]
            for p in parts[1:]:
                out = (out & p) if isinstance(node.op, ast.And) else (out | p)
            return out
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ~self._bool(node.operand)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Name):
            return self._field(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return pc.scalar(node.value)
        raise self._reject(node)

    def _compare(self, node: ast.Compare) -> pc.Expression:
        terms: list[pc.Expression] = []
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            terms.append(self._one_compare(left, op, right))
            left = right
        out = terms[0]
        for t in terms[1:]:
            out = out & t
        return out

    def _one_compare(self, left: ast.AST, op: ast.cmpop, right: ast.AST) -> pc.Expression:
        if isinstance(op, ast.In | ast.NotIn):
            values = self._const_list(right)
            expr = self._operand(left).isin(values)
            return ~expr if isinstance(op, ast.NotIn) else expr
        if isinstance(op, ast.Is | ast.IsNot):
            if not (isinstance(right, ast.Constant) and right.value is None):
                raise FilterError(f"{self.text!r}: 'is' only works with None (x is None, x is not None)")
            operand = self._operand(left)
            return operand.is_null() if isinstance(op, ast.Is) else operand.is_valid()
        fn = _CMP.get(type(op))
        if fn is None:
            raise self._reject(op)
        return fn(self._operand(left), self._operand(right))

    def _operand(self, node: ast.AST) -> pc.Expression:
        if isinstance(node, ast.Name):
            return self._field(node)
        return pc.scalar(self._const(node))

    def _field(self, node: ast.Name) -> pc.Expression:
        if node.id.startswith("__"):
            raise FilterError(f"{self.text!r}: column name {node.id!r} is not allowed")
        if node.id not in self.columns:
            self.columns.append(node.id)
        return pc.field(node.id)

    def _const(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, _CONST_TYPES):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = self._const(node.operand)
            if isinstance(inner, int | float) and not isinstance(inner, bool):
                return -inner if isinstance(node.op, ast.USub) else inner
        raise self._reject(node)

    def _const_list(self, node: ast.AST) -> list[Any]:
        if not isinstance(node, ast.List | ast.Tuple | ast.Set):
            raise FilterError(f"{self.text!r}: 'in' needs a literal list, e.g. lang in ['en', 'zh']")
        values = [self._const(e) for e in node.elts]
        if not values:
            raise FilterError(f"{self.text!r}: 'in' needs a non-empty list")
        return values

    def _reject(self, node: ast.AST) -> FilterError:
        snippet = ast.get_source_segment(self.text, node) if hasattr(node, "lineno") else None
        what = type(node).__name__
        return FilterError(
            f"{self.text!r}: {what}{f' ({snippet!r})' if snippet else ''} is not allowed; use comparisons "
            "of columns with constants, and/or/not, 'in [...]' and 'is None'"
        )


def compile_filter(text: str, schema: pa.Schema | None = None, where: str = "select") -> FilterExpr:
    """Parse ``text`` (and check it against ``schema`` when given)."""
    expr = FilterExpr(text)
    if schema is not None:
        expr.check(schema, where)
    return expr


def valid_expression(value: str | None) -> str | None:
    """The body of a settings field's validator (synth's `select`, heuristics' and domain rules' `where`):
    the text must parse; `FilterError` is a ValueError, so pydantic reports its message under the key."""
    if value is not None:
        FilterExpr(value)
    return value
