# One image for every lab Python service (api, scheduler, worker); they differ only in command.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 LAB_HOME=/data
COPY pyproject.toml README.md ./
COPY lab ./lab
COPY workers ./workers
RUN pip install .
COPY notebooks ./notebooks
COPY loadtests ./loadtests
RUN useradd --create-home lab && mkdir -p /data && chown lab /data
USER lab
CMD ["lab", "--help"]
