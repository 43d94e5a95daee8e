"""Code tokens for near-duplicate shingles: identifiers, numbers and operators, whitespace ignored.

Prose shingles (lower-cased words, punctuation dropped) would make `a = b + c` and `a == b - c` the
same shingles and let re-indented or re-wrapped copies of a file differ. For code, each identifier
(case kept), number, and operator (multi-character ones like `==`, `->`, `+=` as one token) is a
token and whitespace is only a separator, so copies that differ in formatting alone share every
shingle. (bigcode's MinHash dedup for The Stack splits code on every non-alphanumeric character;
keeping operators as tokens also tells `a + b` from `a - b`.) Tokenizing is one RE2 rewrite and one
split over the whole Arrow array.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.hashing import seed_key, siphash64

OPERATORS = (r"===|!==|\*\*=|<<=|>>=|\.\.\.|==|!=|<=|>=|->|=>|::|\+\+|--|&&|\|\||<<|>>|\*\*|//|\+=|-=|\*=|/=|%=|&=|"
             r"\|=|\^=|:=|\?\?")
TOKEN = rf"[\pL_$][\pL\pN_$]*|\pN[\pL\pN_.]*|{OPERATORS}|[^\s\pL\pN_$]"


def code_tokens(texts: pa.Array) -> pa.Array:
    """A list of token strings per text (an empty list for a text without tokens)."""
    spaced = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.fill_null(texts, ""), TOKEN, " \\0 "))
    tokens = pc.utf8_split_whitespace(spaced)
    empty = pc.equal(pc.binary_length(spaced), 0)  # Arrow splits "" into [""]
    return pc.if_else(empty, pa.scalar([], tokens.type), tokens) if pc.any(empty).as_py() else tokens


def code_token_hashes(texts: pa.Array, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token hashes (all documents concatenated) and per-document token counts, seeded like minhash's words."""
    tokens = code_tokens(texts)
    counts = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(tokens)
    if len(flat) == 0:
        return np.zeros(0, dtype=np.uint64), counts
    encoded = pc.dictionary_encode(flat)
    vocab_hash = siphash64(encoded.dictionary, seed_key(seed, "code"))
    return vocab_hash[encoded.indices.to_numpy(zero_copy_only=False)], counts


# comments of the common syntaxes: `#` and `//` to the end of the line, `/* ... */` blocks. Strings are not
# parsed, so a `#` or `//` inside a string literal is cut too; eval items and documents are cut the same way,
# which is what matching needs.
COMMENT = r"(?s)/\*.*?\*/|(?m)//[^\n]*$|#[^\n]*$"


def strip_comments(texts: pa.Array) -> pa.Array:
    """Texts with line and block comments removed (code normalization before n-gram matching)."""
    return pc.replace_substring_regex(pc.fill_null(texts, ""), COMMENT, " ")
