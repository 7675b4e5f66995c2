"""The page's one-click scenarios: what each sends and the point it makes.

One definition, read by the template (the buttons), the catalogue (the page's
requests) and the tests (every request is valid for its endpoint). The page keeps
only the wording of each fact a headline states, computed from the response;
`headline` names the facts a scenario leads with.
"""

from __future__ import annotations

from typing import Any

from app.schemas.catalogue import Scenario

COMPARE = "/api/v1/compare"
_AUTO: dict[str, Any] = {"device": "auto"}

SCENARIOS: list[Scenario] = [
    Scenario(
        id="relu-enough",
        title="Is ReLU alone enough?",
        point="Channel 0 is cat evidence, channel 1 dog evidence. The 1×1 conv computes "
        "cat − dog at every pixel, so its ReLU lights exactly where there is more cat than dog; "
        "a ReLU sees one value at a time and cannot.",
        endpoint=COMPARE,
        request={
            "input": {"generator": "catdog", "height": 64, "width": 64, "channels": 4, "seed": 0},
            "weights": {"matrix": [[1, -1, 0, 0]], "bias": [0]},
            **_AUTO,
        },
        headline=["truth", "changed"],
    ),
    Scenario(
        id="relu-on-relu",
        title="ReLU on ReLU output does nothing",
        point="These maps come from an earlier ReLU, so they are already non-negative: "
        "relu(relu(x)) = relu(x). The 1×1 conv still mixes them into something new.",
        endpoint=COMPARE,
        request={
            "input": {"generator": "nonnegative", "height": 28, "width": 28, "channels": 8},
            "weights": {"preset": "random", "out_channels": 8, "seed": 0},
            **_AUTO,
        },
        headline=["changed", "shape"],
    ),
    Scenario(
        id="keep192",
        title="Keep 192 channels",
        point="The question's case: 28×28×192 in, 192 filters out. The shape stays the same, "
        "but every output channel is a new mixture of all 192 input channels (try the identity "
        "preset to see the difference vanish).",
        endpoint=COMPARE,
        request={
            "input": {"generator": "smooth", "height": 28, "width": 28, "channels": 192},
            "weights": {"preset": "random", "out_channels": 192, "seed": 0},
            **_AUTO,
        },
        headline=["shape", "cost"],
    ),
    Scenario(
        id="reduce64",
        title="Reduce 192 → 64",
        point="As in GoogLeNet's first inception block: 64 filters project 192 channels onto "
        "the 64 directions that carry the most variance (PCA), the best linear reduction. "
        "These maps are smooth and correlated across channels, like real activations (the "
        "smooth generator: a few patterns with a decaying spectrum) — on independent noise no "
        "reduction could keep much.",
        endpoint=COMPARE,
        request={
            "input": {"generator": "smooth", "height": 28, "width": 28, "channels": 192},
            "weights": {"preset": "pca", "out_channels": 64},
            **_AUTO,
        },
        headline=["variance", "cost"],
    ),
    Scenario(
        id="identity",
        title="Identity weights",
        point="With W = I and b = 0, the 1×1 conv + ReLU is exactly ReLU-only: the sanity check "
        "that ties the two paths together.",
        endpoint=COMPARE,
        request={
            "input": {"generator": "gaussian", "height": 28, "width": 28, "channels": 8},
            "weights": {"preset": "identity"},
            **_AUTO,
        },
        headline=["shape", "changed"],
    ),
    Scenario(
        id="neighbours",
        title="1×1 vs 3×3",
        point="A 1×1 conv mixes the channels of one pixel and never looks at its neighbours: "
        "change one input pixel and exactly one output pixel moves. A 3×3 conv moves a 3×3 "
        "patch, and can find the edges between flat regions, which no 1×1 layer can.",
        endpoint="/api/v1/experiments/receptive-field",
        request={
            "input": {
                "generator": "edges",
                "height": 32,
                "width": 32,
                "channels": 3,
                "seed": 0,
                "rectangles": 2,
            },
            "pixel": [16, 16],
            **_AUTO,
        },
    ),
    Scenario(
        id="fit",
        title="Learn the mixing",
        point='Train both with gradient descent towards "how much more cat than dog", '
        "relu(cat − dog): a 1×1 conv + ReLU, and the best model without channel mixing (a "
        "scale and bias per channel, then ReLU). Monotone per-channel functions have a floor "
        "they cannot go under.",
        endpoint="/api/v1/experiments/fit",
        request={
            "input": {"generator": "catdog", "height": 32, "width": 32, "channels": 4, "seed": 0},
            "steps": 500,
            "every": 5,
            **_AUTO,
        },
    ),
    Scenario(
        id="bottleneck",
        title="Bottleneck curve",
        point="How many filters does a reduction need? For every K, the variance the best 1×1 "
        "reduction to K channels keeps, and what a 1×1 reduce + 5×5 conv costs against the "
        "5×5 conv alone (GoogLeNet's 192 → 16 → 5×5 → 32).",
        endpoint="/api/v1/experiments/bottleneck",
        request={
            "input": {"generator": "smooth", "height": 28, "width": 28, "channels": 192, "seed": 0},
            "kernel": 5,
            "out_channels": 32,
            **_AUTO,
        },
    ),
    Scenario(
        id="photo",
        title="A real photo",
        point="Real pictures work too: a photo of a small scene, drawn by the project at run "
        "time, becomes 9 signed early-vision feature maps (luminance, colour opponents, "
        "oriented edges, centre-surround). A 1×1 conv mixes them; PCA to 3 shows how much "
        "they share.",
        endpoint=COMPARE,
        request={
            "input": {"generator": "photo", "height": 96, "width": 128, "channels": 9},
            "weights": {"preset": "pca", "out_channels": 3},
            **_AUTO,
        },
        headline=["picture", "variance", "changed"],
    ),
]


def find(scenario_id: str) -> Scenario | None:
    return next((s for s in SCENARIOS if s.id == scenario_id), None)
