# One-service deployment (Railway, Render, Fly...): the receiver, the launcher and the served deployments.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 METACENTRIC_VAR_DIR=/data PREFECT_SERVER_ANALYTICS_ENABLED=false
COPY pyproject.toml README.md ./
COPY metacentric metacentric
COPY models models
COPY flows flows
COPY tasks tasks
COPY intelligence intelligence
COPY platforms platforms
COPY sandbox sandbox
COPY deployments deployments
RUN pip install --no-cache-dir .
EXPOSE 8000
# exec: serve becomes PID 1 and gets SIGTERM itself, so it stops its children cleanly.
CMD ["sh", "-c", "exec metacentric serve --host 0.0.0.0 --port ${PORT:-8000}"]
