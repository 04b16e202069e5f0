"""Tortoise ORM models of the benchmark tables, used on sqlite only (see ``tortoise_models``)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from ommibench.data import AUTHORS, BIG, POSTS, STREAM, USERS
from ommibench.impls.tortoise_models import BenchColumns

__all__ = ["TAuthor", "TBigRow", "TPost", "TStreamRow", "TUser"]


class TUser(BenchColumns):
    class Meta:
        table = USERS


class TStreamRow(BenchColumns):
    class Meta:
        table = STREAM


class TBigRow(BenchColumns):
    class Meta:
        table = BIG


class TAuthor(Model):
    id = fields.IntField(primary_key=True, generated=False)
    name = fields.TextField()

    class Meta:
        table = AUTHORS


class TPost(Model):
    id = fields.IntField(primary_key=True, generated=False)
    author: fields.ForeignKeyRelation[TAuthor] = fields.ForeignKeyField(
        "bench.TAuthor", related_name="posts", source_field="author_id"
    )
    title = fields.TextField()

    class Meta:
        table = POSTS
