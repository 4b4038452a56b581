"""Field sets: which fields of an object a field manager owns, encoded as Kubernetes does.

Server-side apply and managedFields reason about sets of *paths* into an object. A path
is a tuple of path elements, each already in its FieldsV1 spelling, because that spelling
is also a good identity:

- `f:<name>`  a field of a struct or a key of a map,
- `k:<json>`  an element of a map-list, by its list-map-keys (`k:{"name":"a"}`, keys
              sorted, compact JSON as Go writes it),
- `v:<json>`  an element of a set-list, by its value (`v:"example.com/x"`),
- `i:<n>`     an element by index (only ever read back; atomic lists are owned whole).

`FieldSet` is the trie structured-merge-diff calls `fieldpath.Set`: `members` are the
paths that end at this node, `children` the subtrees. FieldsV1 is its JSON form, with
`"."` marking a node that is both a member and has children. Orders (children in the
JSON, conflicts in messages) follow structured-merge-diff's PathElement ordering: fields,
then keys, then values, then indexes.

The second half reads a `SchemaNode` the way structured-merge-diff reads its schema:
the *shape* of each value (struct, granular map, set, map-list, or an atomic leaf), the
identity of list elements, and `to_field_set`, the paths an object (an applied
configuration) sets. Without a schema, or below `x-kubernetes-preserve-unknown-fields`,
maps are granular and lists atomic ("deduced" types).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from apiserver.schema import SchemaNode

Path = tuple[str, ...]


class _Absent:
    """A value that is not there at all (distinct from an explicit JSON null)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


class TypedError(ValueError):
    """An object does not fit its schema the way structured-merge-diff needs (a map-list
    element without its keys, duplicate keys in an applied list, an undeclared field)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{path_string(self.path)}: {self.message}" if self.path else self.message


# --- path elements ---------------------------------------------------------------------

def go_json(value: Any, *, sort_keys: bool = True) -> str:
    """Compact JSON as Go's encoder writes it (map keys sorted, <>& escaped, UTF-8 kept)."""
    if type(value) is dict and sort_keys:
        # The common case, a list element's keys ({"name": "c"}), piece by piece from
        # cached parts: the same text json.dumps writes.
        parts = [_scalar_json(item) for item in value.values()]
        if None not in parts and all(type(key) is str for key in value):
            pairs = sorted(zip(value, parts, strict=True))
            return "{" + ",".join(_string_json(key) + ":" + part for key, part in pairs) + "}"
    elif type(value) is str:
        return _string_json(value)
    return _go_json(value, sort_keys)


def _scalar_json(value: Any) -> str | None:
    """go_json of a string, bool, int or null; None for anything else."""
    kind = type(value)
    if kind is str:
        return _string_json(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    return "null" if value is None else None


@functools.lru_cache(maxsize=8192)
def _string_json(value: str) -> str:
    return _go_json(value, True)


def _go_json(value: Any, sort_keys: bool) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        value = int(value)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def field_element(name: str) -> str:
    return "f:" + name


def key_element(keys: dict[str, Any]) -> str:
    return "k:" + go_json(keys)


def value_element(value: Any) -> str:
    return "v:" + go_json(value)


def _go_string(value: Any) -> str:
    """value.ToString of structured-merge-diff: strings %q-quoted, others %v."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_go_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={_go_string(v)}" for k, v in value.items())
    return str(value)


def element_string(element: str) -> str:
    """A path element the way conflict messages print it: `.name`, `[name="a"]`, `[="x"]`."""
    kind, text = element[0], element[2:]
    if kind == "f":
        return "." + text
    if kind == "k":
        keys = json.loads(text)
        return "[" + ",".join(f"{k}={_go_string(v)}" for k, v in keys.items()) + "]"
    if kind == "v":
        return "[=" + _go_string(json.loads(text)) + "]"
    return "[" + text + "]"


def path_string(path: Path) -> str:
    """`.spec.template.spec.containers[name="web"].image`."""
    return "".join(element_string(e) for e in path)


def _value_order(value: Any) -> tuple:
    """value.Compare's total order: numbers < strings < booleans < lists < maps < null."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(_value_order(v) for v in value))
    if isinstance(value, dict):
        return (4, tuple((k, _value_order(value[k])) for k in sorted(value)))
    return (5,)


@functools.lru_cache(maxsize=8192)
def element_order(element: str) -> tuple:
    """Sort key giving PathElement.Compare's order."""
    kind, text = element[0], element[2:]
    if kind == "f":
        return (0, text)
    if kind == "k":
        keys = json.loads(text)
        return (1, tuple((name, _value_order(keys[name])) for name in sorted(keys)))
    if kind == "v":
        return (2, _value_order(json.loads(text)))
    return (3, int(text))


def _canonical_element(key: str) -> str | None:
    """Parse a FieldsV1 key into its canonical spelling; None for unknown element types."""
    if len(key) < 2 or key[1] != ":":
        raise ValueError(f"missing colon: {key}")
    kind, text = key[0], key[2:]
    if kind == "f":
        return key
    if kind == "k":
        keys = json.loads(text)
        if not isinstance(keys, dict):
            raise ValueError(f"key element is not an object: {key}")
        return key_element(keys)
    if kind == "v":
        return value_element(json.loads(text))
    return f"i:{int(text)}" if kind == "i" else None


# --- the set ---------------------------------------------------------------------------

class FieldSet:
    """A set of paths, as a trie. Invariant: no child subtree is empty. Treat a set as
    immutable once built: set operations return sets sharing unchanged subtrees."""

    __slots__ = ("members", "children")

    def __init__(self, members: Iterable[str] = (), children: dict[str, FieldSet] | None = None) -> None:
        self.members: set[str] = set(members)
        self.children: dict[str, FieldSet] = children if children is not None else {}

    @classmethod
    def from_paths(cls, paths: Iterable[Path]) -> FieldSet:
        out = cls()
        for path in paths:
            out.insert(path)
        return out

    def insert(self, path: Path) -> None:
        node = self
        for element in path[:-1]:
            node = node.children.setdefault(element, FieldSet())
        if path:
            node.members.add(path[-1])

    def has(self, path: Path) -> bool:
        node: FieldSet | None = self
        for element in path[:-1]:
            node = node.children.get(element)
            if node is None:
                return False
        return bool(path) and path[-1] in node.members

    def empty(self) -> bool:
        return not self.members and not self.children

    def union(self, other: FieldSet) -> FieldSet:
        children = dict(self.children)
        for element, sub in other.children.items():
            mine = children.get(element)
            children[element] = sub if mine is None else mine.union(sub)
        return FieldSet(self.members | other.members, children)

    def difference(self, other: FieldSet) -> FieldSet:
        children = {}
        for element, sub in self.children.items():
            theirs = other.children.get(element)
            rest = sub if theirs is None else sub.difference(theirs)
            if not rest.empty():
                children[element] = rest
        return FieldSet(self.members - other.members, children)

    def intersection(self, other: FieldSet) -> FieldSet:
        children = {}
        for element, sub in self.children.items():
            theirs = other.children.get(element)
            if theirs is not None:
                both = sub.intersection(theirs)
                if not both.empty():
                    children[element] = both
        return FieldSet(self.members & other.members, children)

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """Remove every path of `other` *and everything below it*."""
        children = {}
        for element, sub in self.children.items():
            if element in other.members:
                continue
            theirs = other.children.get(element)
            rest = sub if theirs is None else sub.recursive_difference(theirs)
            if not rest.empty():
                children[element] = rest
        return FieldSet(self.members - other.members, children)

    def paths(self, prefix: Path = ()) -> Iterator[Path]:
        """Members of this level first, then each child subtree, all in element order
        (the order of Set.Iterate, hence of conflicts)."""
        for element in sorted(self.members, key=element_order):
            yield prefix + (element,)
        for element in sorted(self.children, key=element_order):
            yield from self.children[element].paths(prefix + (element,))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSet):
            return NotImplemented
        return set(self.paths()) == set(other.paths())

    def __repr__(self) -> str:
        return "FieldSet(" + ", ".join(path_string(p) for p in self.paths()) + ")"

    # --- FieldsV1 ----------------------------------------------------------------------
    def to_fields_v1(self) -> dict[str, Any]:
        return self._emit(include_self=False)

    def _emit(self, include_self: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if include_self:
            out["."] = {}
        for element in sorted(self.members | set(self.children), key=element_order):
            sub = self.children.get(element)
            if sub is None:
                out[element] = {}
            else:
                out[element] = sub._emit(include_self=element in self.members)
        return out

    @classmethod
    def from_fields_v1(cls, data: Any) -> FieldSet:
        """Decode a FieldsV1 trie; raises ValueError on malformed input."""
        if not isinstance(data, dict):
            raise ValueError("FieldsV1 must be a JSON object")
        out = cls()
        for key, sub in data.items():
            if key == ".":
                continue
            element = _canonical_element(key)
            if element is None:
                continue  # a future element type: dropped, as Kubernetes does
            if not isinstance(sub, dict):
                raise ValueError(f"the value of {key} must be an object")
            child = cls.from_fields_v1(sub)
            if "." in sub or not sub or child.empty():
                out.members.add(element)
            if not child.empty():
                out.children[element] = child
        return out


# --- schema shapes ----------------------------------------------------------------------

SCALAR, ATOMIC, STRUCT, MAP, DEDUCED, SET, ASSOC = "scalar", "atomic", "struct", "map", "deduced", "set", "assoc"
GRANULAR_MAPS = (STRUCT, MAP, DEDUCED)
GRANULAR_LISTS = (SET, ASSOC)
_RESOURCE_FIELDS = ("apiVersion", "kind", "metadata")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# Map-list keys that Kubernetes' OpenAPI gives a default (the bundled data omits defaults).
_BUILTIN_KEY_DEFAULTS = {"protocol": "TCP"}


@functools.cache
def _object_meta() -> SchemaNode | None:
    try:
        return SchemaNode.named(_OBJECT_META)
    except (RuntimeError, KeyError):
        return None


def _list_type(node: SchemaNode) -> str:
    declared = node.list_type
    # A patch strategy of "merge" without a merge key makes a set (kube-openapi schemaconv).
    if declared == "atomic" and "x-kubernetes-list-type" not in node.raw \
            and "merge" in node.patch_strategy.split(","):
        return "set"
    return declared


_UNSET: Any = object()


def declared_shape(node: SchemaNode | None) -> str | None:
    """What the schema says lives here; None when it does not say (deduced). Kept on
    the node: every field-set walk asks it for every value."""
    if node is None:
        return None
    shape = node.memo.get("fieldsets.shape", _UNSET)
    if shape is _UNSET:
        shape = node.memo["fieldsets.shape"] = _declared_shape(node)
    return shape


def _declared_shape(node: SchemaNode) -> str | None:
    kind = node.type
    if kind == "object":
        if node.map_type == "atomic":
            return ATOMIC
        if node.properties:
            return STRUCT
        return MAP if node.map_values() is not None else None
    if kind == "array":
        list_type = _list_type(node)
        if list_type == "set":
            return SET
        return ASSOC if list_type == "map" and node.list_map_keys else ATOMIC
    if kind is None and node.preserve_unknown_fields:
        return None
    return SCALAR


def shape_of(node: SchemaNode | None, value: Any) -> str:
    """The shape a value is handled with; a null takes the declared shape."""
    declared = declared_shape(node)
    if isinstance(value, dict):
        if declared in (STRUCT, MAP) or (declared == ATOMIC and node is not None and node.type == "object"):
            return declared
        return DEDUCED
    if isinstance(value, list):
        return declared if declared in GRANULAR_LISTS else ATOMIC
    if value is None or value is ABSENT:
        return declared or DEDUCED
    return SCALAR


def pair_shape(node: SchemaNode | None, left: Any, right: Any) -> str:
    """The shape two versions of one value are compared or merged with; ATOMIC (a leaf)
    when both are null/absent or their shapes disagree."""
    has_left = left is not None and left is not ABSENT
    has_right = right is not None and right is not ABSENT
    if has_left and has_right:
        shape = shape_of(node, left)
        if shape_of(node, right) != shape:
            return ATOMIC
    elif has_left or has_right:
        shape = shape_of(node, left if has_left else right)
    else:
        return ATOMIC
    return ATOMIC if shape == SCALAR else shape


def is_resource_root(path: Path, node: SchemaNode | None) -> bool:
    return not path or (node is not None and node.embedded_resource)


def child_schema(node: SchemaNode | None, key: str, *, root: bool) -> tuple[SchemaNode | None, bool, bool]:
    """(schema of `key`, whether it is a named struct field, whether the schema allows it).
    A resource's apiVersion/kind/metadata always exist, metadata typed as ObjectMeta."""
    if root and key == "metadata":
        return _object_meta() or (node.field(key) if node is not None else None), True, True
    if node is not None and key in node.properties:
        return node.field(key), True, True
    if root and key in _RESOURCE_FIELDS:
        return None, True, True
    if node is None:
        return None, False, True
    values = node.map_values()
    if values is not None:
        return values, False, True
    return None, False, bool(node.raw.get("x-kubernetes-preserve-unknown-fields"))


def items_schema(node: SchemaNode | None) -> SchemaNode | None:
    return node.items() if node is not None else None


def _key_default(node: SchemaNode, name: str) -> Any:
    items = node.items()
    field = items.field(name) if items is not None else None
    if field is not None and "default" in field.raw:
        return field.raw["default"]
    if items is not None and items.ref_name is not None:
        return _BUILTIN_KEY_DEFAULTS.get(name)
    return None


def item_element(node: SchemaNode | None, shape: str, item: Any, index: int, path: Path) -> str:
    """The path element of one element of a set or map-list."""
    if shape == SET:
        if isinstance(item, dict | list) or item is None:
            kind = "a map" if isinstance(item, dict) else "a list" if isinstance(item, list) else "an explicit null"
            raise TypedError(path, f"element {index}: associative list without keys has an element that's {kind}")
        return value_element(item)
    if not isinstance(item, dict):
        raise TypedError(path, f"element {index}: associative list with keys may not have non-map elements")
    keys: dict[str, Any] = {}
    for name in node.list_map_keys:
        if name in item:
            keys[name] = item[name]
            continue
        default = _key_default(node, name)
        if default is None:
            raise TypedError(path, f"element {index}: associative list with keys has an element that omits "
                                   f'key field "{name}" (and doesn\'t have default value)')
        keys[name] = default
    return key_element(keys)


# --- objects to sets ---------------------------------------------------------------------

def to_field_set(obj: Any, schema: SchemaNode | None, *, strict: bool = False) -> FieldSet:
    """The paths an object sets (ToFieldSet): leaves, map entries and list elements;
    struct fields only as leaves. `strict` (for applied configurations) rejects fields the
    schema does not declare and duplicate list elements."""
    out = FieldSet()
    _to_set(out, (), schema, obj, strict)
    return out


def _to_set(out: FieldSet, path: Path, node: SchemaNode | None, value: Any, strict: bool) -> None:
    shape = shape_of(node, value)
    if shape in (SCALAR, ATOMIC):
        if path:
            out.insert(path)
        return
    if value is None:
        return
    if shape in GRANULAR_MAPS:
        root = is_resource_root(path, node)
        for key, child_value in value.items():
            child, named, declared = child_schema(node if shape != DEDUCED else None, key, root=root)
            if strict and not declared:
                raise TypedError(path + (field_element(key),), "field not declared in schema")
            _to_set(out, path + (field_element(key),), child, child_value, strict)
            if not named:
                out.insert(path + (field_element(key),))
        return
    seen: set[str] = set()
    for index, item in enumerate(value):
        element = item_element(node, shape, item, index, path)
        if strict and element in seen:
            raise TypedError(path, f"duplicate entries for key {element_string(element)}")
        seen.add(element)
        _to_set(out, path + (element,), items_schema(node), item, strict)
        out.insert(path + (element,))
