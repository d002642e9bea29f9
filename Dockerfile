# plantlake on the official Airflow image; the project is installed, not injected at start-up.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION
ARG PYTHON_VERSION

COPY --chown=airflow:root pyproject.toml README.md /opt/plantlake/
COPY --chown=airflow:root plantlake /opt/plantlake/plantlake
COPY --chown=airflow:root connectors /opt/plantlake/connectors
COPY --chown=airflow:root schemas /opt/plantlake/schemas
COPY --chown=airflow:root quality /opt/plantlake/quality
COPY --chown=airflow:root simulators /opt/plantlake/simulators
# Airflow itself stays at the image's version; the rest resolves within Airflow's constraints.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/plantlake \
      --constraint "https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_VERSION}/constraints-no-providers-${PYTHON_VERSION}.txt"

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plant.yaml /opt/plantlake/plant.yaml
ENV PLANTLAKE_CONFIG=/opt/plantlake/plant.yaml \
    LAKE_ROOT=/data/lake
