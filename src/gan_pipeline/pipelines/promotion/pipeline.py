from kedro.pipeline import Node, Pipeline

from gan_pipeline.pipelines.promotion.nodes import promote_generator


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                promote_generator,
                inputs=["registered_model", "params:promotion"],
                outputs="promotion_decision",
                name="promote_generator",
            )
        ]
    )
