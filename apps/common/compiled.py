"""Reads whose SQL the ORM writes once, for the hottest queries.

Building a queryset and compiling it to SQL costs more than PostgreSQL takes to run a
lookup by primary key (py-spy: a quarter of a detail GET's CPU). A `CompiledRead`
builds its queryset once per shape, with stand-in values for the arguments, keeps the
SQL and where each argument goes, and afterwards only swaps in the arguments and runs it.

The rows come back as dicts of the `values()` names, converted as the ORM would.
"""

import threading
from collections.abc import Callable, Hashable
from uuid import UUID

from django.db import connections
from django.db.models import QuerySet


class CompiledRead:
    """`build(shape=..., **stand_ins)` returns a `values()` queryset; `shape` (a hashable
    derived from the arguments, such as whether the caller is an admin) picks a compiled
    form, since it may change the query's structure; the last `max_shapes` are kept.
    `stand_ins` gives each argument two different values to compile with; an argument
    that the query does not use (in some shape) is ignored."""

    def __init__(
        self,
        build: Callable[..., QuerySet],
        stand_ins: dict[str, tuple[object, object]],
        max_shapes: int = 64,
    ):
        self._build = build
        self._stand_ins = stand_ins
        self._max_shapes = max_shapes
        self._compiled: dict[tuple[str, Hashable], tuple] = {}
        self._lock = threading.Lock()

    def rows(self, shape: Hashable, *, using: str = "default", **arguments) -> list[dict]:
        compiled = self._compiled.get((using, shape))
        if compiled is None:
            compiled = self._compile(shape, using)
        sql, params, slots, names, converters = compiled
        params = list(params)
        for index, name, prepare in slots:
            params[index] = prepare(arguments[name])
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [
            {
                name: convert(value) if convert is not None and value is not None else value
                for name, convert, value in zip(names, converters, row, strict=True)
            }
            for row in rows
        ]

    def _compile(self, shape: Hashable, using: str) -> tuple:
        # Compiled twice, with two sets of stand-ins: the parameters that differ are the
        # arguments' places, whatever other values the shape puts in the query.
        queryset = self._build(shape=shape, **{name: a for name, (a, _) in self._stand_ins.items()})
        compiler = queryset.query.get_compiler(using)
        sql, params = compiler.as_sql()
        other = self._build(shape=shape, **{name: b for name, (_, b) in self._stand_ins.items()})
        other_sql, other_params = other.query.get_compiler(using).as_sql()
        if other_sql != sql or len(other_params) != len(params):
            raise ValueError("the query's structure must not depend on the arguments")
        slots = []
        for index, (param, other_param) in enumerate(zip(params, other_params, strict=True)):
            if param == other_param:
                continue
            for name, (a, b) in self._stand_ins.items():
                prepare = _preparation(a, param)
                if prepare is not None and prepare(b) == other_param:
                    slots.append((index, name, prepare))
                    break
            else:
                raise ValueError(f"parameter {index} changes with no argument")
        names = [*queryset.query.values_select, *queryset.query.annotation_select]
        converters = [_converter(column, compiler) for column in compiler.select]
        compiled = (sql, tuple(params), tuple(slots), tuple(names), tuple(converters))
        with self._lock:
            if len(self._compiled) >= self._max_shapes:
                self._compiled.pop(next(iter(self._compiled)), None)  # the oldest
            self._compiled[(using, shape)] = compiled
        return compiled


def _preparation(stand_in, param) -> Callable | None:
    """How an argument becomes this parameter, if `param` is the stand-in as the ORM
    passed it: as it is, or (a UUID on a database without a uuid type) as hex; a list,
    item by item."""
    if type(param) is type(stand_in) and param == stand_in:
        return _as_is
    if isinstance(stand_in, UUID) and param == stand_in.hex:
        return _uuid_hex
    if isinstance(stand_in, list) and isinstance(param, list) and len(stand_in) == len(param):
        # A list argument (a lookup like `__any`): each item as the first one goes.
        if not stand_in:
            return None
        item = _preparation(stand_in[0], param[0])
        if item is None:
            return None
        kind = type(param)
        return lambda values: kind(item(value) for value in values)
    return None


def _as_is(value):
    return value


def _uuid_hex(value):
    return UUID(str(value)).hex


def _converter(column, compiler) -> Callable | None:
    """One callable for a column's converters (backend and field), or None."""
    expression = column[0]
    functions = compiler.connection.ops.get_db_converters(
        expression
    ) + expression.get_db_converters(compiler.connection)
    if not functions:
        return None
    connection = compiler.connection

    def convert(value):
        for function in functions:
            value = function(value, expression, connection)
        return value

    return convert
