"""Independent numpy reference for the two paths, used by the numerical tests."""

from __future__ import annotations

import numpy as np


def conv1x1_relu(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (C, H, W), w (K, C), b (K,) -> pre-activation and ReLU output, both (K, H, W), float64."""
    pre = np.einsum("kc,chw->khw", w.astype(np.float64), x.astype(np.float64)) + b[:, None, None]
    return pre, np.maximum(pre, 0.0)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)
