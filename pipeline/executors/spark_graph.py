"""Connected components on Spark DataFrames: alternating large-star / small-star (Kiveris et al. 2014).

No graph package (GraphFrames needs a Maven jar): two group-bys and two joins per round. Edges are
kept as (u, v) with v < u, i.e. "v is a candidate parent of u". Large-star links every node's
larger neighbours to its smallest neighbour; small-star links a node and its smaller neighbours to
the smallest of them. Rounds repeat until every node has one parent and parents have none: then
each star's centre is its component's smallest node, the label union-find gives locally. Chains
shrink geometrically, stars finish in a round. Every round cuts the lineage (a reliable checkpoint
a Parquet copy when a directory is given, else a local checkpoint), so the plan does not grow with the
rounds; the convergence test (one more job) runs only once the count stops changing. DataFrame API only,
so it runs through Spark Connect too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger("curate")


def _cut(df: DataFrame, checkpoint_dir: str | None, round_no: int) -> tuple[DataFrame, int]:
    """Materialize `df` with its lineage cut; returns it with its row count. With a directory the
    round is written there as Parquet (it survives a lost executor), else it is a local checkpoint."""
    if checkpoint_dir:
        path = f"{checkpoint_dir.rstrip('/')}/round-{round_no:04d}"
        df.write.mode("overwrite").parquet(path)
        df = df.sparkSession.read.parquet(path)
    else:
        df = df.localCheckpoint(eager=True)
    return df, df.count()


def _parents(edges: DataFrame) -> DataFrame:
    """Each node's smallest smaller neighbour: (node, m)."""
    from pyspark.sql import functions as F

    return edges.groupBy("u").agg(F.min("v").alias("m"))


def large_star(edges: DataFrame) -> DataFrame:
    """For every node x, each larger neighbour y gets the edge (y, min(x, smaller neighbours of x))."""
    from pyspark.sql import functions as F

    m = _parents(edges).withColumnRenamed("u", "x")
    joined = edges.join(m, edges["v"] == m["x"], "left")
    return joined.select(F.col("u"), F.coalesce(F.col("m"), F.col("v")).alias("v")).distinct()


def small_star(edges: DataFrame) -> DataFrame:
    """For every node x with smaller neighbours N, link x and N to m = min(N)."""
    from pyspark.sql import functions as F

    m = _parents(edges)
    others = edges.join(m, "u").filter(F.col("v") != F.col("m")).select(F.col("v").alias("u"), F.col("m").alias("v"))
    return others.unionByName(m.select("u", F.col("m").alias("v"))).distinct()


def is_star_forest(edges: DataFrame) -> bool:
    """True when every node has at most one parent and no parent has a parent (one Spark job)."""
    from pyspark.sql import functions as F

    p = edges.groupBy("u").agg(F.count("v").alias("n"), F.min("v").alias("lo"))
    children = p.select(F.col("u").alias("c"))
    row = p.join(children, p["lo"] == children["c"], "left").agg(
        F.sum(F.when(F.col("n") > 1, 1).otherwise(0)).alias("multi"), F.count("c").alias("deep")).first()
    return row is None or ((row["multi"] or 0) == 0 and (row["deep"] or 0) == 0)


def connected_components(edges: DataFrame, checkpoint_dir: str | None = None, max_rounds: int = 200) -> DataFrame:
    """Components of the undirected graph given by `edges` (columns u, v: integer node ids).

    Returns (node, comp) for every node that has an edge, comp = the smallest node of its component
    (isolated nodes are not listed: they are their own component). Raises RuntimeError if it has
    not converged after `max_rounds` rounds (it needs O(log² n) at worst, a handful in practice)."""
    from pyspark.sql import functions as F

    e = edges.select(F.greatest("u", "v").cast("long").alias("u"), F.least("u", "v").cast("long").alias("v"))
    e, count = _cut(e.filter(F.col("u") != F.col("v")).distinct(), checkpoint_dir, 0)
    for rounds in range(1, max_rounds + 1):
        previous = count
        e, count = _cut(small_star(large_star(e)), checkpoint_dir, rounds)
        # a star forest is a fixed point, so its size stops changing: test for it only then
        if count == previous and is_star_forest(e):
            log.debug("connected components: %d rounds", rounds)
            break
    else:
        raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
    roots = e.select(F.col("v").alias("node")).distinct().select("node", F.col("node").alias("comp"))
    return e.select(F.col("u").alias("node"), F.col("v").alias("comp")).unionByName(roots)
