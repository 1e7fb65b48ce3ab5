# The demandflow worker / simulator image (deploy/docker-compose.yml, deploy/k8s).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DEMANDFLOW_WEB_HOST=0.0.0.0 DEMANDFLOW_DATA_DIR=/var/lib/demandflow
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY agents ./agents
COPY schemas ./schemas
RUN pip install --no-cache-dir . && useradd --system --uid 10001 demandflow \
    && mkdir -p /var/lib/demandflow && chown demandflow /var/lib/demandflow
USER demandflow
EXPOSE 6066
CMD ["demandflow", "worker"]
