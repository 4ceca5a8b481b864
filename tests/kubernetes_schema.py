"""Kubernetes objects checked against real schemas: the `kubernetes` client's models for core objects, the
Kubeflow Trainer's published models (`kubeflow-trainer-api`) for a TrainJob. Both deserialisers ignore
unknown keys, so every key is first matched against the model's fields, at every depth: a typo'd field fails."""

import types
import typing
from typing import Any

import kubernetes.client
from kubeflow_trainer_api import models as trainer_models
from pydantic import BaseModel

API_GROUPS = {"v1": "", "rbac.authorization.k8s.io/v1": "", "trainer.kubeflow.org/v1alpha1": "trainer"}


def validate(manifest: dict[str, Any]) -> Any:
    """The object as its model; ``ValueError`` naming every unknown key, or what the model refuses."""
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if api_version not in API_GROUPS:
        raise ValueError(f"{kind}: no schema here for apiVersion {api_version!r}")
    if API_GROUPS[api_version] == "trainer":
        return _validate_trainer(manifest, getattr(trainer_models, f"TrainerV1alpha1{kind}"))
    return _validate_core(manifest, f"V1{kind}")


def _validate_core(manifest: dict[str, Any], type_name: str) -> Any:
    unknown = _unknown_core_keys(manifest, type_name, manifest["kind"])
    if unknown:
        raise ValueError("unknown fields: " + ", ".join(unknown))
    # The client's own deserialiser (its public wrapper's signature changed across releases): required
    # fields and value types, as when it reads an API server's answer.
    return kubernetes.client.ApiClient()._ApiClient__deserialize(manifest, type_name)


def _unknown_core_keys(data: Any, type_name: str, path: str) -> list[str]:
    # Container types are spelt `list[X]` / `dict(str, X)`, or `List[X]` / `Dict[str, X]` by newer clients.
    if type_name.lower().startswith("list["):
        inner = type_name[5:-1]
        return [key for i, item in enumerate(data or []) for key in _unknown_core_keys(item, inner, f"{path}[{i}]")]
    if type_name.lower().startswith(("dict(", "dict[")):
        inner = type_name[type_name.index(",") + 1 : -1].strip()
        return [key for name, item in (data or {}).items() for key in _unknown_core_keys(item, inner, f"{path}.{name}")]
    model = getattr(kubernetes.client.models, type_name, None)
    if model is None:
        return []  # a primitive, or free-form `object`
    if not isinstance(data, dict):
        return [f"{path} (an object of {type_name} expected)"]
    fields = {key: attribute for attribute, key in model.attribute_map.items()}
    found = []
    for key, value in data.items():
        if key not in fields:
            found.append(f"{path}.{key}")
        else:
            found += _unknown_core_keys(value, model.openapi_types[fields[key]], f"{path}.{key}")
    return found


def _validate_trainer(manifest: dict[str, Any], model: type[BaseModel]) -> BaseModel:
    unknown = _unknown_model_keys(manifest, model, manifest["kind"])
    if unknown:
        raise ValueError("unknown fields: " + ", ".join(unknown))
    return model.from_dict(manifest)  # pydantic: required fields, strict value types


def _unknown_model_keys(data: Any, annotation: Any, path: str) -> list[str]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        models = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _unknown_model_keys(data, models[0], path) if len(models) == 1 else []
    if origin is list:
        (inner,) = typing.get_args(annotation)
        return [key for i, item in enumerate(data or []) for key in _unknown_model_keys(item, inner, f"{path}[{i}]")]
    if origin is dict:
        inner = typing.get_args(annotation)[1]
        items = (data or {}).items()
        return [key for name, value in items for key in _unknown_model_keys(value, inner, f"{path}.{name}")]
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    if not is_model or "actual_instance" in annotation.model_fields:
        return []  # a primitive, or a oneOf value such as a quantity (``"8"`` or ``8``), which the model checks
    if not isinstance(data, dict):
        return [f"{path} (an object of {annotation.__name__} expected)"]
    fields = {field.alias or name: field.annotation for name, field in annotation.model_fields.items()}
    found = []
    for key, value in data.items():
        if key not in fields:
            found.append(f"{path}.{key}")
        else:
            found += _unknown_model_keys(value, fields[key], f"{path}.{key}")
    return found
