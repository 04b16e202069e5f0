"""No value can change the SQL text the compiler produces: values only ever travel as parameters.

For generated queries (every operator, AND/OR trees, joins both ways, field
comparisons, sorts, windows, updates) the SQLite and PostgreSQL dialects of
``ommi.sql.SQLCompiler`` must produce the same SQL text when every value is
replaced by another of the same type, however hostile (quotes, ``%s``,
``?``, ``--``, NUL-free unicode). Only the parameters differ. The shape that
may change the text is what the compiler documents: the models, fields and
operators, the number of distinct ``in_`` values, and whether the query has a
limit and an offset at all. The same property checks the compiler's statement
cache: what it serves for a query equals compiling that query afresh.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ommi.drivers import Capabilities
from ommi.query.find import plan_query
from ommi.sql import SQLCompiler
from ommi_postgresql import PostgreSQLDialect
from ommi_sqlite import SQLiteDialect
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.domain import Domain
from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.models import Owner, Sample
from ommi_testkit.reliability.specs import field_of
from ommi_testkit.reliability.strategies import Generator, values_for

COMPILERS = {"sqlite": SQLCompiler(SQLiteDialect()), "postgresql": SQLCompiler(PostgreSQLDialect())}
UPDATABLE = ["number", "real", "exact", "flag", "text", "blob", "ident", "day", "moment", "instant", "shade"]


def test_sql_text_never_depends_on_values(profile: Profile) -> None:
    """Same query shape, different values: identical SQL text, parameters of the same count."""
    domain = Domain.for_capabilities(Capabilities())
    generator = Generator(domain)
    figures = Figures("sql_text", "sqlite+postgresql", profile.name)

    @settings(
        max_examples=profile.sql_text_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def check(data: Any) -> None:
        target = data.draw(st.sampled_from([Sample, Owner]))
        first = data.draw(generator.conditions(target))
        second = data.draw(generator.revalued(first))
        sort = tuple(
            field_of(target, name).desc if desc else field_of(target, name).asc
            for name, desc in data.draw(
                st.lists(
                    st.tuples(st.sampled_from([f.name for f in field_of(target, "id").schema.fields]), st.booleans()),
                    max_size=3,
                )
            )
        )
        limits = data.draw(st.tuples(st.integers(1, 10**6), st.integers(1, 10**6)))
        offsets = data.draw(st.sampled_from([(0, 0), (1, 2**40), (7, 3)]))
        queries = [
            plan_query((target, *(c.build() for c in conditions)), sort, limit, offset)
            for conditions, limit, offset in ((first, limits[0], offsets[0]), (second, limits[1], offsets[1]))
        ]
        plain = [plan_query((target, *(c.build() for c in conditions))) for conditions in (first, second)]
        names = (
            data.draw(st.lists(st.sampled_from(UPDATABLE), min_size=1, max_size=4, unique=True))
            if (target is Sample)
            else ["name", "rank"]
        )
        values = [
            {
                field_of(target, n): field_of(target, n).encode(data.draw(values_for(field_of(target, n), domain)))
                for n in names
            }
            for _ in range(2)
        ]
        for dialect, compiler in COMPILERS.items():
            pairs = {
                # The uncached compilation: the cache would hand back the first text.
                "select": (compiler.compile_select(queries[0]), compiler.compile_select(queries[1])),
                "count": (compiler.compile_count(queries[0]), compiler.compile_count(queries[1])),
                "delete": (compiler.delete(plain[0]), compiler.delete(plain[1])),
                "update": (compiler.update(plain[0], values[0]), compiler.update(plain[1], values[1])),
            }
            for statement, (a, b) in pairs.items():
                assert a.sql == b.sql, f"{dialect} {statement}: the SQL text changed with the values"
                assert len(a.params) == len(b.params), f"{dialect} {statement}"
                figures.cases += 1
            for query in queries:
                # The statement cache serves exactly what compiling afresh gives.
                pairs_of = ((compiler.select, compiler.compile_select), (compiler.count, compiler.compile_count))
                for cached, fresh in pairs_of:
                    expected = fresh(query)
                    for _ in range(2):  # the first call may fill the cache, the second reads it
                        served = cached(query)
                        assert (served.sql, served.params) == (expected.sql, expected.params), f"{dialect} cache"
        figures.examples += 1

    check()
    record(figures)
    assert figures.examples >= profile.sql_text_examples
