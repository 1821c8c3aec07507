# One image: the app, ffmpeg, settings from VR_* environment variables, data in /data.
# Checked by reading: no Docker engine runs on the build machines. compose.yaml runs it with PostgreSQL and MinIO.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app \
    && mkdir /data && chown app /data

WORKDIR /app
# Dependencies first, in their own layer, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt
COPY main.py ./
COPY pages ./pages
COPY services ./services
COPY assets ./assets
COPY migrations ./migrations

ENV VR_HOST=0.0.0.0 VR_PORT=8080 VR_DATA_DIR=/data PYTHONUNBUFFERED=1
VOLUME ["/data"]
USER app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/api/healthz', timeout=4)"
# Migrations run on start (VR_AUTO_MIGRATE defaults to true; instances starting together take turns on PostgreSQL).
# To migrate as a separate step instead: VR_AUTO_MIGRATE=false, and run `python main.py migrate` before rolling out.
CMD ["python", "main.py"]
