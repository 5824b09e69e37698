"""Turn the Stubber field specs of a template action into a marshmallow schema.

The ``fields`` object of an action is compiled once, when the template is
registered, into a :class:`~marshmallow.Schema` subclass. Loading a payload with
it returns a JSON-serializable dict: dates and datetimes become ISO strings,
numbers become an ``int`` when integral and a ``float`` otherwise. Unknown
payload keys are kept. Values may come from JSON bodies as well as from HTML
forms and query strings, so strings are coerced: ``"12.5"`` is a number and
``"on"``, ``"yes"``, ``"1"``, ``"true"`` (``"off"``, ``"no"``, ``"0"``,
``"false"``) tick (untick) a checkbox.

Field types, case-insensitive, with the aliases accepted for each:

- ``text`` (``textarea``, ``string``, ``password``, ``tel``): a string; numbers
  are turned into strings. Params ``minlength`` and ``maxlength`` (or
  ``min_length``, ``max_length``).
- ``number`` (``float``, ``decimal``, ``currency``) and ``integer`` (``int``),
  which also rejects fractional values. Params ``min`` and ``max``.
- ``email``: a string that must be an email address; length params as text.
- ``select`` (``radio``, ``dropdown``; ``multiselect`` is a select with
  ``multiple``): param ``options``, a list of ``{"label", "value"}`` objects or
  of plain values. A value matches an option when both read the same as
  strings (``1`` matches ``"1"``); the option's own value is loaded. With
  ``multiple: true`` the value is a list, and a single value is taken as a
  list of one. Without options any string, number or boolean is accepted.
- ``checkbox`` (``boolean``, ``bool``, ``toggle``, ``switch``): a boolean. A
  checkbox missing from the payload is not given, as an unticked box in a form.
- ``date`` (``YYYY-MM-DD``) and ``datetime`` (``datetime-local``; ISO 8601),
  loaded as ISO strings.
- ``hidden``: any JSON value, kept as it is.
- ``section`` (``heading``, ``paragraph``, ``html``): layout only, no data.
- ``arraybuilder`` (``array``): a list of objects; ``objectbuilder``
  (``object``): one object. Their sub-field specs sit in ``params.fields`` or
  in ``fields`` at the spec's top level.

An empty string counts as not given for every type but ``text`` and
``hidden``, where it is a value; length and pattern checks pass an empty
string, as in HTML forms. Optional fields accept a missing value and ``null``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from itertools import pairwise
from typing import Any, cast

from marshmallow import INCLUDE, Schema, ValidationError, missing, post_load, pre_load, validate
from marshmallow import fields as ma

from .errors import TemplateError

__all__ = ["build_schema"]

_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_REQUIRED = "This field is required."
_ALIASES = {
    alias: ftype
    for ftype, aliases in {
        "text": "textarea string password tel",
        "number": "float decimal currency",
        "integer": "int",
        "select": "radio dropdown multiselect",
        "checkbox": "boolean bool toggle switch",
        "datetime": "datetime-local",
        "arraybuilder": "array",
        "objectbuilder": "object",
        "section": "heading paragraph html",
    }.items()
    for alias in aliases.split()
}
_VALIDATION_ALIASES = {"min_length": "minlength", "max_length": "maxlength", "pattern": "regex"}
_VALIDATIONS = ("required", "regex", "minlength", "maxlength", "min", "max", "email")
_STRINGY = frozenset({"required", "regex", "minlength", "maxlength"})
_LISTY = frozenset({"required", "minlength", "maxlength"})
#: The validation types each field type accepts; a multiple select takes ``_LISTY``.
_RULES = dict.fromkeys(("hidden", "select", "date", "datetime"), _STRINGY) | {
    "text": _STRINGY | {"email"},
    "email": _STRINGY | {"email"},
    "number": _STRINGY | {"min", "max"},
    "integer": _STRINGY | {"min", "max"},
    "checkbox": frozenset({"required"}),
    "objectbuilder": frozenset({"required"}),
    "arraybuilder": _LISTY,
    "section": frozenset(),
}


class _Field(ma.Field[Any]):
    """Base of the generated fields: an empty string may count as not given."""

    #: Whether ``""`` means "not given" even when the field is optional.
    blank_is_missing = True

    def deserialize(
        self,
        value: Any,
        attr: str | None = None,
        data: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Treat ``""`` (and, when required, ``false`` and ``[]``) as missing, then deserialize."""
        if (value == "" and self.blank_is_missing) or (self.required and (value is False or value in ("", []))):
            value = missing
        return super().deserialize(value, attr, data, **kwargs)


class _Text(_Field, ma.String):
    blank_is_missing = False

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


class _Number(_Field, ma.Float):
    def __init__(self, *, integral: bool = False, **kwargs: Any) -> None:
        self.integral = integral
        super().__init__(**kwargs)
        if integral:
            self.error_messages["invalid"] = "Not a valid integer."

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INTEGER.fullmatch(value) and len(value) < 300:
            return int(value)
        number: float = super()._deserialize(value, attr, data, **kwargs)
        if number.is_integer():
            return int(number)
        if self.integral:
            raise self.make_error("invalid")
        return number


class _Select(_Field, ma.Raw):
    def __init__(self, *, choices: Mapping[str, Any] | None, **kwargs: Any) -> None:
        self.choices = choices
        self.listing = ", ".join(choices or ())
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        key = _choice_key(value)
        if key is None:
            raise ValidationError("Not a valid choice.")
        if self.choices is None:
            return value
        if key not in self.choices:
            raise ValidationError(f"Must be one of: {self.listing}.")
        return self.choices[key]


class _List(_Field, ma.List[Any]):
    def __init__(self, inner: ma.Field[Any], *, wrap: bool, **kwargs: Any) -> None:
        self.wrap = wrap
        super().__init__(inner, **kwargs)
        if isinstance(self.inner, _Field):
            self.inner.blank_is_missing = False  # An item cannot be left out of a list.

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if self.wrap and isinstance(value, str | int | float):
            value = [value]
        return super()._deserialize(value, attr, data, **kwargs)


class _Hidden(_Field, ma.Raw):
    blank_is_missing = False


class _Email(_Field, ma.Email):
    pass


class _Checkbox(_Field, ma.Boolean):
    pass


class _Date(_Field, ma.Date):
    pass


class _DateTime(_Field, ma.DateTime):
    pass


class _Nested(_Field, ma.Nested):
    pass


class _Search(validate.Regexp):
    """Like :class:`~marshmallow.validate.Regexp`, with :func:`re.search` semantics."""

    def __init__(self, pattern: re.Pattern[str], *, error: str | None = None) -> None:
        super().__init__(pattern, error=error)
        self.search = pattern.search

    def __call__(self, value: Any) -> Any:
        text = value if isinstance(value, str) else str(value)
        if text and self.search(text) is None:
            raise ValidationError(self._format_error(text))
        return value


class _Length(validate.Length):
    """Like :class:`~marshmallow.validate.Length`, measuring non-strings as strings."""

    def __call__(self, value: Any) -> Any:
        if value != "":
            super().__call__(value if isinstance(value, str | list) else str(value))
        return value


class _Present(validate.Validator):
    """Reject ``false`` and an empty list, which a required field must not be."""

    def __init__(self, error: str) -> None:
        self.message = error

    def __call__(self, value: Any) -> Any:
        if value is False or value == []:
            raise ValidationError(self.message)
        return value


def _choice_key(value: Any) -> str | None:
    """Return how ``value`` reads as a string, or None when it is no plain value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, str | int | float) else None


def _as_number(value: Any) -> float | None:
    """Return ``value`` as a number when it is one or reads as one, else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value) if _INTEGER.fullmatch(value) else float(value)
        except ValueError:
            return None
    return None


def _iso(value: Any) -> Any:
    """Return a date or datetime as an ISO 8601 string."""
    return value.isoformat()


def _escape(message: str) -> str:
    """Protect a template's message from marshmallow's ``str.format``."""
    return message.replace("{", "{{").replace("}", "}}")


_SIMPLE: dict[str, type[_Field]] = {"text": _Text, "email": _Email, "hidden": _Hidden, "number": _Number}
_SIMPLE |= {"checkbox": _Checkbox, "date": _Date, "datetime": _DateTime}


def _dropper(keys: frozenset[str]) -> Callable[..., Any]:
    """Return a ``pre_load`` hook dropping ``keys`` from the payload."""

    def drop_shadowing_keys(self: Schema, data: Any, **kwargs: Any) -> Any:
        """Drop payload keys that would overwrite the loaded value of a renamed field."""
        if isinstance(data, Mapping) and not keys.isdisjoint(data):
            return {key: value for key, value in data.items() if key not in keys}
        return data

    return drop_shadowing_keys


def _placer(places: tuple[tuple[str, str, tuple[str, ...]], ...]) -> Callable[..., Any]:
    """Return a ``post_load`` hook moving values: ``(field name, payload key, target path)``."""

    def place_at_datapaths(self: Schema, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Move each loaded value with a datapath to that nested path."""
        for name, key, target in places:
            if name not in data:
                continue
            value = data.pop(name)
            node = data
            for step in target[:-1]:
                child = node.get(step)
                if child is not None and not isinstance(child, Mapping):
                    where = ".".join(target)
                    raise ValidationError(f"Cannot place this value at {where}: {step} is not an object.", key)
                node[step] = node = dict(child or {})
            node[target[-1]] = value
        return data

    return place_at_datapaths


class _Reader:
    """Reads the field specs of one template, failing with :class:`TemplateError`."""

    def __init__(self, template: str) -> None:
        self.template = template

    def fail(self, path: str, message: str, fix: str) -> TemplateError:
        return TemplateError(message, template=self.template, path=path, fix=fix)

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        if value is not None and not isinstance(value, Mapping):
            raise self.fail(path, f"this is {type(value).__name__}, not an object.", "Make it a JSON object.")
        return value or {}

    def param(self, spec: Mapping[str, Any], path: str, *names: str) -> tuple[Any, str]:
        """Find the first of ``names`` in ``spec["params"]``, else in ``spec`` itself."""
        params = self.mapping(spec.get("params"), f"{path}.params")
        for scope, prefix in ((params, f"{path}.params."), (spec, f"{path}.")):
            for name in names:
                if scope.get(name) is not None:
                    return scope[name], prefix + name
        return None, f"{path}.params.{names[0]}"

    def number(self, spec: Mapping[str, Any], path: str, *names: str, count: bool = False) -> float | None:
        value, at = self.param(spec, path, *names)
        number = None if value is None else _as_number(value)
        if value is not None and (number is None or (count and (not isinstance(number, int) or number < 0))):
            kind = "a whole number of 0 or more" if count else "a number"
            raise self.fail(at, f"{value!r} is not {kind}.", f"Set {names[0]} to {kind}.")
        return number

    def rules(self, raw: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any], str]]:
        """Yield ``(validationtype, spec, path)`` for the validations of a field."""
        items: list[tuple[str, str | None, Any]]
        if isinstance(raw, list):
            items = [
                (f"{path}.validations[{i}]", None, {"validationtype": v} if isinstance(v, str) else v)
                for i, v in enumerate(raw)
            ]
        else:
            raw = self.mapping(raw, f"{path}.validations")
            items = [
                (f"{path}.validations.{k}", k, v if isinstance(v, Mapping) else {} if v is True else {k: v})
                for k, v in raw.items()
                if v is not False
            ]
        for at, key, entry in items:
            spec = self.mapping(entry, at)
            vtype = spec.get("validationtype", key)
            name = _VALIDATION_ALIASES.get(str(vtype).lower(), str(vtype).lower())
            if not isinstance(vtype, str) or name not in _VALIDATIONS:
                fix = f"Use one of {', '.join(_VALIDATIONS)}."
                raise self.fail(f"{at}.validationtype", f"{vtype!r} is not a known validationtype.", fix)
            if not isinstance(spec.get("invalid_message", ""), str):
                raise self.fail(f"{at}.invalid_message", "this is not a string.", "Write the message as a string.")
            yield name, spec, at

    def validator(self, vtype: str, spec: Mapping[str, Any], path: str) -> validate.Validator:
        """Build the validator of one validation other than ``required``."""
        error = None if spec.get("invalid_message") is None else _escape(spec["invalid_message"])
        if vtype == "email":
            return validate.Email(error=error)
        if vtype == "regex":
            pattern, at = self.param(spec, path, "regex", "pattern")
            if not isinstance(pattern, str):
                fix = 'Give the regular expression in params, such as {"regex": "^[0-9]+$"}.'
                raise self.fail(at, "the regex validation has no pattern.", fix)
            try:
                return _Search(re.compile(pattern), error=error)
            except re.error as exc:
                fix = "Fix the Python regular expression; it is matched with re.search."
                raise self.fail(at, f"{pattern!r} is not a valid regular expression ({exc}).", fix) from exc
        count = vtype not in ("min", "max")
        names = (vtype, vtype.replace("len", "_len"), "length") if count else (vtype,)
        bound = self.number(spec, path, *names, "value", count=count)
        if bound is None:
            fix = f'Give it in params, such as {{"{vtype}": 3}}.'
            raise self.fail(f"{path}.params.{vtype}", f"the {vtype} validation has no value.", fix)
        if vtype in ("min", "max"):
            return validate.Range(min=bound, error=error) if vtype == "min" else validate.Range(max=bound, error=error)
        return _Length(min=int(bound), error=error) if vtype == "minlength" else _Length(max=int(bound), error=error)

    def choices(self, spec: Mapping[str, Any], path: str) -> dict[str, Any] | None:
        """Map each select option, read as a string, to its value."""
        options, at = self.param(spec, path, "options")
        if options is None:
            return None
        if not isinstance(options, list):
            raise self.fail(at, f"options is {type(options).__name__}, not a list.", "Make options a JSON list.")
        choices: dict[str, Any] = {}
        for i, option in enumerate(options):
            value = option.get("value") if isinstance(option, Mapping) else option
            if (key := _choice_key(value)) is None:
                fix = 'Write each option as {"label": "Rand", "value": "ZAR"}, or as a plain string or number.'
                raise self.fail(f"{at}[{i}]", f"the option {option!r} has no plain value.", fix)
            choices.setdefault(key, value)
        return choices

    def field(self, name: str, spec: Any, path: str) -> tuple[_Field | None, tuple[str, ...]]:
        """Build the field of one spec and return it with the path its value goes to."""
        if not isinstance(spec, Mapping):
            raise self.fail(path, "the field spec is not an object.", 'Write it as {"fieldtype": "text", ...}.')
        if "." in name:
            fix = "Rename the field, and use details.datapath to place its value in a nested object."
            raise self.fail(path, f"the field name {name!r} contains a dot.", fix)
        raw_type = spec.get("fieldtype")
        ftype = _ALIASES.get(str(raw_type).lower(), str(raw_type).lower())
        if not isinstance(raw_type, str) or ftype not in _RULES:
            fix = f"Use one of {', '.join(sorted(_RULES))}, or an alias: {', '.join(sorted(_ALIASES))}."
            raise self.fail(f"{path}.fieldtype", f"{raw_type!r} is not a known fieldtype.", fix)
        if ftype == "section":
            return None, ()
        multiple, at = self.param(spec, path, "multiple")
        multiple = ftype == "select" and (multiple or raw_type.lower() == "multiselect")
        if not isinstance(multiple, bool):
            raise self.fail(at, "multiple is not true or false.", "Set multiple to true or false.")
        allowed = _LISTY if multiple else _RULES[ftype]
        validators: list[validate.Validator] = []
        required: str | None = None
        for vtype, vspec, vpath in self.rules(spec.get("validations"), path):
            if vtype not in allowed:
                fix = f"Remove it; a {ftype} field takes {', '.join(sorted(allowed))}."
                raise self.fail(f"{vpath}.validationtype", f"{vtype} does not apply to a {ftype} field.", fix)
            if vtype == "required":
                required = vspec.get("invalid_message") or _REQUIRED
            else:
                validators.append(self.validator(vtype, vspec, vpath))
        if ftype in ("number", "integer"):
            low, high = self.number(spec, path, "min"), self.number(spec, path, "max")
            if low is not None or high is not None:
                validators.append(validate.Range(low, high))
        elif ftype in ("text", "email"):
            short = self.number(spec, path, "minlength", "min_length", count=True)
            long = self.number(spec, path, "maxlength", "max_length", count=True)
            if short is not None or long is not None:
                validators.append(_Length(None if short is None else int(short), None if long is None else int(long)))
        kwargs: dict[str, Any] = {"validate": validators, "allow_none": required is None}
        if required is not None:
            validators.insert(0, _Present(required))
            kwargs.update(required=True, error_messages=dict.fromkeys(("required", "null"), _escape(required)))
        details = self.mapping(spec.get("details"), f"{path}.details")
        keyname, datapath = details.get("keyname") or name, details.get("datapath") or name
        if not isinstance(keyname, str):
            raise self.fail(f"{path}.details.keyname", "keyname is not a string.", "Make it the key in the payload.")
        if not isinstance(datapath, str) or not all(datapath.split(".")):
            fix = 'Make it dot-separated keys, such as "customer.email".'
            raise self.fail(f"{path}.details.datapath", f"{datapath!r} is not a dotted path.", fix)
        if keyname != name:
            kwargs["data_key"] = keyname
        return self.make(ftype, spec, path, multiple, kwargs), tuple(datapath.split("."))

    def make(self, ftype: str, spec: Mapping[str, Any], path: str, multiple: bool, kwargs: dict[str, Any]) -> _Field:
        """Instantiate the marshmallow field of a field type."""
        if ftype == "select":
            if multiple:
                return _List(_Select(choices=self.choices(spec, path)), wrap=True, **kwargs)
            return _Select(choices=self.choices(spec, path), **kwargs)
        if ftype in ("arraybuilder", "objectbuilder"):
            subfields, at = self.param(spec, path, "fields")
            schema = build_schema({} if subfields is None else subfields, template=self.template, path=at)
            if ftype == "objectbuilder":
                return _Nested(schema, **kwargs)
            return _List(ma.Nested(schema), wrap=False, **kwargs)
        if ftype in ("date", "datetime"):
            kwargs["post_load"] = _iso
        return _Number(integral=True, **kwargs) if ftype == "integer" else _SIMPLE[ftype](**kwargs)


def build_schema(
    fields: Mapping[str, Any],
    *,
    template: str,
    path: str,
    base: type[Schema] | None = None,
) -> type[Schema]:
    """Build the marshmallow schema of a template action's field specs.

    Each spec names its ``fieldtype`` (see the module documentation), its
    ``params``, its ``validations`` (a list of objects with a
    ``validationtype``, or an object keyed by validation type) and its
    ``details``. ``details.keyname`` is the key of the value in the payload
    when it differs from the field name; the loaded value keeps the field
    name. ``details.datapath`` is a dotted path, such as ``customer.email``,
    where the loaded value is placed instead of at the top level.

    Validation types: ``required`` (rejects a missing value, ``null``, ``""``,
    ``false`` and an empty list), ``regex`` (the pattern in ``params.regex``,
    ``regex`` or ``pattern``; search semantics), ``minlength``, ``maxlength``,
    ``min``, ``max`` and ``email``. Each uses its ``invalid_message`` when given.
    Shorthands: a list entry may be a bare type name (``"required"``), and in
    the object form a value may be ``true``, ``false`` (skipped) or the bound
    itself (``{"minlength": 3}``).

    :param fields: The ``fields`` object of the action.
    :param template: The template's name, for error messages.
    :param path: The JSON path of ``fields`` in the template, for error messages.
    :param base: A registered schema the fields are added on top of. It is
        returned as it is when there are no fields. The generated fields replace
        base fields of the same name, and unknown keys are kept unless the base
        schema's ``Meta`` sets ``unknown`` itself.
    :raise TemplateError: When a spec is invalid, naming its path and the fix.
    """
    reader = _Reader(template)
    if not isinstance(fields, Mapping):
        fix = 'Make it an object mapping each field name to its spec, such as {"amount": {"fieldtype": "number"}}.'
        raise reader.fail(path, f"the fields are {type(fields).__name__}, not an object.", fix)
    if not fields and base is not None:
        return base
    declared: dict[str, _Field] = {}
    targets: list[tuple[tuple[str, ...], str]] = []
    places: list[tuple[str, str, tuple[str, ...]]] = []
    for name, spec in fields.items():
        field, target = reader.field(name, spec, f"{path}.{name}")
        if field is None:
            continue
        declared[name] = field
        targets.append((target, f"{path}.{name}"))
        if target != (name,):
            places.append((name, field.data_key or name, target))
    ordered = sorted(targets)
    for (outer, _), (inner, where) in pairwise(ordered):
        if inner[: len(outer)] == outer:
            message = f"its value would go to {'.'.join(inner)}, inside the value at {'.'.join(outer)}."
            raise reader.fail(f"{where}.details.datapath", message, "Give each field a datapath of its own.")
    parent = base or Schema
    meta: dict[str, Any] = {"register": False}
    if not hasattr(parent.Meta, "unknown"):
        meta["unknown"] = INCLUDE
    meta["include"] = declared  # Not class attributes, so no name can clash with the schema's own.
    attrs: dict[str, Any] = {"Meta": type("Meta", (parent.Meta,), meta)}
    shadowing = frozenset(declared) - {field.data_key or name for name, field in declared.items()}
    if shadowing:
        attrs["_stubber_drop_shadowing_keys"] = pre_load(_dropper(shadowing))
    if places:
        attrs["_stubber_place_at_datapaths"] = post_load(_placer(tuple(places)))
    return cast("type[Schema]", type(f"{template}:{path}", (parent,), attrs))
