FROM python:3.11-slim
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY channels channels
COPY inbox inbox
COPY crm crm
COPY workers workers
COPY migrations migrations
RUN uv sync --frozen --no-dev && useradd --system switchboard
ENV PATH="/app/.venv/bin:$PATH"
USER switchboard
EXPOSE 8080
CMD ["switchboard", "serve", "--host", "0.0.0.0"]
