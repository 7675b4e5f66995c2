"""onebyone: what a 1×1 convolution + ReLU adds over a plain ReLU, with running code."""

__version__ = "0.1.0"
