# faceweb: one image for the web server, the Celery workers and beat (the command chooses).
#   docker build -t faceweb .
# For a smaller CPU-only image, point pip at a CPU wheel index for torch:
#   docker build --build-arg PIP_EXTRA_INDEX_URL=<cpu wheel index> -t faceweb .

# --- build: wheels for everything, so the runtime image carries no compilers or caches ------
FROM python:3.11-slim-bookworm AS build
ARG PIP_EXTRA_INDEX_URL=""
WORKDIR /src
COPY pyproject.toml README.md ./
COPY faceweb ./faceweb
COPY accounts ./accounts
COPY api ./api
COPY identities ./identities
COPY training ./training
RUN pip wheel --no-cache-dir --wheel-dir /wheels \
      ${PIP_EXTRA_INDEX_URL:+--extra-index-url "$PIP_EXTRA_INDEX_URL"} .

# --- runtime ----------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
# 1: download torchvision's ImageNet weights at build time, so the container runs offline.
ARG FETCH_IMAGENET_WEIGHTS=1
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TORCH_HOME=/opt/torch \
    FACEWEB_DATA_DIR=/data \
    DJANGO_STATIC_ROOT=/app/staticfiles

RUN useradd --create-home --uid 1000 faceweb && mkdir -p /data /opt/torch && chown faceweb /data
COPY --from=build /wheels /wheels
# The project's own wheel is left out: the code runs from /app, next to its templates.
RUN pip install --no-cache-dir --no-deps $(ls /wheels/*.whl | grep -v '/faceweb-') \
    && rm -rf /wheels
RUN if [ "$FETCH_IMAGENET_WEIGHTS" = 1 ]; then \
      python -c "from torchvision.models import ResNet18_Weights as W; W.IMAGENET1K_V1.get_state_dict(progress=False)"; \
    fi

WORKDIR /app
COPY manage.py ./
COPY faceweb ./faceweb
COPY accounts ./accounts
COPY api ./api
COPY identities ./identities
COPY training ./training
COPY templates ./templates
COPY static ./static
RUN DJANGO_SECRET_KEY=build-only FACEWEB_DATA_DIR=/tmp/build \
    python manage.py collectstatic --no-input --verbosity 0

USER faceweb
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
CMD ["gunicorn", "faceweb.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-"]
