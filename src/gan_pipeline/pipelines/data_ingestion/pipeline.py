from kedro.pipeline import Node, Pipeline

from gan_pipeline.pipelines.data_ingestion.nodes import ingest_dataset


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                ingest_dataset,
                inputs="params:data_ingestion",
                outputs={"raw_dataset": "raw_dataset", "dataset_card": "dataset_card"},
                name="ingest_dataset",
            )
        ]
    )
