"""Models of the JSON-field suite, in collections of their own (tables prefixed ``tk_json``).

* ``JsonDoc``: an object field ``meta``, an array field ``tags`` and an
  optional object field ``extra`` (NULL when ``None``).
* ``JsonNoteV1`` / ``JsonNoteV2``: the migration suite's ``tk_json_note``, which
  gains an optional object field and a required array field in the second.
* ``JsonDriftText`` / ``JsonDriftObject``: one table ``tk_json_drift`` whose
  ``body`` is text in the first and a JSON object in the second.
"""

from dataclasses import dataclass, field
from typing import Any

from ommi import ModelCollection, ommi_model

__all__ = [
    "JsonDoc",
    "JsonDriftObject",
    "JsonDriftText",
    "JsonNoteV1",
    "JsonNoteV2",
    "JsonNoteV3",
    "json_drift_models",
    "json_mig_v1",
    "json_mig_v2",
    "json_mig_v3",
    "json_models",
]

json_models = ModelCollection("ommi_testkit_json")

json_drift_models = ModelCollection("ommi_testkit_json_drift")


@ommi_model(collection=json_models, name="tk_json_doc")
@dataclass
class JsonDoc:
    name: str
    meta: dict[str, Any] = field(default_factory=dict)
    tags: list[Any] = field(default_factory=list)
    extra: dict[str, Any] | None = None
    id: int | None = None


@ommi_model(collection=json_drift_models, name="tk_json_drift")
@dataclass
class JsonDriftText:
    body: str
    id: int | None = None


@ommi_model(collection=ModelCollection("ommi_testkit_json_drift_object"), name="tk_json_drift")
@dataclass
class JsonDriftObject:
    body: dict[str, Any]
    id: int | None = None


json_mig_v1 = ModelCollection("ommi_testkit_json_mig_v1")
json_mig_v2 = ModelCollection("ommi_testkit_json_mig_v2")
json_mig_v3 = ModelCollection("ommi_testkit_json_mig_v3")


@ommi_model(collection=json_mig_v1, name="tk_json_note")
@dataclass
class JsonNoteV1:
    text: str
    id: int | None = None


@ommi_model(collection=json_mig_v2, name="tk_json_note")
@dataclass
class JsonNoteV2:
    text: str
    meta: dict[str, Any] | None = None
    id: int | None = None


@ommi_model(collection=json_mig_v3, name="tk_json_note")
@dataclass
class JsonNoteV3:
    text: str
    meta: dict[str, Any] | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
