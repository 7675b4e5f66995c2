"""Settings: every limit and default in one object, overridable by ONEBYONE_* variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONEBYONE_", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # Sizes are refused before any tensor exists.
    max_height: int = Field(default=1024, ge=1)
    max_width: int = Field(default=1024, ge=1)
    max_channels: int = Field(default=1024, ge=1)
    max_out_channels: int = Field(default=1024, ge=1)
    # C*H*W of the input and K*H*W of the output, in values.
    max_values: int = Field(default=32 * 1024 * 1024, ge=1)
    # K*C*H*W multiply-adds of one request.
    max_macs: int = Field(default=16 * 1024**3, ge=1)
    max_upload_bytes: int = Field(default=128 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(default=16 * 1024 * 1024, ge=1)

    # JSON heatmaps: values per array (C·H'·W') before maps are subsampled for the page.
    max_heatmap_values: int = Field(default=1024 * 1024, ge=1)
    # Input values (C·H·W) of the fit and receptive-field experiments, which do more per value.
    max_experiment_values: int = Field(default=1024 * 1024, ge=1)
    # Channels of each panel the PNG draws unless ?channels= asks for more (or fewer); the
    # image says when it left some out. Tiles shrink with their count, so the image stays sane.
    max_png_channels: int = Field(default=256, ge=1)
    # Explicit weight matrices are echoed as numbers up to this many entries.
    max_echo_weights: int = Field(default=64 * 64, ge=0)

    # Concurrent compute jobs, and how many may wait for one, before 503.
    compute_slots: int = Field(default=2, ge=1)
    queue_limit: int = Field(default=64, ge=0)
    request_timeout_s: float = Field(default=60.0, gt=0)
    torch_threads: int = Field(default=0, ge=0, description="0: torch's default")

    cors_origins: list[str] = Field(default_factory=list)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
