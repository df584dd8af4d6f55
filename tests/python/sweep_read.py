"""Reads a sweep's MLflow runs with the real mlflow client and prints them as JSON.

    sweep_read.py <tracking_uri> <experiment> <parent_run_id>
        {"parent": {"status", "params", "metrics", "artifacts"},
         "children": [{"run_name", "status", "params", "metrics"}]}   (children by run name)

Used by crates/textzoo-cli/tests/sweep.rs; it only reads, the Rust test asserts.
"""

import json
import os
import sys


def main():
    uri, experiment, parent_id = sys.argv[1:4]
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(parent_id)
    children = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
        output_format="list",
    )
    out = {
        "parent": {
            "status": parent.info.status,
            "run_name": parent.info.run_name,
            "params": parent.data.params,
            "metrics": parent.data.metrics,
            "artifacts": sorted(a.path for a in client.list_artifacts(parent_id)),
        },
        "children": sorted(
            (
                {
                    "run_name": r.info.run_name,
                    "status": r.info.status,
                    "params": r.data.params,
                    "metrics": r.data.metrics,
                }
                for r in children
            ),
            key=lambda r: r["run_name"],
        ),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
