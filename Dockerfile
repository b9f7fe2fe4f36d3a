# verifact on CPU: docker build -t verifact . && docker run -p 8000:8000 -e VERIFACT_API_KEYS=me:<key>
#   -v /path/to/shared/data:/data:ro verifact
# It listens on 0.0.0.0, so it needs API keys (VERIFACT_API_KEYS, or VERIFACT_API_KEY_FILE with a mounted
# file): without them `verifact serve` refuses to start, unless VERIFACT_ALLOW_OPEN=true says that an
# open server is meant (behind a gateway that checks callers, say).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    VERIFACT_HOST=0.0.0.0 \
    VERIFACT_DATA_DIR=/data

RUN useradd --create-home --uid 10001 verifact
WORKDIR /app

# The CPU build of torch: a bare "torch" requirement would pull the multi-GB CUDA one.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml README.md ./
COPY classifier ./classifier
COPY graph ./graph
COPY retrieval ./retrieval
COPY quantize ./quantize
COPY api ./api
COPY configs ./configs
# The project itself, not a package from an index: its own pyproject pins the floors.
# hadolint ignore=DL3013
RUN pip install ".[train,onnx,otel]" && mkdir -p /app/runs && chown 10001:10001 /app/runs

USER 10001:10001
# Models, the index and traces live here; mount a volume to keep them across containers.
VOLUME ["/app/runs"]
EXPOSE 8000

# Liveness: the process answers. /readyz says when models and index are loaded.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# The first start trains the light models and builds the demo index from /data (minutes).
CMD ["verifact", "serve", "--prepare"]
