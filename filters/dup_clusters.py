"""Near-duplicate clusters without removal by chain: survivors, member verdicts, cluster sizes.

Connected components over verified LSH edges chain: A ~ B ~ C ~ … links documents that share
little with each other (templated pages, forms, transcripts each a few words from the next), and
removing every member but one of such a component loses documents that are nobody's duplicate.
So a component only proposes a survivor (the best document by the survivor rule); a member leaves
only when its own similarity with that survivor passes the threshold. Members that fail stay open:
the `near_dedup` stage recomputes components over the edges among open members and repeats, so the
rest of a chain forms its own clusters, each verified against its own survivor.

Pure functions on Arrow tables (the stage runs them as reduces of the executor's group-by):

* `survivor_pairs`: per component, the survivor and one (member, survivor) pair per other member;
* `verdicts`: the decision for every pair once its similarity is known, and each survivor's
  cluster size (`dup_count`: the sum of the members' own counts, so exact-duplicate counts carry on).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Rank = tuple[tuple[str, bool, str], ...]  # (column, descending, arrow type) of the survivor rule

PAIR_SCHEMA = pa.schema([("u", pa.int64()), ("v", pa.int64()), ("s_id", pa.string()), ("s_part", pa.int32()),
                         ("s_row", pa.int64()), ("u_weight", pa.int64()), ("s_weight", pa.int64()),
                         ("removable", pa.bool_())])

DECISION_SCHEMA = pa.schema([("node", pa.int64()), ("part", pa.int32()), ("row", pa.int64()),
                             ("cluster", pa.string()), ("dup", pa.bool_()), ("count", pa.int64()),
                             ("open", pa.bool_())])


def survivor_order(rank: Rank) -> list[tuple[str, str, str]]:
    """Sort keys that put each component's survivor first: documents of earlier runs (never removed
    again), then the survivor rule, then the smallest id (nulls last everywhere)."""
    order: list[tuple[str, str, str]] = [("root", "ascending", "at_end"), ("is_index", "descending", "at_end")]
    for col, desc, _ in rank:
        name = "id" if col == "id" else f"rank_{col}"
        order.append((name, "descending" if desc else "ascending", "at_end"))
    order.append(("id", "ascending", "at_end"))
    return order


def survivor_pairs(table: pa.Table, rank: Rank) -> pa.Table:
    """Members of whole components (root, node, part, row, id, is_index, weight, rank_*) -> one
    (member u, survivor v) pair per member that is not its component's survivor."""
    if table.num_rows == 0:
        return PAIR_SCHEMA.empty_table()
    t = table.sort_by(survivor_order(rank))
    roots = t.column("root").to_numpy()
    first = np.ones(len(roots), dtype=bool)
    first[1:] = roots[1:] != roots[:-1]
    head = pa.array(np.flatnonzero(first)[np.cumsum(first) - 1])
    member = pa.array(~first)
    out = {
        "u": t.column("node").filter(member),
        "v": t.column("node").take(head).filter(member),
        "s_id": t.column("id").take(head).filter(member),
        "s_part": t.column("part").take(head).filter(member),
        "s_row": t.column("row").take(head).filter(member),
        "u_weight": t.column("weight").filter(member),
        "s_weight": t.column("weight").take(head).filter(member),
        "removable": pc.invert(t.column("is_index")).filter(member),
    }
    return pa.table(out, schema=PAIR_SCHEMA).sort_by([("v", "ascending"), ("u", "ascending")])


def node_locations(nodes: np.ndarray, base: tuple[int, ...], n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """(partition, row) of global node numbers; -1 for documents of earlier runs (>= n_docs)."""
    starts = np.asarray(base, dtype=np.int64)
    part = np.searchsorted(starts, nodes, side="right").astype(np.int64) - 1
    row = nodes - starts[np.maximum(part, 0)] if len(starts) else np.zeros(len(nodes), np.int64)
    old = nodes >= n_docs
    part[old], row[old] = -1, -1
    return part.astype(np.int32), row.astype(np.int64)


def verdicts(pairs: pa.Table, similarity: np.ndarray, threshold: float, base: tuple[int, ...],
             n_docs: int) -> pa.Table:
    """Decisions for (member, survivor) pairs whose similarity is known, all pairs of a survivor
    together: a removable member at or above the threshold leaves as a duplicate of that survivor;
    the others stay open (their own clusters are decided in the next round). A survivor that keeps
    at least one member gets a row with its cluster size; one that keeps none is a singleton."""
    if pairs.num_rows == 0:
        return DECISION_SCHEMA.empty_table()
    u = pairs.column("u").to_numpy()
    v = pairs.column("v").to_numpy()
    removable = pairs.column("removable").to_numpy(zero_copy_only=False).astype(bool)
    dup = removable & (np.asarray(similarity) >= threshold)
    part, row = node_locations(u, base, n_docs)
    s_id = pairs.column("s_id")
    members = pa.table({
        "node": u, "part": part, "row": row,
        "cluster": pc.if_else(pa.array(dup), s_id, pa.scalar(None, pa.string())),
        "dup": dup, "count": pa.nulls(len(u), pa.int64()), "open": ~dup,
    }, schema=DECISION_SCHEMA)
    # survivors with at least one member removed for them: sum of counts (their own included)
    weights = pairs.column("u_weight").to_numpy(zero_copy_only=False)
    order = np.argsort(v, kind="stable")
    vs, ws, ds = v[order], weights[order], dup[order]
    starts = np.flatnonzero(np.concatenate([[True], vs[1:] != vs[:-1]]))
    removed_weight = np.add.reduceat(np.where(ds, ws, 0), starts)
    removed_any = np.logical_or.reduceat(ds, starts)
    first = order[starts][removed_any]
    survivors = pa.table({
        "node": v[first], "part": pairs.column("s_part").take(pa.array(first)),
        "row": pairs.column("s_row").take(pa.array(first)), "cluster": s_id.take(pa.array(first)),
        "dup": np.zeros(len(first), bool),
        "count": pairs.column("s_weight").to_numpy(zero_copy_only=False)[first] + removed_weight[removed_any],
        "open": np.zeros(len(first), bool),
    }, schema=DECISION_SCHEMA)
    return pa.concat_tables([members, survivors]).sort_by([("node", "ascending")])
