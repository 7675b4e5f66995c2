"""The PNG montage against the notebook way, where its time goes, and PNG encoders side by side."""

from __future__ import annotations

import io
import statistics
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import torch

from app import compare, generators, montage
from app.config import Settings
from app.schemas.requests import CompareRequest
from bench.timing import alternate, med, spec, spread

QUESTION = spec(192, 28, 28, 192)  # the question's case: 28×28×192 in, 192 filters


def notebook_png(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> bytes:
    """What a user writes in a notebook: compute both paths, draw a 3 × C grid with matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    relu = torch.relu(x).numpy()
    conv = torch.relu(torch.nn.functional.conv2d(x[None], w[:, :, None, None], b))[0].numpy()
    c = x.shape[0]
    fig, axes = plt.subplots(c, 3, figsize=(6, c * 1.2))
    for i in range(c):
        for j, a in enumerate((x.numpy(), relu, conv)):
            axes[i, j].imshow(a[i], cmap="RdBu_r" if j == 0 else "viridis")
            axes[i, j].axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _server_timing(r: httpx.Response) -> dict[str, float]:
    out = {}
    for part in r.headers["server-timing"].split(", "):
        name, dur = part.split(";dur=")
        out[name] = float(dur)
    return out


def case_notebook(client: httpx.Client, quick: bool) -> tuple[list[list[str]], list[list[str]]]:
    """The ratio table, and where the PNG request's time goes."""
    z = np.load(
        io.BytesIO(client.post("/api/v1/compare", params={"format": "npz"}, json=QUESTION).content)
    )
    x, w, b = (torch.from_numpy(z[k]) for k in ("input", "weight", "bias"))
    stages: list[dict[str, float]] = []
    sizes: list[int] = []

    def png() -> None:
        # No `channels`: every channel is the default, and the page's download sends this.
        r = client.post("/api/v1/compare", params={"format": "png"}, json=QUESTION)
        r.raise_for_status()
        stages.append(_server_timing(r))
        sizes.append(len(r.content))

    def json_() -> None:
        client.post("/api/v1/compare", json=QUESTION).raise_for_status()

    for _ in range(5):
        png()
    times = alternate(
        {"notebook": lambda: notebook_png(x, w, b), "png": png, "json": json_},
        rounds=3 if quick else 7,
        per_round={"png": 5, "json": 5},
    )
    nb, ours_png, ours_json = med(times["notebook"]), med(times["png"]), med(times["json"])

    def ratios(name: str) -> list[float]:
        """Each round's notebook run over the median of that round's five requests."""
        ours = times[name]
        return [n / med(ours[5 * i : 5 * i + 5]) for i, n in enumerate(times["notebook"])]

    png_r, json_r = ratios("png"), ratios("json")
    ratio_rows = [
        ["notebook: torch + matplotlib 3×192 grid PNG", f"{nb:.0f}", spread(times["notebook"], 0),
         "1×", "", ""],
        ["ours: POST format=png (all 192 channels, as the page's download)",
         f"{ours_png:.1f}", spread(times["png"]), f"{med(png_r):.0f}× faster",
         spread(png_r, 0), f"{min(png_r):.0f}"],
        ["ours: POST format=json (the page draws it)", f"{ours_json:.1f}", spread(times["json"]),
         f"{med(json_r):.0f}× faster", spread(json_r, 0), f"{min(json_r):.0f}"],
    ]  # fmt: skip

    stage_names = {
        "decode": "read the request",
        "prepare": "prepare: the input (generated once, then from the cache), the weights",
        "compute": "compute both paths",
        "png_colourmap": "colour-map: ranges and palette indices",
        "png_layout": "layout (cached per shape)",
        "png_tiles": "paste tiles, colour bars, ticks",
        "png_text": "draw text (cached glyph stamps)",
        "png_encode": "encode: palette PNG, zlib-ng level 1",
    }
    recent = stages[-len(times["png"]) :]
    split = {k: statistics.median(s[k] for s in recent) for k in stage_names}
    server = sum(split.values())
    gen = med(alternate({"g": lambda: generators.generate("smooth", 192, 28, 28, 0, {})}, 15)["g"])
    rows = [[label, f"{split[k]:.2f}"] for k, label in stage_names.items()]
    rows.insert(
        2, ["generating the input uncached (in the bench process, for scale)", f"{gen:.2f}"]
    )
    rows += [
        ["server stages, total", f"{server:.2f}"],
        ["HTTP, thread hand-off and transfer (client wall − server stages)",
         f"{ours_png - server:.2f}"],
        ["client wall time", f"{ours_png:.2f}"],
        ["PNG size (bytes)", f"{statistics.median(sizes[-len(recent):]):.0f}"],
    ]  # fmt: skip
    return ratio_rows, rows


# ---------------------------------------------------------------- PNG encoders


def _canvas() -> np.ndarray:
    """The question's montage as palette indices (H, W), drawn in this process."""
    cmp = compare.run(CompareRequest.model_validate(QUESTION), Settings())
    with torch.inference_mode():
        p = montage.plan(cmp, cap=256)
    canvas, _ = montage.draw(p.sheet, p.coloured)
    return canvas


def _pillow(img_mode: str, data: np.ndarray, **save: Any) -> Callable[[], bytes]:
    from PIL import Image

    def run() -> bytes:
        img = Image.fromarray(data, img_mode)
        if img_mode == "P":
            img.putpalette(montage.palette())
        buf = io.BytesIO()
        img.save(buf, format="PNG", **save)
        return buf.getvalue()

    return run


def _optional(rgb: np.ndarray) -> tuple[dict[str, Callable[[], bytes]], list[str]]:
    """Other maintained encoders, where installed (none is a dependency)."""
    found: dict[str, Callable[[], bytes]] = {}
    missing = []
    try:
        import fpng  # type: ignore[import-not-found]

        found["fpng (RGB; one release, wraps an unmaintained C++ encoder)"] = lambda: (
            fpng.from_ndarray(rgb)
        )
    except ImportError:
        missing.append("fpng")
    try:
        import imagecodecs  # type: ignore[import-not-found]

        found["imagecodecs png_encode (RGB, libpng, level 1, RLE, sub filter)"] = lambda: bytes(
            imagecodecs.png_encode(rgb, level=1, strategy=3, filter=16)
        )
    except ImportError:
        missing.append("imagecodecs")
    try:
        import cv2  # type: ignore[import-not-found]

        bgr = np.ascontiguousarray(rgb[..., ::-1])
        found["OpenCV imencode (RGB, level 1, RLE)"] = lambda: bytes(
            cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1,
                                       cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])[1]
        )  # fmt: skip
    except ImportError:
        missing.append("opencv-python-headless")
    return found, missing


FLOOR = "floor: zlib level 1, Z_RLE, on the palette rows alone (no PNG)"


def _zlib_rle(data: bytes) -> bytes:
    z = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    return z.compress(data) + z.flush()


def case_encoders(quick: bool) -> tuple[list[list[str]], str]:
    """Encoders on the same montage, alternating; and the floor: zlib level 1 on its bytes."""
    canvas = _canvas()
    h, w = canvas.shape
    rgb = np.frombuffer(montage.palette(), np.uint8).reshape(256, 3)[canvas]  # (H, W, 3)
    # What a PNG compresses: each row behind its filter-type byte (0, no filter).
    rows_p = np.zeros((h, w + 1), np.uint8)
    rows_p[:, 1:] = canvas
    rows_rgb = np.zeros((h, 3 * w + 1), np.uint8)
    rows_rgb[:, 1:] = rgb.reshape(h, 3 * w)
    raw_p, raw_rgb = rows_p.tobytes(), rows_rgb.tobytes()
    fns: dict[str, Callable[[], bytes]] = {
        "ours: palette, zlib-ng level 1": lambda: montage.encode(canvas),
        "Pillow, palette, level 1, Z_RLE (ours until 2026-12)": _pillow(
            "P", canvas, compress_level=1, compress_type=zlib.Z_RLE
        ),
        "Pillow, palette, level 1, default strategy": _pillow("P", canvas, compress_level=1),
        "Pillow, RGB, level 1 (adaptive row filters)": _pillow("RGB", rgb, compress_level=1),
        FLOOR: lambda: _zlib_rle(raw_p),
        "zlib level 1 on the palette rows alone (no PNG)": lambda: zlib.compress(raw_p, 1),
        "zlib level 1 on the RGB rows alone (no PNG)": lambda: zlib.compress(raw_rgb, 1),
    }
    others, missing = _optional(rgb)
    fns.update(others)
    sizes = {name: len(fn()) for name, fn in fns.items()}
    times = alternate(fns, rounds=5 if quick else 15)  # type: ignore[arg-type]
    ours = med(times["ours: palette, zlib-ng level 1"])
    rows = [
        [name, f"{med(t):.2f}", f"{med(t) / ours:.2f}×", f"{sizes[name]}"]
        for name, t in times.items()
    ]
    floor = med(times[FLOOR])
    note = (
        f"The montage is {w}×{h} px: {len(raw_p)} bytes of palette rows (RGB: {len(raw_rgb)}). "
        f"zlib at its fastest level (with the RLE strategy ours uses) compresses them in "
        f"{floor:.2f} ms here ({len(raw_p) / floor / 1e3:.0f} MB/s): the floor for this image."
    )
    if missing:
        note += f" Not installed in this run: {', '.join(missing)}."
    return rows, note
