"""`onebyone serve`: start the service with uvicorn."""

from __future__ import annotations

import argparse

from app.config import get_settings


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="onebyone", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the web service")
    serve.add_argument("--host", default=settings.host, help="default %(default)s (loopback only)")
    serve.add_argument("--port", type=int, default=settings.port, help="default %(default)s")
    serve.add_argument("--workers", type=int, default=1, help="processes; the service is stateless")
    serve.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    import os

    import uvicorn

    # The app refuses non-loopback Host names when bound to loopback: tell it the address.
    os.environ["ONEBYONE_HOST"] = args.host
    get_settings.cache_clear()
    if args.workers > 1 and "ONEBYONE_TORCH_THREADS" not in os.environ:
        # Workers and their compute slots share the cores: one torch thread per core in all.
        share = args.workers * settings.compute_slots
        os.environ["ONEBYONE_TORCH_THREADS"] = str(max(1, (os.cpu_count() or 1) // share))

    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,  # the app logs one JSON line per request itself
    )


if __name__ == "__main__":
    main()
