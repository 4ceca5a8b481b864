# The project's image for the cluster (pipelines/README.md): the Airflow DAG's stage pods and the TrainJob's
# nodes run it. `make image` builds it. Every package comes from the locks (requirements/), but torch: PyPI's
# torch 2.13.0 (`TORCH=cuda`), its CUDA 13.0 build, which needs NVIDIA driver 580 or newer on the GPU nodes;
# the same image runs the CPU stages.
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-runtime-ubuntu24.04
FROM ${CUDA_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv make \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --user-group app
WORKDIR /app

# The dependencies, installed as on every machine, by the Makefile (the locks, with hashes), in a layer
# of their own that only the locks, pyproject.toml, constraints.txt or the Makefile invalidate.
COPY Makefile pyproject.toml constraints.txt README.md ./
COPY requirements/ requirements/
COPY src/gan_pipeline/__init__.py src/gan_pipeline/__init__.py
RUN make install VENV=/opt/venv PYTHON=python3 TORCH=cuda

COPY --chown=app:app . .
RUN mkdir -p /app/data /app/conf/local && chown app:app /app /app/data /app/conf/local

# The commit the image is built from, recorded on every MLflow run (an image holds no .git).
ARG GIT_COMMIT=""
ENV GAN_PIPELINE_GIT_COMMIT=${GIT_COMMIT} \
    PATH=/opt/venv/bin:${PATH}

USER 10001:10001
ENTRYPOINT ["kedro"]
CMD ["run"]
