"""The columns of the benchmark tables as a Tortoise ORM abstract model.

Tortoise keeps state compiled for one SQL dialect on the model classes (and
caches INSERT statements by connection name and table) when it is initialised
again for another database in the same process. So every backend maps the
tables with classes of its own (``tortoise_models_sqlite``,
``tortoise_models_postgresql``) on a connection named after it.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

__all__ = ["BenchColumns"]


class BenchColumns(Model):
    """``id`` (given by the data set, never generated), ``name``, ``email``, ``age``, ``active``, ``score``."""

    id = fields.IntField(primary_key=True, generated=False)
    name = fields.TextField()
    email = fields.TextField()
    age = fields.IntField()
    active = fields.BooleanField()
    score = fields.FloatField()

    class Meta:
        abstract = True
