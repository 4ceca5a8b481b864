from kedro.pipeline import Node, Pipeline

from gan_pipeline.pipelines.data_processing.nodes import profile_splits, split_dataset


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                split_dataset,
                inputs=["raw_dataset", "params:data_processing"],
                outputs={"train_set": "train_set", "validation_set": "validation_set"},
                name="split_dataset",
            ),
            Node(
                profile_splits,
                inputs=["train_set", "validation_set"],
                outputs="data_profile",
                name="profile_splits",
            ),
        ]
    )
