"""Is a JSON Schema a compatible successor of another? Which documents would the change break?

Two questions, one walk over both schemas side by side (only the keywords ``schemas/`` uses; any other
keyword must stay unchanged):

- ``narrowings(old, new)``: what the new schema rejects that the old one accepted. A reader of the
  contract (the stitcher for channel_event, the detector for stitched_event) must keep accepting every
  document a producer of any earlier 1.x version could send: a narrowing is never allowed in a major.
- ``narrowings(new, old, additive=True)``: what the new schema accepts that the old one did not, other
  than new fields. For a contract this project *produces*, a reader written against the old version must
  understand every new document once it drops the fields it does not know; so the only growth allowed is
  new optional fields (and opening the object to fields not named yet).

Both are conservative: a change the walk cannot prove harmless (a new pattern, an edited ``allOf``) is
reported, and the person who changes the schema decides between a new major and a different change.
"""

from __future__ import annotations

from typing import Any

import jsonschema

Schema = dict[str, Any] | bool

ANNOTATIONS = {
    "$schema",
    "$id",
    "$defs",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
}
LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
HANDLED = {
    "type",
    "enum",
    "const",
    "pattern",
    "format",
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "items",
    "anyOf",
    "oneOf",
    "$ref",
    *LOWER_BOUNDS,
    *UPPER_BOUNDS,
}


class Side:
    """One schema document: its root (for local $refs) and a validator for concrete values."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def resolve(self, schema: Schema) -> Schema:
        seen = 0
        while isinstance(schema, dict) and str(schema.get("$ref", "")).startswith("#/"):
            node: Any = self.root
            for part in schema["$ref"][2:].split("/"):
                node = node[part]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
            if seen > 32:
                raise ValueError("a $ref cycle")
        return schema

    def accepts(self, schema: Schema, value: Any) -> bool:
        """Does ``schema`` (a part of this document) accept ``value``? Local $refs resolve in the root."""
        doc = {"$defs": self.root.get("$defs", {}), **schema} if isinstance(schema, dict) else schema
        return jsonschema.Draft202012Validator(doc).is_valid(value)


def narrowings(old: dict[str, Any], new: dict[str, Any], *, additive: bool = False) -> list[str]:
    """Where ``new`` rejects a document ``old`` accepts, as 'path: why' (empty: none found)."""
    out: list[str] = []
    _walk(Side(old), old, Side(new), new, "", out, additive)
    return out


def _types(schema: dict[str, Any]) -> set[str] | None:
    t = schema.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else set(t)


def _walk(a: Side, old: Schema, b: Side, new: Schema, path: str, out: list[str], additive: bool) -> None:
    old, new = a.resolve(old), b.resolve(new)
    where = path or "(root)"
    if old is False or new is True or new == {}:
        return
    if new is False:
        out.append(f"{where}: now rejects everything")
        return
    if old is True:
        old = {}
    assert isinstance(old, dict) and isinstance(new, dict)
    for key in sorted((set(old) | set(new)) - ANNOTATIONS - HANDLED):
        if old.get(key) != new.get(key):
            out.append(f"{where}: {key} changed from {old.get(key)!r} to {new.get(key)!r}")
    if "$ref" in old or "$ref" in new:  # external references: the same document on both sides
        if old.get("$ref") != new.get("$ref"):
            out.append(f"{where}: $ref changed from {old.get('$ref')!r} to {new.get('$ref')!r}")
        return
    # A finite set of old values: each must still be accepted, whatever the new schema says of it.
    values = old["enum"] if "enum" in old else [old["const"]] if "const" in old else None
    if values is not None:
        refused = [v for v in values if not b.accepts(new, v)]
        if refused:
            out.append(f"{where}: no longer accepts {refused}")
        return
    if "enum" in new or "const" in new:
        out.append(f"{where}: a value set where any value was accepted")
    _types_and_bounds(old, new, where, out)
    for many in ("anyOf", "oneOf"):
        if old.get(many) == new.get(many):
            continue
        branches_old = old.get(many, [{k: v for k, v in old.items() if k not in (many, *ANNOTATIONS)}])
        for i, branch in enumerate(branches_old):
            if not any(_fits(a, branch, b, n, path, additive) for n in new.get(many, [new])):
                out.append(f"{where}: {many}[{i}] is no longer accepted")
    _objects(a, old, b, new, path, out, additive)
    if "items" in old or "items" in new:
        _walk(a, old.get("items", True), b, new.get("items", True), f"{path}/[]", out, additive)


def _fits(a: Side, old: Schema, b: Side, new: Schema, path: str, additive: bool) -> bool:
    found: list[str] = []
    _walk(a, old, b, new, path, found, additive)
    return not found


def _types_and_bounds(old: dict[str, Any], new: dict[str, Any], where: str, out: list[str]) -> None:
    t_old, t_new = _types(old), _types(new)
    if t_new is not None:
        lost = (t_old or {"any"}) - t_new - ({"integer"} if "number" in t_new else set())
        if lost:
            out.append(f"{where}: type {sorted(t_new)} no longer admits {sorted(lost)}")
    for key in ("pattern", "format"):
        if key in new and new[key] != old.get(key):
            out.append(f"{where}: {key} {new[key]!r} where it was {old.get(key)!r}")
    for key in LOWER_BOUNDS:
        if key in new and (key not in old or new[key] > old[key]):
            out.append(f"{where}: {key} raised to {new[key]} (was {old.get(key)})")
    closed = old.get("additionalProperties") is False and "patternProperties" not in old
    for key in UPPER_BOUNDS:
        before = old.get(key)
        if key == "maxProperties" and closed:  # a closed object never held more than its named fields
            before = min(before if before is not None else 10**9, len(old.get("properties", {})))
        if key in new and (before is None or new[key] < before):
            out.append(f"{where}: {key} lowered to {new[key]} (was {before})")


def _objects(
    a: Side, old: dict[str, Any], b: Side, new: dict[str, Any], path: str, out: list[str], additive: bool
) -> None:
    where = path or "(root)"
    added = sorted(set(new.get("required", [])) - set(old.get("required", [])))
    if added:  # additive: the sides are swapped, so these were required before and are optional now
        out.append(f"{where}: {'no longer' if additive else 'newly'} required {added}")
    props_old, props_new = old.get("properties", {}), new.get("properties", {})
    rest_old, rest_new = old.get("additionalProperties", True), new.get("additionalProperties", True)
    for name in sorted(set(props_old) | set(props_new)):
        if additive and name not in props_new:
            continue  # a new optional field (sides swapped): what a reader of the old version drops
        if not additive and name in props_old and name not in props_new:
            out.append(f"{path}/{name}: no longer named (a field is never removed within a major)")
        _walk(
            a,
            props_old.get(name, rest_old),
            b,
            props_new.get(name, rest_new),
            f"{path}/{name}",
            out,
            additive,
        )
    if not additive:
        _walk(a, rest_old, b, rest_new, f"{path}/*", out, additive)
    if "propertyNames" in new and not additive and old.get("propertyNames") != new["propertyNames"]:
        if "propertyNames" in old:
            _walk(a, old["propertyNames"], b, new["propertyNames"], f"{path}/(names)", out, additive)
        elif rest_old is not False:
            out.append(f"{where}: propertyNames where any name was accepted")
        else:
            refused = [n for n in props_old if not b.accepts(new["propertyNames"], n)]
            if refused:
                out.append(f"{where}: field names {refused} refused by propertyNames")
