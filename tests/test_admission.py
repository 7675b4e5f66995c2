"""routes.output in-process: the one JSON writer writes what json.dumps would, byte for byte
where the two agree (compact separators, no ASCII escaping), and never a NaN."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.routes.output import json_bytes

_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    # Long strings: base64-like, and ones that need escaping.
    st.sampled_from(["A" * (1 << 20) + "x", 'é"\\\n' * 300_000]),
)
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(_JSON)
def test_json_bytes_parse_back_to_the_same_value(content: Any) -> None:
    assert json.loads(json_bytes(content)) == content


def test_non_finite_numbers_are_written_as_null() -> None:
    assert json.loads(json_bytes({"a": [math.nan, math.inf, -math.inf, 1.5]})) == {
        "a": [None, None, None, 1.5]
    }
