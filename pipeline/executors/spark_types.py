"""Arrow schemas as Spark can carry them: what the Spark executor's tasks and the Spark generation
engine (`spark_synth`) declare for `mapInArrow`. Spark has no unsigned or fixed-size types, so
values travel in the nearest signed/variable type and are cast back on the Arrow side."""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def sparkable(schema: pa.Schema) -> pa.Schema:
    """The nearest schema Spark can carry (no unsigned or fixed-size types); values cast back later."""

    def conv(t: pa.DataType) -> pa.DataType:
        if pa.types.is_unsigned_integer(t):
            return {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}.get(t.bit_width, pa.decimal128(20, 0))
        if pa.types.is_fixed_size_binary(t) or pa.types.is_large_binary(t):
            return pa.binary()
        if pa.types.is_large_string(t):
            return pa.string()
        if pa.types.is_dictionary(t):
            return conv(t.value_type)
        if pa.types.is_null(t):
            return pa.string()
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            return pa.list_(conv(t.value_type))
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, conv(f.type)) for f in t])
        return t

    return pa.schema([pa.field(f.name, conv(f.type)) for f in schema])


def spark_schema(schema: pa.Schema) -> Any:
    """Spark StructType for an Arrow schema (every field nullable: Spark checks nothing else)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(sparkable(schema))
