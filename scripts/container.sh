#!/usr/bin/env bash
# Build the Dockerfile with podman, run it, and check it really serves:
# /healthz from the host through the published port, and a correct /api/v1/compare
# from inside the container. Prints one JSON line with the image size and start time.
#
# No container registry is reachable on our build machines, so the base image
# (python:3.11-slim-bookworm) is made locally from Debian packages when missing,
# and pip inside the build goes through the host's TLS proxy with its CA bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${IMAGE:-localhost/onebyone:test}"
BASE="docker.io/library/python:3.11-slim-bookworm"
NAME="onebyone-check-$$"
PORT="${PORT:-18000}"
CA="${CA:-/etc/ssl/certs/ca-certificates.crt}"

if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi

if ! podman image exists "$BASE"; then
  if ! podman image exists localhost/debian:bookworm-minbase; then
    root="$(mktemp -d)"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
    tar -C "$root" -c . | podman import - localhost/debian:bookworm-minbase >/dev/null
    rm -rf "$root"
  fi
  podman build --isolation=chroot -q -t "$BASE" -f scripts/container/base.Containerfile scripts/container
fi

build_args=(--build-arg "CA_BUNDLE=/certs/ca.pem" -v "$CA:/certs/ca.pem:ro")
if ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
  # This machine keeps the CPU wheel on disk: use it instead of the PyTorch index.
  build_args=(--build-arg "CA_BUNDLE=/certs/ca.pem" --build-arg "PIP_EXTRA=--find-links /wheels"
              --build-arg "TORCH_INDEX=https://pypi.org/simple"
              --build-arg "TORCH_SPEC=torch==2.13.0+cpu"
              -v "$CA:/certs/ca.pem:ro" -v /opt/wheels:/wheels:ro)
fi
podman build --isolation=chroot --format docker -q "${build_args[@]}" -t "$IMAGE" . >/dev/null

cleanup() { podman rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
start=$(date +%s.%N)
podman run -d --name "$NAME" --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
  -p "127.0.0.1:$PORT:8000" "$IMAGE" >/dev/null
for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; then break; fi
  sleep 0.5
done
healthy=$(date +%s.%N)
curl -sS --fail-with-body "http://127.0.0.1:$PORT/healthz" >/dev/null
podman exec "$NAME" python - <<'PY'
import io, json, urllib.request
import numpy as np
body = json.dumps({"input": {"generator": "catdog", "height": 32, "width": 32, "channels": 4},
                   "weights": {"preset": "difference"}}).encode()
req = urllib.request.Request("http://127.0.0.1:8000/api/v1/compare?format=npz", body,
                             {"Content-Type": "application/json"})
z = np.load(io.BytesIO(urllib.request.urlopen(req, timeout=60).read()), allow_pickle=False)
x, y = z["input"], z["conv_relu"]
ref = np.maximum(np.einsum("kc,chw->khw", z["weight"], x) + z["bias"][:, None, None], 0)
assert np.allclose(y, ref, atol=1e-5) and np.array_equal(y[0] > 0, x[0] > x[1])
PY
user=$(podman exec "$NAME" id -u)
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
printf '{"image": "%s", "size_mib": %d, "start_to_healthy_s": %.1f, "uid": %s}\n' \
  "$IMAGE" "$((size / 1048576))" "$(python3 -c "print(round($healthy - $start, 1))")" "$user"
