# Taskhub's one image: the web service, the Celery worker, beat and the live-event relay
# differ only in their command (compose/<service>/start). Build: docker compose build (or
# docker build .).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- Dependencies, from the hash-pinned lock and wheels only: no compiler needed --------
FROM ${PYTHON_IMAGE} AS dependencies
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
# Only the lock is copied first, so a code change reuses this layer.
COPY scripts/requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes --only-binary=:all: --no-deps \
        -r /tmp/requirements.lock

# --- Runtime --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000
RUN groupadd --system --gid 10001 taskhub \
    && useradd --system --uid 10001 --gid taskhub --create-home --home-dir /home/taskhub \
        --shell /usr/sbin/nologin taskhub
COPY --from=dependencies /opt/venv /opt/venv
WORKDIR /app
# The code stays owned by root: the app user can read it but not change it. Nothing
# secret is copied (.dockerignore keeps .env out); settings come from the environment.
COPY . .
# Static files are gathered once, at build time; with DJANGO_DEBUG unset this needs no
# secret, database or Redis.
RUN python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q apps project realtime

USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=6s --start-period=60s --retries=3 \
    CMD ["python", "compose/django/healthcheck.py"]
ENTRYPOINT ["/app/scripts/entrypoint.sh"]
CMD ["compose/django/start"]
