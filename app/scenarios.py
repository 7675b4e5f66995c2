"""The page's one-click scenarios: what each sends and the point it makes.

One definition, read by the template (the buttons), the catalogue (the page's
requests) and the tests (every request is valid for its endpoint). Requests that the API
documents as examples are those examples (schemas.requests), so both stay the same. The
page keeps only the wording of each fact a headline states, computed from the response;
`headline` names the facts a scenario leads with.

Every point says whether its maps are generated (and, where a number comes from how the
generator was built, says so) or a trained network's.
"""

from __future__ import annotations

from typing import Any

from app.schemas.catalogue import Scenario
from app.schemas.requests import BottleneckRequest, CompareRequest

COMPARE = "/api/v1/compare"
BOTTLENECK = "/api/v1/experiments/bottleneck"
_AUTO: dict[str, Any] = {"device": "auto"}


def _example(model: type[CompareRequest] | type[BottleneckRequest], name: str) -> dict[str, Any]:
    value: dict[str, Any] = model.EXAMPLES[name]["value"]
    return value | _AUTO


SCENARIOS: list[Scenario] = [
    Scenario(
        id="relu-enough",
        title="Is ReLU alone enough?",
        point="Generated maps: channel 0 is cat evidence, channel 1 dog evidence. The 1×1 conv "
        "computes cat − dog at every pixel, so its ReLU lights exactly where there is more cat "
        "than dog; a ReLU sees one value at a time and cannot. “Cat minus dog, for real” asks "
        "a trained network the same question.",
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
        point="Generated maps, as an earlier ReLU hands them on: already non-negative, so "
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
        point="The question's case on generated maps: 28×28×192 in, 192 random filters out. The "
        "shape stays the same, but every output channel is a new mixture of all 192 input "
        "channels (try the identity preset to see the difference vanish).",
        endpoint=COMPARE,
        request=_example(CompareRequest, "keep192"),
        headline=["shape", "cost"],
    ),
    Scenario(
        id="reduce64",
        title="Reduce 192 → 64",
        point="As in GoogLeNet's first inception block: 64 filters project 192 channels onto the "
        "64 directions that carry the most variance (PCA), the best linear reduction. These "
        "maps are generated with a spectrum we chose to decay (the smooth generator), so the "
        "large share kept is how we built them, not a finding; on independent noise no "
        "reduction could keep much. “192 → 64, as trained” measures a trained network's own.",
        endpoint=COMPARE,
        request=_example(CompareRequest, "reduce64"),
        headline=["variance", "cost"],
    ),
    Scenario(
        id="identity",
        title="Identity weights",
        point="With W = I and b = 0, the 1×1 conv + ReLU is exactly ReLU-only, on generated "
        "noise or any other maps: the sanity check that ties the two paths together.",
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
        point="Generated rectangles: a 1×1 conv mixes the channels of one pixel and never looks "
        "at its neighbours, so change one input pixel and exactly one output pixel moves. A 3×3 "
        "conv moves a 3×3 patch, and can find the edges between flat regions, which no 1×1 "
        "layer can.",
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
        "relu(cat − dog), on generated maps: a 1×1 conv + ReLU, and the best model without "
        "channel mixing (a scale and bias per channel, then ReLU). Monotone per-channel "
        "functions have a floor they cannot go under.",
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
        "reduction to K channels keeps, and what a 1×1 reduce + 5×5 conv costs against the 5×5 "
        "conv alone (GoogLeNet's 192 → 16 → 5×5 → 32). On generated maps whose spectrum we "
        "made decay, so the curve reads back how they were built; “Bottleneck curve, real "
        "activations” draws it for a trained network's.",
        endpoint=BOTTLENECK,
        request={
            "input": {"generator": "smooth", "height": 28, "width": 28, "channels": 192, "seed": 0},
            "kernel": 5,
            "out_channels": 32,
            **_AUTO,
        },
    ),
    Scenario(
        id="photo",
        title="A drawn scene",
        point="A small scene the project draws at run time becomes 9 signed early-vision "
        "feature maps (luminance, colour opponents, oriented edges, centre-surround), from a "
        "fixed filter bank, not a trained network. A 1×1 conv mixes them; PCA to 3 shows how "
        "much they share. The last four scenarios use real photos and a trained network.",
        endpoint=COMPARE,
        request={
            "input": {"generator": "photo", "height": 96, "width": 128, "channels": 9},
            "weights": {"preset": "pca", "out_channels": 3},
            **_AUTO,
        },
        headline=["picture", "variance", "changed"],
    ),
    Scenario(
        id="trained",
        title="A trained 1×1 layer",
        point="A trained network's own activations: MobileNetV2's block 7 expand (32 → 192 "
        "channels, 1×1 conv + batch norm + ReLU6) on a photo of a cat. Its input is a linear "
        "bottleneck's output, so it has negative values: ReLU-only zeroes them one channel at "
        "a time, while the trained layer mixes all 32 channels first. The network applies "
        "ReLU6, min(max(x, 0), 6), where this page applies ReLU: the two differ only where "
        "W·x + b is over 6.",
        endpoint=COMPARE,
        request=_example(CompareRequest, "trained"),
        headline=["network", "changed", "mixes", "relu6"],
    ),
    Scenario(
        id="trained-reduce",
        title="192 → 64, as trained",
        point="A trained network's own 192 → 64: MobileNetV2's block 7 projection on the same "
        "photo, beside the best linear reduction to 64 channels (PCA) of the same real "
        "activations. How much of its input's variance do its 64 outputs keep, against the "
        "most any 64 filters can? MobileNetV2 puts no ReLU after this layer (a linear "
        "bottleneck): the page shows how many values a ReLU there would zero.",
        endpoint=COMPARE,
        request=_example(CompareRequest, "trained_reduce"),
        headline=["network", "variance", "linear"],
    ),
    Scenario(
        id="cat-minus-dog",
        title="Cat minus dog, for real",
        point="The first scenario's example, computed by a trained network: MobileNetV2's "
        "classifier applied at every pixel of its last 7×7×1280 map, as the one filter "
        "W[Egyptian cat] − W[golden retriever]. It is positive where the network sees more "
        "cat than dog; next to it, ReLU-only of the 1280 channels, which cannot compare them. "
        "Pick any two ImageNet classes.",
        endpoint=COMPARE,
        request=_example(CompareRequest, "cat_minus_dog"),
        headline=["network", "classes", "changed"],
    ),
    Scenario(
        id="trained-bottleneck",
        title="Bottleneck curve, real activations",
        point="The bottleneck curve for the input of a trained network's 1×1 layer "
        "(MobileNetV2's block 7 projection, 192 channels, on a real photo): the variance the "
        "best reduction to K channels keeps, for every K, with the trained layer's own K = 64 "
        "marked, beside the curve of the generated maps of “Bottleneck curve”.",
        endpoint=BOTTLENECK,
        request=_example(BottleneckRequest, "trained"),
    ),
]


def find(scenario_id: str) -> Scenario | None:
    return next((s for s in SCENARIOS if s.id == scenario_id), None)
