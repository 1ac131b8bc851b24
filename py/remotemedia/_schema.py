"""Checks a JSON value against the JSON Schema subset that node params and manifest
policies use, giving the same error paths as the native runtime.

The subset: ``type`` (object, integer, number, boolean, string, array, null, or a list
of them), ``enum``,
``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``properties``,
``required``, ``additionalProperties: false``, ``items``, ``minItems``, ``maxItems`` and
``default``. Checking runs in the native runtime's two phases: first shapes (types,
enum values, unknown and missing fields, as its deserializer does), then bounds (as
its range checks do), so a value with several faults reports the same one first.

Hand-written rather than ``jsonschema``: the fallback runtime must install without
compiled dependencies (``jsonschema`` needs ``rpds-py``), and errors must name one
field with the native runtime's path (``map[0]``), which is a small walk over the
subset above.
"""

from __future__ import annotations

import json
from typing import Any


class SchemaError(ValueError):
    """``value`` does not fit the schema; ``path`` names the field (``""`` for the whole)."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


_TYPES = {"object": (dict,), "integer": (int,), "number": (int, float), "boolean": (bool,), "string": (str,),
          "array": (list,), "null": (type(None),)}


def validate(value: dict, schema: dict) -> dict:
    """``value`` (an object) checked against ``schema``, with every missing property
    that has a ``default`` filled in. Raises :class:`SchemaError`."""
    check_shape(value, schema, "")
    check_bounds(value, schema, "")
    filled = {k: v["default"] for k, v in schema.get("properties", {}).items() if "default" in v and k not in value}
    return {**value, **filled}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def describe_json(value: Any) -> str:
    """A JSON value in an error, as the native side (serde) describes it."""
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{repr(value).replace('e+', 'e').replace('e-0', 'e-')}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    return {list: "sequence", dict: "map", type(None): "null"}.get(type(value), type(value).__name__)


def check_shape(value: Any, schema: dict, path: str) -> None:
    """Types, enum values, unknown and missing fields."""
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else kind
        allowed = tuple(t for k in kinds for t in _TYPES[k])
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            raise SchemaError(path, f"invalid type: {describe_json(value)}, expected {' or '.join(kinds)}")
    if "enum" in schema and not any(type(value) is type(e) and value == e for e in schema["enum"]):
        names = ", ".join(str(e) for e in schema["enum"])
        raise SchemaError(path, f"unknown variant `{value}`, expected one of {names}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key not in properties:
                if schema.get("additionalProperties", True) is False:
                    raise SchemaError(_join(path, key), f"unknown field `{key}`, expected one of {', '.join(properties)}")
                continue
            check_shape(item, properties[key], _join(path, key))
        for key in schema.get("required", ()):
            if key not in value:
                raise SchemaError(path, f"missing field `{key}`")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check_shape(item, schema["items"], f"{path}[{i}]")


def check_bounds(value: Any, schema: dict, path: str) -> None:
    """Numeric ranges and array lengths (of a value whose shape was checked)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(path, f"{value} is less than {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(path, f"{value} is more than {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise SchemaError(path, f"{value} must be more than {schema['exclusiveMinimum']}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            raise SchemaError(path, f"{value} must be less than {schema['exclusiveMaximum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                check_bounds(item, properties[key], _join(path, key))
    if isinstance(value, list):
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        if len(value) < low or (high is not None and len(value) > high):
            raise SchemaError(path, f"must list {low} to {high} items, got {len(value)}")
        for i, item in enumerate(value):
            check_bounds(item, schema.get("items", {}), f"{path}[{i}]")
