"""Defaulting custom resources from the `default`s in their schema.

apiextensions-apiserver applies schema defaults when an object is decoded from a request
and when it is read from storage: a missing property with a `default` gets a deep copy
of it, recursively through properties, map values and list items. Before that, nulls are
settled: a null where the schema is not `nullable` is dropped if the property has no
default (`prune_nulls`, PruneNonNullableNullsWithoutDefaults) and replaced by the default
if it has one. Defaults are applied after pruning and before validation.
"""

from __future__ import annotations

import copy
from typing import Any

from apiserver.crd.structural import Schema, additional, field_schema, items, properties


def _non_nullable_null(value: Any, s: Schema | None) -> bool:
    return value is None and s is not None and not s.get("nullable")


def prune_nulls(value: Any, schema: Schema | None) -> None:
    """Drop, in place, nulls the schema does not allow and has no default for."""
    if isinstance(value, dict):
        for name in list(value):
            _, sub = field_schema(schema, name)
            if _non_nullable_null(value[name], sub) and "default" not in (sub or {}):
                del value[name]
            else:
                prune_nulls(value[name], sub)
    elif isinstance(value, list):
        for item in value:
            prune_nulls(item, items(schema))


def _default(value: Any, s: Schema | None) -> None:
    if s is None:
        return
    if isinstance(value, dict):
        for name, prop in properties(s).items():
            if "default" in prop and (name not in value or _non_nullable_null(value[name], prop)):
                value[name] = copy.deepcopy(prop["default"])
        _, values_schema = additional(s)
        for name in list(value):
            prop = properties(s).get(name)
            if prop is not None:
                _default(value[name], prop)
            elif values_schema is not None:
                if _non_nullable_null(value[name], values_schema) and "default" in values_schema:
                    value[name] = copy.deepcopy(values_schema["default"])
                _default(value[name], values_schema)
    elif isinstance(value, list):
        item_schema = items(s)
        for index, item in enumerate(value):
            if _non_nullable_null(item, item_schema) and "default" in (item_schema or {}):
                value[index] = copy.deepcopy(item_schema["default"])  # type: ignore[index]
            _default(value[index], item_schema)


def apply_defaults(obj: dict[str, Any], schema: Schema | None) -> None:
    """Default `obj` in place from `schema`, as apiextensions does on decode."""
    if schema is None:
        return
    prune_nulls(obj, schema)
    _default(obj, schema)
