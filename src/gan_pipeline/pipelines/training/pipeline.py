from kedro.pipeline import Node, Pipeline

from gan_pipeline.pipelines.training.nodes import train_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_model,
                inputs=["train_set", "params:training"],
                outputs={
                    name: name
                    for name in (
                        "generator",
                        "discriminator",
                        "loss_history",
                        "loss_curves",
                        "training_progress",
                        "training_run",
                    )
                },
                name="train_model",
                tags=["gpu"],
            )
        ]
    )
