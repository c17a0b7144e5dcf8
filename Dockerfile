# syntax=docker/dockerfile:1
#
# One image for every tekton-integrations function.
#
# Why one image and not one per function: the functions share all their code (common/) and
# all their dependencies, so per-function images would be the same bytes under different tags,
# built and scanned N times. The function is chosen at run time by functions-framework's own
# environment variables, FUNCTION_SOURCE and FUNCTION_TARGET (the Knative Services in
# knative/services/ set them), or at build time with `--build-arg FUNCTION=slack`, which only
# changes the default.
#
#   docker build -t registry.example.com/tekton-integrations:0.1.0 .
#   docker run -e FUNCTION_SOURCE=functions/slack/main.py registry.example.com/tekton-integrations:0.1.0

# Base image: slim Debian bookworm with CPython 3.11 (the project's target version), pinned by
# tag AND by the digest of the multi-arch index that tag pointed to on 2026-09-01 (from
# docker-library/repo-info). The digest makes builds reproducible; bump both together (e.g. with
# Renovate/Dependabot). No registry was reachable when this was written, so the digest was not
# pulled here: a build fails loudly if it no longer resolves.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f

# ---------------------------------------------------------------------------------------------
# Stage 1: install the distribution (pyproject.toml: packages common and functions) into a
# virtualenv. pip, its caches, the build isolation env and the source tree stay in this stage.
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
RUN python -m venv /opt/venv
# Only what `pip install .` needs (see .dockerignore, which allow-lists the same paths).
COPY pyproject.toml README.md ./
COPY common ./common
COPY functions ./functions
# Every dependency ships wheels: the slim base has no compiler, so a dependency that would need
# one fails the build here instead of silently pulling a toolchain into the image. pip compiles
# .pyc files at install time, so the read-only runtime never needs to write bytecode.
RUN /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/functions-framework --help > /dev/null

# ---------------------------------------------------------------------------------------------
# Stage 2: the runtime. Same base (so /opt/venv/bin/python's interpreter is the one it was built
# with), the virtualenv, nothing else: no source tree, no pip cache, no compiler.
FROM ${PYTHON_IMAGE} AS runtime

# Default function when the deployment does not say (FUNCTION_SOURCE/FUNCTION_TARGET win).
ARG FUNCTION=github

# A named, numeric, unprivileged user: USER below is numeric so that Kubernetes'
# runAsNonRoot can verify it without reading /etc/passwd; the passwd entry keeps tools that
# look the user up (getpass, HOME) working.
RUN groupadd --system --gid 10001 integrations \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin integrations

COPY --from=build /opt/venv /opt/venv

# FUNCTION_SOURCE is relative to WORKDIR, which is where `pip install .` put the packages, so
# the value is the same `functions/<name>/main.py` as in a checkout (the project's documented
# command line). Python is pinned to 3.11 by the base image, so this path is stable.
WORKDIR /opt/venv/lib/python3.11/site-packages

# THREADS/WORKERS are set explicitly: functions-framework (gunicorn gthread) otherwise uses
# WORKERS=1 and THREADS = 4 x os.cpu_count(), and os.cpu_count() is the NODE's CPU count, not
# the pod's CPU limit: a 64-core node would give 256 threads to a pod limited to one CPU.
# One worker process per container (Knative scales pods, not processes); 8 threads because the
# handlers mostly wait on the Kubernetes API and the target service. The Knative Services set
# containerConcurrency to the same THREADS value, so the queue-proxy never queues more requests
# in the container than it has threads.
# PORT is what functions-framework listens on (its --port option reads $PORT); Knative injects
# PORT itself, 8080 is only the default for `docker run`.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FUNCTION_SOURCE=functions/${FUNCTION}/main.py \
    FUNCTION_TARGET=handle \
    FUNCTION_SIGNATURE_TYPE=cloudevent \
    PORT=8080 \
    THREADS=8 \
    WORKERS=1

USER 10001:10001
EXPOSE 8080

# Exec form, so functions-framework is PID 1 and receives SIGTERM from the kubelet directly.
# Exec form does no shell expansion, so `--port $PORT` cannot be written here; it is not needed:
# each functions-framework option has an environment twin (--port reads PORT, --target reads
# FUNCTION_TARGET, --source reads FUNCTION_SOURCE). The signature type is fixed on the command
# line because every function here is a CloudEvent function.
CMD ["functions-framework", "--signature-type", "cloudevent"]
