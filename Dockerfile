# One image: the app, ffmpeg, settings from VR_* environment variables, data in /data.
# `make image-test` builds it with podman and starts it (compose.yaml runs it with PostgreSQL and MinIO).
# The base is an argument only so that machines which cannot pull official images can build on a stand-in.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app \
    && mkdir /data && chown app /data

WORKDIR /app
# Dependencies first, in their own layer, so a code change does not reinstall them: exactly the versions and
# hashes of requirements.lock (`make lock` writes it from pyproject.toml, which the app reads its version from).
# The lock is complete, so pip installs it as it stands (--no-deps) and `pip check` proves nothing is missing: a
# base image's older pip would otherwise re-resolve each package's own requirements and refuse extras such as
# nicegui's `uvicorn[standard]` as unpinned (Debian bookworm's pip 23.0.1 does).
COPY pyproject.toml requirements.lock ./
RUN python -m pip install --no-cache-dir --no-deps --require-hashes -r requirements.lock \
    && python -m pip check
COPY main.py web.py commands.py ./
COPY pages ./pages
COPY api ./api
COPY services ./services
COPY assets ./assets
COPY migrations ./migrations

# NiceGUI keeps its user storage (who each browser is signed in as) in files unless NICEGUI_REDIS_URL is set:
# in the volume, since the app user cannot write to /app, and so that browsers stay signed in across restarts.
ENV VR_HOST=0.0.0.0 VR_PORT=8080 VR_DATA_DIR=/data NICEGUI_STORAGE_PATH=/data/nicegui PYTHONUNBUFFERED=1
VOLUME ["/data"]
USER app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["python", "-c", \
    "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['VR_PORT'] + '/api/healthz', timeout=4)"]
# Migrations run on start (VR_AUTO_MIGRATE defaults to true; instances starting together take turns on PostgreSQL).
# To migrate as a separate step instead: VR_AUTO_MIGRATE=false, and run `python main.py migrate` before rolling out.
CMD ["python", "main.py"]
