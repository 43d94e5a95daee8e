"""The one SipHash helper (`pipeline.hashing`) gives the values every stage has always written: shard's
shuffle order, mix's epoch cut, synth's sample, MinHash word tokens and the near-dup survivor order
were three wrappers before, and their outputs must not move by a bit. The expected numbers were taken
from those wrappers (`stages.shard.shuffle_keys`, `filters.minhash.hash_strings`) before they merged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.hashing import derive_seed, seed_key, shuffle_keys, siphash64

IDS = pa.array(["doc-1", "web/a.jsonl:17", "café", "", "x#2"])


def test_shuffle_order_is_what_shard_mix_and_synth_always_wrote() -> None:
    assert shuffle_keys(IDS, 0).tolist() == [7885859470025414709, 16187827533936442900, 1154133475593257579,
                                             14343194046234763318, 17969751662043715182]
    assert shuffle_keys(IDS, -5).tolist() == [6464203237956454795, 11268958181353932897, 898290160887338308,
                                              10216339755450684912, 77434921402510350]
    chunked = pa.chunked_array([IDS[:2], IDS[2:]])  # a table's column: same keys as one array
    assert shuffle_keys(chunked, 2**70 + 3).tolist() == [5497127630478562576, 15387642930683460038,
                                                         9248391609802650875, 16892428395842864867,
                                                         9083083765527373628]
    assert shuffle_keys(pa.array([], pa.string()), 1).dtype == np.uint64


def test_minhash_word_and_near_dup_order_keys_are_unchanged() -> None:
    assert siphash64(IDS, seed_key(0, "word")).tolist() == [2470872329430557949, 17693379525110225283,
                                                           8281162064066773321, 14975176625946360326,
                                                           8568873149308696019]
    assert siphash64(IDS, seed_key(7, "order")).tolist() == [3957628793740688063, 18060015925763916562,
                                                            14996780165900848362, 17378378767449573848,
                                                            8763119257379028722]
    assert [derive_seed(0, "minhash-permutations"), derive_seed(3, "band"), derive_seed(-1, "char")] == [
        8183292752083696949, 15254310541753294984, 3111437139732345810]


def test_seed_keys_are_sixteen_hex_digits_and_purposes_are_independent() -> None:
    assert seed_key(0) == "0" * 16 and seed_key(-1) == "f" * 16 and seed_key(2**64 + 5) == seed_key(5)
    assert len({seed_key(1, p) for p in ("word", "order", "char")}) == 3
    for key in (seed_key(9), seed_key(9, "word")):  # what pandas gives for the same objects and key
        objects = np.asarray(IDS.to_pylist(), dtype=object)
        assert siphash64(IDS, key).tolist() == pd.util.hash_array(objects, hash_key=key, categorize=False).tolist()
