"""Run by Airflow's own Python (.venv-airflow): the gan_pipeline DAG as Airflow parses it, as a JSON file.

    python airflow_dag_tasks.py <DAG folder> <output file>


Each task's upstream tasks and, for the pods (GAN_PIPELINE_TASKS=kubernetes), the pod KubernetesPodOperator
would create, serialised by the kubernetes client as it sends it to the API server.
"""

import json
import sys

from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
if bag.import_errors:
    sys.exit(f"the DAG does not import: {bag.import_errors}")
dag = bag.get_dag("gan_pipeline")
tasks = {}
for task in dag.tasks:
    described = {"operator": type(task).__name__, "upstream": sorted(task.upstream_task_ids)}
    if hasattr(task, "build_pod_request_obj"):
        from kubernetes.client import ApiClient

        described["pod"] = ApiClient().sanitize_for_serialization(task.build_pod_request_obj(dry_run=True))
    else:
        described["command"] = task.bash_command
        described["cwd"] = task.cwd
    tasks[task.task_id] = described
with open(sys.argv[2], "w") as output:
    json.dump({"schedule": dag.schedule, "tasks": tasks}, output)
