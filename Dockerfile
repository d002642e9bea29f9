# plantlake on the official Airflow image; the project is installed at build time, never
# injected into the containers at start-up.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION
ARG PYTHON_VERSION

COPY --chown=airflow:root pyproject.toml README.md /opt/plantlake/
COPY --chown=airflow:root deploy/constraints.py /opt/plantlake/deploy/constraints.py
COPY --chown=airflow:root deploy/airflow /opt/plantlake/deploy/airflow
COPY --chown=airflow:root plantlake /opt/plantlake/plantlake
COPY --chown=airflow:root connectors /opt/plantlake/connectors
COPY --chown=airflow:root schemas /opt/plantlake/schemas
COPY --chown=airflow:root quality /opt/plantlake/quality
COPY --chown=airflow:root simulators /opt/plantlake/simulators
# Airflow stays at the image's version and its constraints hold for every package plantlake
# does not pin itself (deploy/constraints.py drops those lines; see its docstring).
RUN curl -fsSL "https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_VERSION}/constraints-${PYTHON_VERSION}.txt" \
      -o /tmp/airflow-constraints.txt \
 && python /opt/plantlake/deploy/constraints.py /tmp/airflow-constraints.txt /opt/plantlake/pyproject.toml \
      > /tmp/constraints.txt \
 && pip install --no-cache-dir "apache-airflow[celery,postgres,redis]==${AIRFLOW_VERSION}" /opt/plantlake \
      --constraint /tmp/constraints.txt \
 && rm /tmp/airflow-constraints.txt /tmp/constraints.txt

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plant.yaml /opt/plantlake/plant.yaml
ENV PLANTLAKE_CONFIG=/opt/plantlake/plant.yaml \
    LAKE_ROOT=/data/lake \
    MIMALLOC_PURGE_DELAY=-1
WORKDIR /opt/plantlake
