# faceweb: one image for the web server, the Celery workers and beat.
#   docker build -t faceweb .
# For a smaller CPU-only image, point pip at a CPU wheel index for torch:
#   docker build --build-arg PIP_EXTRA_INDEX_URL=<cpu wheel index> -t faceweb .
FROM python:3.11-slim-bookworm

ARG PIP_EXTRA_INDEX_URL=""
# 1: download torchvision's ImageNet weights at build time, so workers need no internet.
ARG FETCH_IMAGENET_WEIGHTS=1

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TORCH_HOME=/opt/torch \
    FACEWEB_DATA_DIR=/data \
    DJANGO_STATIC_ROOT=/app/staticfiles

RUN useradd --create-home --uid 1000 faceweb && mkdir -p /data /opt/torch && chown faceweb /data
WORKDIR /app

COPY pyproject.toml README.md ./
COPY faceweb ./faceweb
COPY identities ./identities
COPY training ./training
# Editable, so that the code, templates and static files are all read from /app.
RUN pip install --no-cache-dir ${PIP_EXTRA_INDEX_URL:+--extra-index-url "$PIP_EXTRA_INDEX_URL"} -e .

RUN if [ "$FETCH_IMAGENET_WEIGHTS" = 1 ]; then \
      python -c "from torchvision.models import ResNet18_Weights as W; W.IMAGENET1K_V1.get_state_dict(progress=False)"; \
    fi

COPY manage.py ./
COPY templates ./templates
COPY static ./static
RUN DJANGO_SECRET_KEY=build-only python manage.py collectstatic --no-input --verbosity 0

USER faceweb
EXPOSE 8000
CMD ["gunicorn", "faceweb.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-"]
