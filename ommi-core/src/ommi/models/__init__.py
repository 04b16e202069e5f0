"""Models: the decorator, field markers, collections, relations and codecs."""

from typing import TYPE_CHECKING, Any

from ommi import _legacy
from ommi.models.adapters import ModelAdapter
from ommi.models.collections import ModelCollection, get_global_collection
from ommi.models.constraints import Constraint, Index, ModelConstraint, Unique
from ommi.models.decorator import ModelMethods, ommi_model
from ommi.models.metadata import AssociateUsing, Auto, Key, ReferenceTo, StoreAs, TimezoneAware, generated_key
from ommi.models.relations import LazyLoadEveryRelated, LazyLoadTheRelated, LazyMany, LazyOne
from ommi.models.schema import Field, ModelSchema, get_schema, is_model
from ommi.models.types import Codec, StorageType

__all__ = [
    "AssociateUsing",
    "Auto",
    "Codec",
    "Constraint",
    "Field",
    "Index",
    "Key",
    "LazyLoadEveryRelated",
    "LazyLoadTheRelated",
    "LazyMany",
    "LazyOne",
    "ModelAdapter",
    "ModelCollection",
    "ModelConstraint",
    "ModelMethods",
    "ModelSchema",
    "ReferenceTo",
    "StorageType",
    "StoreAs",
    "TimezoneAware",
    "Unique",
    "generated_key",
    "get_global_collection",
    "get_schema",
    "is_model",
    "ommi_model",
]


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        # Ommi 0.2's names here (OmmiModel) and its 0.2 submodules (ommi.models.field_metadata...):
        # ommi._legacy says what became of each.
        return _legacy.attribute(__name__, name)
