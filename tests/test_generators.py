"""The seeded generators: shapes, seeds, and the properties each scenario relies on."""

from __future__ import annotations

import numpy as np
import pytest

from app import generators
from app.errors import InvalidContent


def gen(
    name: str, c: int = 6, h: int = 20, w: int = 24, seed: int = 0, **p: float
) -> generators.Generated:
    return generators.generate(name, c, h, w, seed, p)


@pytest.mark.parametrize("name", list(generators.GENERATORS))
def test_generators_are_seeded_and_shaped(name: str) -> None:
    a, b, c = gen(name, seed=5), gen(name, seed=5), gen(name, seed=6)
    channels = generators.GENERATORS[name].fixed_channels or 6
    assert a.maps.shape == (channels, 20, 24) and a.maps.dtype == np.float32
    np.testing.assert_array_equal(a.maps, b.maps)
    assert not np.array_equal(a.maps, c.maps)
    assert np.isfinite(a.maps).all()
    assert len(a.channel_names) == channels


def test_gaussian_is_signed_with_about_half_negative() -> None:
    x = gen("gaussian", c=8, h=64, w=64).maps
    assert 0.45 < (x < 0).mean() < 0.55


def test_nonnegative_maps_have_no_negatives_but_have_zeros() -> None:
    x = gen("nonnegative").maps
    assert x.min() == 0.0 and (x == 0).mean() > 0.2


def test_smooth_maps_have_low_effective_rank() -> None:
    x = gen("smooth", c=64, h=28, w=28, rank=8).maps.reshape(64, -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    s = np.linalg.svd(x, compute_uv=False) ** 2
    assert s[:8].sum() / s.sum() > 0.95
    assert s[:2].sum() / s.sum() < 0.95


def test_catdog_truth_is_where_cat_beats_dog() -> None:
    g = gen("catdog", c=4, h=48, w=48)
    truth = g.truth["cat_over_dog"]
    np.testing.assert_array_equal(truth, g.maps[0] > g.maps[1])
    assert g.maps[:2].min() >= 0 and 0.1 < truth.mean() < 0.9
    assert g.channel_names[:2] == ["cat evidence", "dog evidence"]


def test_catdog_needs_two_channels() -> None:
    with pytest.raises(InvalidContent, match="channels >= 2"):
        gen("catdog", c=1)


def test_edges_are_piecewise_constant_and_marked() -> None:
    g = gen("edges", c=3, h=32, w=32)
    edge = g.truth["edge"]
    flat = ~edge
    # Away from the marked edges every pixel equals its right neighbour in every channel.
    same = np.all(g.maps[:, :, 1:] == g.maps[:, :, :-1], axis=0)
    assert same[flat[:, :-1] & flat[:, 1:]].all()
    assert edge.any()


def test_unknown_generator_lists_the_valid_names() -> None:
    with pytest.raises(InvalidContent, match="catdog"):
        gen("nope")


def test_generator_param_out_of_range_is_refused() -> None:
    with pytest.raises(InvalidContent, match="rank must be between"):
        gen("smooth", rank=0)


def test_the_cache_returns_equal_copies_and_stays_within_its_bytes() -> None:
    cache = generators.Cache(limit=3 * 4 * 20 * 24 * 4)  # room for three 4×20×24 maps
    first = generators.generate("catdog", 4, 20, 24, 1, {}, cache)
    again = generators.generate("catdog", 4, 20, 24, 1, {}, cache)
    np.testing.assert_array_equal(first.maps, again.maps)
    np.testing.assert_array_equal(first.truth["cat_over_dog"], again.truth["cat_over_dog"])
    again.maps[:] = 99.0  # a caller's change never reaches the cache
    np.testing.assert_array_equal(
        generators.generate("catdog", 4, 20, 24, 1, {}, cache).maps, first.maps
    )
    for seed in range(2, 8):
        generators.generate("gaussian", 4, 20, 24, seed, {}, cache)
    assert cache.size <= cache.limit
    # A different parameter is a different input.
    other = generators.generate("catdog", 4, 20, 24, 1, {"blobs": 5}, cache)
    assert not np.array_equal(other.maps, first.maps)
    assert generators.generate("gaussian", 4, 20, 24, 2, {}, generators.Cache(0)).maps.shape == (
        4,
        20,
        24,
    )
