from kedro.pipeline import Node, Pipeline

from gan_pipeline.pipelines.evaluation.nodes import (
    evaluate_generator,
    fit_judge,
    register_generator,
    rescore_champion,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                fit_judge,
                inputs=["train_set", "previous_judge", "params:evaluation"],
                outputs="judge",
                name="fit_judge",
            ),
            Node(
                evaluate_generator,
                inputs=["generator", "judge", "train_set", "validation_set", "params:evaluation"],
                outputs={
                    name: name
                    for name in (
                        "metrics",
                        "evaluation_samples",
                        "class_histogram",
                        "latent_interpolation",
                        "nearest_neighbours",
                    )
                },
                name="evaluate_generator",
            ),
            Node(
                rescore_champion,
                inputs=["metrics", "judge", "train_set", "validation_set", "params:evaluation"],
                outputs="champion_rescore",
                name="rescore_champion",
            ),
            Node(
                register_generator,
                inputs=["generator", "judge", "train_set", "metrics", "champion_rescore", "params:evaluation"],
                outputs="registered_model",
                name="register_generator",
            ),
        ]
    )
