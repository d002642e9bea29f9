"""What people and Airflow start: the CLI, the DAG factories (`orchestration`), the demo, the
deployment's user setup and the config reference generator. Nothing below imports it."""
