"""A user's mistake ends as one message: what is wrong, the key or file, the fix; exit code 1."""

import pytest
from click.testing import CliRunner
from kedro.io import DatasetError

from gan_pipeline.config.base import ParameterError, parameter_errors
from gan_pipeline.console import cli, promotion_defaults
from gan_pipeline.datasets.image_folder import ImageFolderError
from gan_pipeline.errors import TRACEBACK_VARIABLE, UserError, reported_user_errors, user_error_in
from gan_pipeline.gan.checkpoints import CheckpointError, CheckpointMismatchError, CheckpointRecord, SettingDifference
from gan_pipeline.gan.settings import SettingError
from gan_pipeline.pipelines.training.nodes import CheckpointRefused, checkpoint_refusals


def wrapped_by_kedro(error: Exception) -> DatasetError:
    """What Kedro raises when a dataset's load fails: its own error, raised from the dataset's."""
    try:
        try:
            raise error
        except Exception as cause:
            raise DatasetError("Failed while loading data from dataset X.") from cause
    except DatasetError as wrapped:
        return wrapped


def test_the_user_error_behind_a_kedro_wrapper_is_found_and_an_unrelated_one_is_not():
    missing = ImageFolderError("image folder /data/faces does not exist")
    assert user_error_in(wrapped_by_kedro(missing)) is missing
    assert user_error_in(wrapped_by_kedro(KeyError("bug"))) is None
    try:
        try:
            raise missing
        except ImageFolderError:
            raise RuntimeError("another problem") from None  # the user error was explicitly set aside
    except RuntimeError as unrelated:
        assert user_error_in(unrelated) is None


def test_a_user_error_is_printed_as_its_message_and_exits_1(capsys, monkeypatch):
    monkeypatch.delenv(TRACEBACK_VARIABLE, raising=False)
    with pytest.raises(SystemExit) as exit_, reported_user_errors():
        raise wrapped_by_kedro(ImageFolderError("image folder /data/faces does not exist: put the images there"))
    assert exit_.value.code == 1
    printed = capsys.readouterr().err
    assert printed.startswith("Error: image folder /data/faces does not exist: put the images there\n")
    assert "Traceback" not in printed and TRACEBACK_VARIABLE in printed


def test_the_traceback_stays_available_and_other_errors_keep_theirs(monkeypatch):
    monkeypatch.setenv(TRACEBACK_VARIABLE, "1")
    with pytest.raises(ImageFolderError), reported_user_errors():
        raise ImageFolderError("shown with its traceback on request")
    monkeypatch.delenv(TRACEBACK_VARIABLE)
    with pytest.raises(ZeroDivisionError), reported_user_errors():
        _ = 1 / 0


def test_a_setting_the_core_refuses_is_reported_as_the_parameter_it_came_from():
    with pytest.raises(ParameterError) as err, parameter_errors("training"):
        raise SettingError("batch_size", "5000 is larger than the training data (1437 samples); lower it")
    assert err.value.problems == ["training.batch_size: 5000 is larger than the training data (1437 samples); lower it"]
    assert "kedro run --params <key>=<value>" in str(err.value)


def test_a_refused_checkpoint_names_the_training_parameters_and_the_way_to_start_over(tmp_path):
    record = CheckpointRecord("c.safetensors", 3, 30, False, {}, "data")
    differences = [SettingDifference("epochs", 200, 250), SettingDifference("world_size", 1, 2)]
    with pytest.raises(CheckpointRefused) as err, checkpoint_refusals():
        raise CheckpointMismatchError(tmp_path, record, differences, ["the training set differs"])
    message = str(err.value)
    assert message.startswith(f"training.resume=auto found an unfinished checkpoint in {tmp_path} (epoch 3, step 30)")
    assert "training.epochs: 200 in the checkpoint, 250 now" in message
    assert "processes (torchrun --nproc-per-node x nodes): 1 in the checkpoint, 2 now" in message
    assert message.endswith("To start over instead: kedro run --params training.resume=never")
    with (
        pytest.raises(CheckpointRefused, match=r"not a checkpoint record.*\n.*training.resume=never"),
        checkpoint_refusals(),
    ):
        raise CheckpointError("last.json is not a checkpoint record")


def test_promote_on_a_model_the_registry_does_not_hold_prints_one_message(mlflow_store):
    result = CliRunner().invoke(cli, ["promote", "--model", "gan-generator-nope", "--tracking-uri", mlflow_store])
    assert result.exit_code == 1
    assert result.output.startswith("Error: promotion refused, registry unchanged: 'gan-generator-nope' version")
    assert "not found" in result.output and "Traceback" not in result.output


def test_outside_the_project_gan_pipeline_says_where_its_defaults_come_from_and_verbose_adds_the_traceback(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(TRACEBACK_VARIABLE, raising=False)
    promotion_defaults.cache_clear()
    quiet = CliRunner().invoke(cli, ["promote", "--model", "gan-generator-digits"])
    assert quiet.exit_code == 1 and "Traceback" not in quiet.output
    assert (
        "conf/base/parameters_promotion.yml not found" in quiet.output
        and "pass --timeout and --retries" in quiet.output
    )

    monkeypatch.setenv(TRACEBACK_VARIABLE, "0")  # restored after the test: --verbose sets it to 1
    verbose = CliRunner().invoke(cli, ["--verbose", "promote", "--model", "gan-generator-digits"])
    assert isinstance(verbose.exception, UserError)  # raised through, so Python prints its traceback
    promotion_defaults.cache_clear()
