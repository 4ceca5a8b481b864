"""What every parameter section shares: strict models, errors that name the full key, dotted names."""

import difflib
import re
import types
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from gan_pipeline.errors import UserError
from gan_pipeline.gan.settings import SettingError

PARAM_SEP = "."  # also kedro-mlflow's `params.dict_params.sep` in conf/base/mlflow.yml
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _allows_bool(annotation: Any) -> bool:
    """Whether a field's type takes true/false (pydantic would otherwise read true as the number 1)."""
    if annotation is bool or annotation is Any:
        return True
    if get_origin(annotation) in (Union, types.UnionType) or hasattr(annotation, "__metadata__"):
        return any(_allows_bool(arg) for arg in get_args(annotation))
    return False


class Params(BaseModel):
    """A parameter section: unknown keys are errors, values are frozen once validated, and a boolean is
    never taken for a number (``epochs: true`` would otherwise train one epoch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and not _allows_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError("a boolean where a number (or a name) is expected")
        return value


class ParameterError(UserError, ValueError):
    """Invalid parameters, each problem naming its full dotted key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "invalid parameters (conf/base/parameters_*.yml, the environment's parameters or --params):\n"
            + "\n".join(f"  {problem}" for problem in problems)
            + "\nFix the key in the file that sets it, or override it for one run: kedro run --params <key>=<value>"
        )


def known_device(name: str) -> str:
    """A device name the core can resolve (a validator for ``device`` keys)."""
    if not DEVICE_PATTERN.fullmatch(name):
        raise ValueError(f"unknown device {name!r}; allowed: auto | cpu | cuda | cuda:N | mps")
    return name


def one_of(what: str, allowed: Iterable[str]) -> Callable[[str], str]:
    """A validator: the name must be one of ``allowed`` (a registry's names), listed when it is not."""
    names = list(allowed)

    def check(name: str) -> str:
        if name not in names:
            raise ValueError(f"unknown {what} {name!r}; allowed: {names}")
        return name

    return check


def all_of(what: str, allowed: Iterable[str]) -> Callable[[Collection[str]], Collection[str]]:
    """A validator: every name of the collection must be one of ``allowed``."""
    names = sorted(allowed)

    def check(chosen: Collection[str]) -> Collection[str]:
        unknown = sorted(set(chosen) - set(names), key=list(chosen).index)
        if unknown:
            raise ValueError(f"unknown {what} {unknown}; allowed: {names}")
        return chosen

    return check


ParamsT = TypeVar("ParamsT", bound=BaseModel)


def unknown_name(what: str, name: str, known: Iterable[str], prefix: str = "") -> str:
    """``unknown <what>``, the nearest known name (as ``prefix`` + name) if one is close, and the known names."""
    known = sorted(known)
    nearest = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {prefix + nearest[0]!r}?)" if nearest else ""
    return f"unknown {what}{hint}; the {what}s here are {known}"


def _keys_at(model: type[BaseModel], path: Iterable[Any]) -> list[str]:
    """The keys of the (nested) model at ``path`` below ``model``; empty where the path leaves the models."""
    for part in path:
        field = model.model_fields.get(str(part))
        nested = [arg for arg in (field.annotation, *get_args(field.annotation)) if field is not None]
        models = [arg for arg in nested if isinstance(arg, type) and issubclass(arg, BaseModel)]
        if not models:
            return []
        model = models[0]
    return list(model.model_fields)


def parse_params(model: type[ParamsT], section: str, values: Any) -> ParamsT:
    """Validate ``values`` (the ``section`` of the parameters) or raise ``ParameterError``."""
    try:
        return model.model_validate(values if values is not None else {})
    except ValidationError as err:
        problems = []
        for error in err.errors():
            key = PARAM_SEP.join([section, *(str(part) for part in error["loc"])])
            if error["type"] == "missing":
                problems.append(f"{key}: missing; every key is set in conf/base/parameters_*.yml")
            elif error["type"] == "extra_forbidden":
                name, siblings = str(error["loc"][-1]), _keys_at(model, error["loc"][:-1])
                problems.append(f"{key}: {unknown_name('key', name, siblings, key.removesuffix(name))}")
            else:
                message = error["msg"].removeprefix("Value error, ")
                problems.append(f"{key}: {message} (got {error.get('input')!r})")
        raise ParameterError(problems) from None


@contextmanager
def parameter_errors(section: str) -> Iterator[None]:
    """Report a setting the core refuses as the parameter ``<section>.<setting>`` it came from."""
    try:
        yield
    except SettingError as err:
        raise ParameterError([f"{section}{PARAM_SEP}{err.setting}: {err.problem}"]) from err


def flatten_params(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections as dotted keys (``training.epochs``): the names kedro-mlflow logs and DVC tracks."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):  # an empty section leaves no key, as in kedro-mlflow
            flat.update(flatten_params(value, f"{name}{PARAM_SEP}"))
        else:
            flat[name] = value
    return flat


def parameters_file(section: str, project_path: Path = Path()) -> Path:
    """``conf/base/parameters_<section>.yml``: where a section's values are set, and where DVC reads them."""
    return project_path / "conf" / "base" / f"parameters_{section}.yml"


def base_section(section: str, project_path: Path = Path()) -> dict[str, Any]:
    """A section as ``conf/base`` sets it, for commands run in the project folder."""
    path = parameters_file(section, project_path)
    if not path.is_file():
        raise UserError(f"{path} not found: not in the project folder (where conf/ is)")
    return (yaml.safe_load(path.read_text()) or {}).get(section) or {}
