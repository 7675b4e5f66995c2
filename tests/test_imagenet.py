"""ImageNet's class names from the installed package, and the lookup by any of them."""

from __future__ import annotations

import time

import pytest

from app import imagenet
from app.errors import InvalidContent


@pytest.fixture(scope="module")
def classes() -> imagenet.Classes:
    return imagenet.classes()


def test_1000_unique_names_in_the_index_order(classes: imagenet.Classes) -> None:
    names = classes.names
    assert len(names) == len(set(names)) == 1000
    assert names[:3] == ("tench", "goldfish", "great white shark")
    assert (names[207], names[281], names[285], names[967]) == (
        "golden retriever",
        "tabby",
        "Egyptian cat",
        "espresso",
    )
    assert names[999] == "toilet tissue"


def test_classes_sharing_a_first_synonym_are_told_apart(classes: imagenet.Classes) -> None:
    assert classes.names[134] == "crane (crane bird)"
    assert classes.names[517] == "crane (construction crane)"
    assert classes.names[639] == "maillot (one-piece bathing suit)"


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("Egyptian cat", 285),
        ("egyptian CAT", 285),
        ("  golden   retriever ", 207),
        ("golden_retriever", 207),
        ("tabby cat", 281),  # a WordNet synonym
        ("Tinca tinca", 0),
        ("crane bird", 134),  # a curated name
        ("crane (construction crane)", 517),  # the shown name
        ("Cardigan", 264),  # the corgi; "cardigan" is the sweater
        ("cardigan", 474),
        ("281", 281),
        (999, 999),
    ],
)
def test_lookup_takes_any_name_in_any_case(
    classes: imagenet.Classes, name: str | int, index: int
) -> None:
    assert classes.lookup(name) == index


def test_a_name_two_classes_share_lists_both(classes: imagenet.Classes) -> None:
    with pytest.raises(InvalidContent) as e:
        classes.lookup("crane", field="weights.classes")
    assert (e.value.code, e.value.field) == ("ambiguous_name", "weights.classes")
    assert "134 crane (crane bird)" in e.value.detail
    assert "517 crane (construction crane)" in e.value.detail


def test_a_miss_gets_close_names(classes: imagenet.Classes) -> None:
    with pytest.raises(InvalidContent) as e:
        classes.lookup("golden retreiver")
    assert e.value.code == "unknown_name" and "207 golden retriever" in e.value.detail
    assert classes.close("egyptain cat")[0] == 285


def test_an_index_out_of_range_is_refused(classes: imagenet.Classes) -> None:
    for bad in (1000, "1000", -1):
        with pytest.raises(InvalidContent) as e:
            classes.lookup(bad)
        assert e.value.code in ("out_of_range", "unknown_name")


def test_a_long_name_is_refused_at_once_with_a_short_message(classes: imagenet.Classes) -> None:
    t0 = time.perf_counter()
    with pytest.raises(InvalidContent) as e:
        classes.lookup("cat" * 20_000)
    assert time.perf_counter() - t0 < 0.5
    assert len(e.value.detail) < 300
