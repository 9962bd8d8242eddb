# Two images from one file. `runtime` (the default target of the api, scheduler and worker
# services) installs only what those processes need; `tools` adds the notebook and load extras
# for JupyterLab and Locust. They differ only in what is installed and in their command.
FROM python:3.11-slim AS runtime
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 LAB_HOME=/data
COPY pyproject.toml README.md ./
COPY lab ./lab
COPY workers ./workers
RUN pip install .
RUN useradd --create-home lab && mkdir -p /data && chown lab /data
USER lab
CMD ["lab", "--help"]

FROM runtime AS tools
USER root
RUN pip install '.[notebook,load]'
COPY notebooks ./notebooks
COPY loadtests ./loadtests
USER lab
