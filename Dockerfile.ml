# Strata ml (JSON documents): Sanic, SQLAlchemy asyncio with asyncpg, PostgreSQL JSONB.
#
#   DOCKER_BUILDKIT=1 docker build -f Dockerfile.ml -t strata-ml:0.1.0 \
#       [--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt] \
#       [--build-arg BASE_IMAGE=local/python-base:bookworm] \
#       [--build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse --short HEAD)] .
#
#   docker run ... strata-ml:0.1.0            # serve (Sanic, N workers) on :8000
#   docker run ... strata-ml:0.1.0 migrate    # create tables/indexes if missing, then exit
#
# Runs as uid/gid 10001 with a read-only root filesystem; only /tmp must be writable
# (the Prometheus multiprocess directory, /tmp/prometheus, is emptied there at start).
# Worker count: STRATA_ML_WORKERS, else derived from the CPU limit by the service.
# No secrets are in the image: configuration comes from STRATA_ML_* variables.
ARG BASE_IMAGE=python:3.12-slim-bookworm

# ---- build: a virtualenv with exactly the ml service's dependencies ----
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
# python3 is /usr/local/bin/python3 on the official images and /usr/bin/python3 on Debian's.
RUN python3 -m venv /opt/venv
WORKDIR /src
# Dependencies first (one layer keyed on pyproject.toml only): the pinned core dependencies
# plus the [ml] extra, read from pyproject.toml. The CA bundle is a build secret, so
# it never lands in a layer.
COPY pyproject.toml ./
# pyarrow (the Parquet export) ships much the service never loads: its tests, C++ headers
# and Cython sources, the Flight, S3, GCS, Azure, HDFS and ORC modules and two extra copies
# of libarrow_python (a wheel cannot hold symlinks): ~70 of its 170 MB, removed, then the
# import of what the service uses is checked.
RUN --mount=type=secret,id=ca \
    set -eu; \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    /opt/venv/bin/python -c 'import sys, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"][sys.argv[1]]))' ml > requirements.txt; \
    cat requirements.txt; \
    /opt/venv/bin/pip install --no-compile --only-binary=:all: -r requirements.txt; \
    /opt/venv/bin/pip uninstall -y pip setuptools wheel >/dev/null 2>&1 || true; \
    # /docs serves three of Swagger UI's files (services/common/apidocs.py): drop the
    # editor, the other bundles and the source maps (about 22 MB).
    find /opt/venv/lib/python3*/site-packages/swagger_ui/static -type f ! -name swagger-ui-bundle.js \
        ! -name swagger-ui.css ! -name favicon-32x32.png ! -name LICENSE -delete; \
    pa=$(echo /opt/venv/lib/python3*/site-packages/pyarrow); \
    rm -rf "$pa/tests" "$pa/include" "$pa/includes" "$pa/src"; \
    find "$pa" \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \) -delete; \
    rm -f "$pa"/_flight*.so "$pa"/libarrow_flight.so* "$pa/flight.py" "$pa"/_s3fs*.so \
          "$pa"/libarrow_s3.so* "$pa"/_gcsfs*.so "$pa"/_azurefs*.so "$pa"/_hdfs*.so \
          "$pa"/_orc*.so "$pa/orc.py" "$pa/libarrow_python.so" "$pa"/libarrow_python.so.*.*.*; \
    /opt/venv/bin/python -c 'import pyarrow.parquet, pyarrow.fs'; \
    find /opt/venv -depth -type d -name __pycache__ -exec rm -rf '{}' +; \
    /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv/lib
# Only the shared package and this service's own code.
COPY services/__init__.py /app/services/__init__.py
COPY services/common /app/services/common
COPY services/ml /app/services/ml
RUN find /app -depth -type d -name __pycache__ -exec rm -rf '{}' + \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /app \
    && chmod -R a+rX,go-w /app /opt/venv

# ---- runtime: the base, the virtualenv and the code; no compilers, no pip ----
FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 strata \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin strata
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# Build metadata last, so a new revision does not invalidate the layers above.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="strata-ml" \
      org.opencontainers.image.description="Strata ml: JSON documents for ML jobs (Sanic, PostgreSQL JSONB)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    STRATA_VERSION=${VERSION} \
    STRATA_REVISION=${REVISION}
WORKDIR /app
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# exec form: the Python process (the Sanic main process) is PID 1 and receives SIGTERM.
ENTRYPOINT ["/opt/venv/bin/python", "-m", "services.ml"]
CMD ["serve"]
