"""Tests of :mod:`flask_stubber.fields`: Stubber field specs to marshmallow schemas."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from marshmallow import EXCLUDE, Schema, ValidationError, class_registry, post_load
from marshmallow import fields as ma
from marshmallow.exceptions import RegistryError

from flask_stubber.errors import TemplateError
from flask_stubber.fields import build_schema

PATH = "actions.pay.fields"
MISSING = object()
REQUIRED = [{"validationtype": "required", "invalid_message": "Please fill this in."}]
SUB = {"sku": {"fieldtype": "text"}, "qty": {"fieldtype": "integer"}}
OPTIONS = {"options": [{"label": "Rand", "value": "ZAR"}, {"label": "Dollar", "value": "USD"}]}


def schema(fields: dict[str, Any], base: type[Schema] | None = None) -> Schema:
    return build_schema(fields, template="order", path=PATH, base=base)()


def load(fields: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = schema(fields).load(payload)
    json.dumps(result)  # Every result must fit a JSON column.
    return result


def load_one(spec: dict[str, Any], value: Any) -> dict[str, Any]:
    return load({"f": spec}, {} if value is MISSING else {"f": value})


def errors(fields: dict[str, Any], payload: dict[str, Any]) -> Any:
    with pytest.raises(ValidationError) as info:
        schema(fields).load(payload)
    return info.value.messages


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ({"fieldtype": "text"}, "abc", "abc"),
        ({"fieldtype": "text"}, 12, "12"),
        ({"fieldtype": "text"}, "", ""),
        ({"fieldtype": "number"}, "12.5", 12.5),
        ({"fieldtype": "number"}, " 12 ", 12),
        ({"fieldtype": "number"}, 12.0, 12),
        ({"fieldtype": "number"}, "1e3", 1000),
        ({"fieldtype": "number"}, -3, -3),
        ({"fieldtype": "number"}, 0, 0),
        ({"fieldtype": "integer"}, "7", 7),
        ({"fieldtype": "integer"}, 7.0, 7),
        ({"fieldtype": "email"}, "a@example.com", "a@example.com"),
        ({"fieldtype": "select", "params": OPTIONS}, "USD", "USD"),
        ({"fieldtype": "select", "params": {"options": [1, 2]}}, "2", 2),
        ({"fieldtype": "select", "params": {"options": ["1", "2"]}}, 2, "2"),
        ({"fieldtype": "select", "params": {"options": [True, False]}}, "false", False),
        ({"fieldtype": "select"}, "anything", "anything"),
        ({"fieldtype": "select", "params": {**OPTIONS, "multiple": True}}, ["ZAR", "USD"], ["ZAR", "USD"]),
        ({"fieldtype": "select", "params": {**OPTIONS, "multiple": True}}, "ZAR", ["ZAR"]),
        ({"fieldtype": "select", "params": {**OPTIONS, "multiple": True}}, [], []),
        ({"fieldtype": "checkbox"}, True, True),
        ({"fieldtype": "checkbox"}, False, False),
        *(({"fieldtype": "checkbox"}, raw, True) for raw in ("on", "true", "1", "yes", 1)),
        *(({"fieldtype": "checkbox"}, raw, False) for raw in ("off", "false", "0", "no", 0)),
        ({"fieldtype": "date"}, "2024-02-29", "2024-02-29"),
        ({"fieldtype": "datetime"}, "2024-01-02T10:30", "2024-01-02T10:30:00"),
        ({"fieldtype": "datetime"}, "2024-01-02T10:30:00Z", "2024-01-02T10:30:00+00:00"),
        ({"fieldtype": "hidden"}, {"any": ["json"]}, {"any": ["json"]}),
        ({"fieldtype": "hidden"}, "", ""),
        (
            {"fieldtype": "arraybuilder", "params": {"fields": SUB}},
            [{"sku": "A", "qty": "2"}],
            [{"sku": "A", "qty": 2}],
        ),
        ({"fieldtype": "arraybuilder", "fields": SUB}, [{"qty": 1, "note": "kept"}], [{"qty": 1, "note": "kept"}]),
        ({"fieldtype": "arraybuilder"}, [{"free": "form"}], [{"free": "form"}]),
        ({"fieldtype": "objectbuilder", "params": {"fields": SUB}}, {"qty": "3", "x": 1}, {"qty": 3, "x": 1}),
        ({"fieldtype": "objectbuilder", "fields": SUB}, {"sku": 5}, {"sku": "5"}),
    ],
)
def test_field_types_load_and_coerce(spec: dict[str, Any], value: Any, expected: Any) -> None:
    result = load_one(spec, value)
    assert result == {"f": expected}
    assert type(result["f"]) is type(expected)


@pytest.mark.parametrize(
    ("spec", "value", "message"),
    [
        ({"fieldtype": "number"}, "abc", "Not a valid number."),
        ({"fieldtype": "number"}, True, "Not a valid number."),
        ({"fieldtype": "number"}, "nan", "Special numeric values (nan or infinity) are not permitted."),
        ({"fieldtype": "integer"}, "1.5", "Not a valid integer."),
        ({"fieldtype": "text"}, ["a"], "Not a valid string."),
        ({"fieldtype": "email"}, "nope", "Not a valid email address."),
        ({"fieldtype": "checkbox"}, "maybe", "Not a valid boolean."),
        ({"fieldtype": "date"}, "2024-13-01", "Not a valid date."),
        ({"fieldtype": "datetime"}, "yesterday", "Not a valid datetime."),
        ({"fieldtype": "select", "params": OPTIONS}, "EUR", "Must be one of: ZAR, USD."),
        ({"fieldtype": "select"}, {"a": 1}, "Not a valid choice."),
        ({"fieldtype": "arraybuilder", "fields": SUB}, {"sku": "A"}, "Not a valid list."),
        ({"fieldtype": "integer"}, "x", "Not a valid integer."),
    ],
)
def test_invalid_values_are_rejected(spec: dict[str, Any], value: Any, message: str) -> None:
    assert errors({"f": spec}, {"f": value}) == {"f": [message]}


def test_objectbuilder_rejects_a_non_object() -> None:
    fields = {"f": {"fieldtype": "objectbuilder", "fields": SUB}}
    assert errors(fields, {"f": ["A"]}) == {"f": {"_schema": ["Invalid input type."]}}


def test_blank_items_of_a_multiple_select_are_checked_not_dropped() -> None:
    fields = {
        "tags": {"fieldtype": "multiselect", "params": {"options": ["a", "b"]}},
        "free": {"fieldtype": "multiselect"},
    }
    assert load(fields, {"free": ["", "x"]}) == {"free": ["", "x"]}
    assert errors(fields, {"tags": ["", "a"]}) == {"tags": {0: ["Must be one of: a, b."]}}


def test_nested_errors_keep_marshmallow_shape() -> None:
    fields = {
        "items": {"fieldtype": "arraybuilder", "fields": SUB},
        "tags": {"fieldtype": "multiselect", "params": {"options": ["a", "b"]}},
        "addr": {"fieldtype": "objectbuilder", "fields": {"zip": {"fieldtype": "number"}}},
    }
    payload = {"items": [{"qty": 1}, {"qty": "x"}], "tags": ["a", "c"], "addr": {"zip": "?"}}
    assert errors(fields, payload) == {
        "items": {1: {"qty": ["Not a valid integer."]}},
        "tags": {1: ["Must be one of: a, b."]},
        "addr": {"zip": ["Not a valid number."]},
    }


OPTIONAL_TYPES = [
    {"fieldtype": "text"},
    {"fieldtype": "number"},
    {"fieldtype": "integer"},
    {"fieldtype": "email"},
    {"fieldtype": "select", "params": OPTIONS},
    {"fieldtype": "select", "params": {**OPTIONS, "multiple": True}},
    {"fieldtype": "checkbox"},
    {"fieldtype": "date"},
    {"fieldtype": "datetime"},
    {"fieldtype": "hidden"},
    {"fieldtype": "arraybuilder", "fields": SUB},
    {"fieldtype": "objectbuilder", "fields": SUB},
]


@pytest.mark.parametrize("spec", OPTIONAL_TYPES, ids=lambda spec: str(spec["fieldtype"]))
def test_optional_fields_accept_missing_and_null(spec: dict[str, Any]) -> None:
    assert load_one(spec, MISSING) == {}
    assert load_one(spec, None) == {"f": None}


@pytest.mark.parametrize("spec", OPTIONAL_TYPES, ids=lambda spec: str(spec["fieldtype"]))
def test_empty_string_is_not_given_except_for_text_and_hidden(spec: dict[str, Any]) -> None:
    expected = {"f": ""} if spec["fieldtype"] in ("text", "hidden") else {}
    assert load_one(spec, "") == expected


@pytest.mark.parametrize("spec", OPTIONAL_TYPES, ids=lambda spec: str(spec["fieldtype"]))
@pytest.mark.parametrize("value", [MISSING, None, "", False, []], ids=["missing", "null", "blank", "false", "empty"])
def test_required_rejects_missing_null_blank_false_and_empty(spec: dict[str, Any], value: Any) -> None:
    fields = {"f": {**spec, "validations": REQUIRED}}
    assert errors(fields, {} if value is MISSING else {"f": value}) == {"f": ["Please fill this in."]}


@pytest.mark.parametrize("value", ["off", "false", "0", "no"])
def test_required_checkbox_must_be_ticked(value: str) -> None:
    fields = {"agree": {"fieldtype": "checkbox", "validations": {"required": {"invalid_message": "Tick the box."}}}}
    assert errors(fields, {"agree": value}) == {"agree": ["Tick the box."]}
    assert load(fields, {"agree": "on"}) == {"agree": True}


@pytest.mark.parametrize(
    "validations",
    [
        [{"validationtype": "required"}],
        {"required": {}},
        {"required": True},
        [{"validationtype": "Required"}],
        ["required"],
    ],
)
def test_required_default_message_and_spellings(validations: Any) -> None:
    fields = {"f": {"fieldtype": "number", "validations": validations}}
    assert errors(fields, {}) == {"f": ["This field is required."]}
    assert load(fields, {"f": "0"}) == {"f": 0}


def test_required_false_in_object_form_is_ignored() -> None:
    assert load({"f": {"fieldtype": "text", "validations": {"required": False}}}, {}) == {}


@pytest.mark.parametrize(
    "rule",
    [
        {"validationtype": "regex", "params": {"regex": "[0-9]{3}"}},
        {"validationtype": "regex", "regex": "[0-9]{3}"},
        {"validationtype": "regex", "pattern": "[0-9]{3}"},
        {"validationtype": "regex", "params": {"pattern": "[0-9]{3}"}},
        {"validationtype": "pattern", "params": {"regex": "[0-9]{3}"}},
    ],
)
def test_regex_uses_search_semantics(rule: dict[str, Any]) -> None:
    fields = {"code": {"fieldtype": "text", "validations": [{**rule, "invalid_message": "Need {three} digits."}]}}
    assert load(fields, {"code": "abc123def"}) == {"code": "abc123def"}
    assert errors(fields, {"code": "ab12"}) == {"code": ["Need {three} digits."]}


def test_regex_anchors_and_object_form() -> None:
    fields = {"code": {"fieldtype": "text", "validations": {"regex": {"params": {"regex": "^[A-Z]+$"}}}}}
    assert load(fields, {"code": "ABC"}) == {"code": "ABC"}
    assert errors(fields, {"code": "xABC"}) == {"code": ["String does not match expected pattern."]}


def test_regex_applies_to_numbers_as_text_and_skips_blank_text() -> None:
    fields = {
        "pin": {"fieldtype": "number", "validations": [{"validationtype": "regex", "params": {"regex": "^\\d{4}$"}}]},
        "ref": {"fieldtype": "text", "validations": [{"validationtype": "regex", "params": {"regex": "^R"}}]},
    }
    assert load(fields, {"pin": "1234", "ref": ""}) == {"pin": 1234, "ref": ""}
    assert errors(fields, {"pin": "12"}) == {"pin": ["String does not match expected pattern."]}


@pytest.mark.parametrize(
    ("spec", "good", "bad", "default"),
    [
        ({"fieldtype": "text", "v": "minlength", "n": 3}, "abc", "ab", "Shorter than minimum length 3."),
        ({"fieldtype": "text", "v": "min_length", "n": 3}, "abc", "ab", "Shorter than minimum length 3."),
        ({"fieldtype": "text", "v": "maxlength", "n": 2}, "ab", "abc", "Longer than maximum length 2."),
        ({"fieldtype": "number", "v": "min", "n": 10}, "10", "9.5", "Must be greater than or equal to 10."),
        ({"fieldtype": "number", "v": "max", "n": "10"}, 10, 11, "Must be less than or equal to 10."),
        ({"fieldtype": "text", "v": "email", "n": None}, "a@b.co", "a@", "Not a valid email address."),
        ({"fieldtype": "multiselect", "v": "minlength", "n": 2}, ["a", "b"], "a", "Shorter than minimum length 2."),
        ({"fieldtype": "arraybuilder", "v": "maxlength", "n": 1}, [{}], [{}, {}], "Longer than maximum length 1."),
    ],
)
def test_validations_with_default_and_custom_messages(spec: dict[str, Any], good: Any, bad: Any, default: str) -> None:
    rule = {"validationtype": spec["v"], "params": {} if spec["n"] is None else {spec["v"]: spec["n"]}}
    base = {"fieldtype": spec["fieldtype"], "params": {"options": ["a", "b"]}}
    assert load({"f": {**base, "validations": [rule]}}, {"f": good}) == load({"f": base}, {"f": good})
    assert errors({"f": {**base, "validations": [rule]}}, {"f": bad}) == {"f": [default]}
    custom = {"f": {**base, "validations": {spec["v"]: {**rule, "invalid_message": "No."}}}}
    assert errors(custom, {"f": bad}) == {"f": ["No."]}


RANGE = "Must be greater than or equal to 0 and less than or equal to 100."


@pytest.mark.parametrize(
    ("spec", "good", "bad", "message"),
    [
        ({"fieldtype": "number", "params": {"min": 0, "max": "100"}}, "100", "-1", RANGE),
        ({"fieldtype": "text", "params": {"minlength": 2}}, "ab", "a", "Shorter than minimum length 2."),
        (
            {"fieldtype": "text", "params": {"min_length": 2, "max_length": 3}},
            "abc",
            "abcd",
            "Length must be between 2 and 3.",
        ),
        ({"fieldtype": "textarea", "params": {"maxlength": 3}}, "abc", "abcd", "Longer than maximum length 3."),
        ({"fieldtype": "email", "params": {"maxlength": 7}}, "a@b.com", "ab@c.com", "Longer than maximum length 7."),
    ],
)
def test_field_params(spec: dict[str, Any], good: str, bad: str, message: str) -> None:
    assert "f" in load({"f": spec}, {"f": good})
    assert errors({"f": spec}, {"f": bad}) == {"f": [message]}


def test_length_params_let_a_blank_optional_text_through() -> None:
    assert load({"f": {"fieldtype": "text", "params": {"minlength": 3}}}, {"f": ""}) == {"f": ""}


@pytest.mark.parametrize(
    ("alias", "value", "expected"),
    [
        *((alias, "hi", "hi") for alias in ("textarea", "string", "password", "tel", "TEXT")),
        *((alias, "2.5", 2.5) for alias in ("float", "decimal", "currency")),
        ("int", "4", 4),
        *((alias, "on", True) for alias in ("boolean", "bool", "toggle", "switch")),
        *((alias, "ZAR", "ZAR") for alias in ("radio", "dropdown")),
        ("multiselect", "ZAR", ["ZAR"]),
        ("datetime-local", "2024-05-06T07:08", "2024-05-06T07:08:00"),
        ("array", [{"a": 1}], [{"a": 1}]),
        ("object", {"a": 1}, {"a": 1}),
    ],
)
def test_fieldtype_aliases(alias: str, value: Any, expected: Any) -> None:
    assert load_one({"fieldtype": alias, "params": OPTIONS}, value) == {"f": expected}


@pytest.mark.parametrize("alias", ["section", "heading", "paragraph", "html"])
def test_section_is_layout_only(alias: str) -> None:
    built = schema({"intro": {"fieldtype": alias, "params": {"label": "Hello"}}, "name": {"fieldtype": "text"}})
    assert set(built.fields) == {"name"}
    assert built.load({"name": "x", "intro": "kept as unknown"}) == {"name": "x", "intro": "kept as unknown"}


def test_unknown_keys_are_kept() -> None:
    payload = {"amount": "5", "extra": {"deep": [1, "two"]}, "flag": None}
    assert load({"amount": {"fieldtype": "number"}}, payload) == {
        "amount": 5,
        "extra": {"deep": [1, "two"]},
        "flag": None,
    }


def test_keyname_reads_another_payload_key() -> None:
    fields = {"email": {"fieldtype": "email", "details": {"keyname": "e-mail"}, "validations": REQUIRED}}
    assert load(fields, {"e-mail": "a@b.co"}) == {"email": "a@b.co"}
    assert errors(fields, {"email": "a@b.co"}) == {"e-mail": ["Please fill this in."]}
    assert errors(fields, {"e-mail": "nope"}) == {"e-mail": ["Not a valid email address."]}


def test_keyname_value_cannot_be_overwritten_by_an_unvalidated_key() -> None:
    fields = {"amount": {"fieldtype": "number", "details": {"keyname": "amt"}}}
    assert load(fields, {"amt": "5", "amount": "not validated"}) == {"amount": 5}


def test_empty_details_mean_defaults() -> None:
    fields = {"amount": {"fieldtype": "number", "details": {"keyname": "", "datapath": None}}}
    assert load(fields, {"amount": "5"}) == {"amount": 5}


def test_datapath_places_values_in_nested_objects() -> None:
    fields = {
        "email": {"fieldtype": "email", "details": {"keyname": "e-mail", "datapath": "customer.contact.email"}},
        "name": {"fieldtype": "text", "details": {"datapath": "customer.name"}},
        "total": {"fieldtype": "number", "details": {"datapath": "sum"}},
        "plain": {"fieldtype": "text"},
    }
    payload = {"e-mail": "a@b.co", "name": "Ann", "total": "3", "plain": "p", "customer": {"id": 7}}
    original = copy.deepcopy(payload)
    assert load(fields, payload) == {
        "plain": "p",
        "customer": {"id": 7, "name": "Ann", "contact": {"email": "a@b.co"}},
        "sum": 3,
    }
    assert payload == original
    assert load(fields, {"name": "Ann"}) == {"customer": {"name": "Ann"}}
    assert load(fields, {}) == {}


def test_datapath_into_a_non_object_is_a_validation_error() -> None:
    fields = {"name": {"fieldtype": "text", "details": {"keyname": "n", "datapath": "customer.name"}}}
    assert errors(fields, {"n": "Ann", "customer": "oops"}) == {
        "n": ["Cannot place this value at customer.name: customer is not an object."]
    }


def test_datapath_inside_builders() -> None:
    sub = {"city": {"fieldtype": "text", "details": {"datapath": "address.city"}}}
    fields = {"people": {"fieldtype": "arraybuilder", "fields": sub}}
    assert load(fields, {"people": [{"city": "Cape Town"}]}) == {"people": [{"address": {"city": "Cape Town"}}]}


def test_results_are_json_serializable() -> None:
    fields = {
        "when": {"fieldtype": "date"},
        "at": {"fieldtype": "datetime"},
        "amount": {"fieldtype": "number"},
        "items": {"fieldtype": "arraybuilder", "fields": {"on": {"fieldtype": "date"}}},
    }
    payload = {
        "when": "2024-01-02",
        "at": "2024-01-02T03:04:05+02:00",
        "amount": "1.25",
        "items": [{"on": "2024-03-04"}],
    }
    result = load(fields, payload)
    assert json.loads(json.dumps(result)) == {
        "when": "2024-01-02",
        "at": "2024-01-02T03:04:05+02:00",
        "amount": 1.25,
        "items": [{"on": "2024-03-04"}],
    }


class PaymentSchema(Schema):
    reference = ma.String(required=True)
    amount = ma.String()

    @post_load
    def tag(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {**data, "tagged": True}


def test_base_schema_gets_generated_fields_on_top() -> None:
    built = schema({"amount": {"fieldtype": "number"}, "note": {"fieldtype": "text"}}, base=PaymentSchema)
    assert isinstance(built, PaymentSchema)
    assert built.load({"reference": "r1", "amount": "5", "x": 1}) == {
        "reference": "r1",
        "amount": 5,
        "x": 1,
        "tagged": True,
    }
    with pytest.raises(ValidationError) as info:
        built.load({"amount": "5"})
    assert info.value.messages == {"reference": ["Missing data for required field."]}
    assert isinstance(PaymentSchema().fields["amount"], ma.String)


def test_base_schema_without_fields_is_returned_unchanged() -> None:
    assert build_schema({}, template="order", path=PATH, base=PaymentSchema) is PaymentSchema


def test_base_schema_unknown_option_is_respected() -> None:
    class Strict(Schema):
        class Meta:
            unknown = EXCLUDE

    built = schema({"amount": {"fieldtype": "number"}}, base=Strict)
    assert built.load({"amount": 1, "extra": 2}) == {"amount": 1}


def test_generated_schemas_are_built_once_and_not_registered() -> None:
    cls = build_schema({"a": {"fieldtype": "text"}}, template="order", path=PATH)
    assert cls.opts.unknown == "include"
    with pytest.raises(RegistryError):
        class_registry.get_class(cls.__name__)
    instance = cls()
    assert instance.load({"a": "x"}) == instance.load({"a": "x"}) == {"a": "x"}


def test_empty_fields_without_base_accept_any_object() -> None:
    assert load({}, {"anything": [1]}) == {"anything": [1]}


@pytest.mark.parametrize("name", ["load", "fields", "Meta", "opts", "validate", "_stubber_place_at_datapaths"])
def test_field_names_that_clash_with_schema_attributes(name: str) -> None:
    fields = {name: {"fieldtype": "number", "details": {"datapath": f"x.{name}"}}, "y": {"fieldtype": "text"}}
    assert load(fields, {name: "5", "y": "z"}) == {"x": {name: 5}, "y": "z"}
    assert errors(fields, {name: "five"}) == {name: ["Not a valid number."]}


@pytest.mark.parametrize(
    ("validations", "good", "bad"),
    [
        ({"minlength": 3, "maxlength": 4}, "abc", "ab"),
        ({"min_length": {"length": 3}}, "abcd", "a"),
        ({"regex": "^a"}, "abc", "cab"),
        ({"pattern": {"value": "^a", "pattern": "^a"}}, "abc", "cab"),
        (["email"], "a@b.co", "a@"),
    ],
)
def test_validation_shorthands(validations: Any, good: str, bad: str) -> None:
    fields = {"f": {"fieldtype": "text", "validations": validations}}
    assert load(fields, {"f": good}) == {"f": good}
    assert "f" in errors(fields, {"f": bad})


def one(fieldtype: str = "text", **spec: Any) -> dict[str, Any]:
    """Return a fields object holding one field ``a``."""
    return {"a": {"fieldtype": fieldtype, **spec}}


def rule(fieldtype: str = "text", **entry: Any) -> dict[str, Any]:
    """Return a fields object holding one field ``a`` with one validation."""
    return one(fieldtype, validations=[entry])


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        (["amount"], "", ["not an object"]),
        ({"a": "text"}, ".a", ["not an object"]),
        ({"a.b": {"fieldtype": "text"}}, ".a.b", ["contains a dot", "datapath"]),
        (one("colour"), ".a.fieldtype", ["'colour'", "text", "number", "arraybuilder", "textarea"]),
        ({"a": {"params": {}}}, ".a.fieldtype", ["None is not a known fieldtype"]),
        (one(params=[]), ".a.params", ["not an object"]),
        (one(validations="required"), ".a.validations", ["not an object"]),
        (one(validations=[3]), ".a.validations[0]", ["not an object"]),
        (rule(validationtype="luhn"), ".a.validations[0].validationtype", ["'luhn'", "required, regex"]),
        (one(validations={"luhn": {}}), ".a.validations.luhn.validationtype", ["'luhn'"]),
        (rule(validationtype="required", invalid_message=3), ".a.validations[0].invalid_message", ["not a string"]),
        (rule(validationtype="regex", params={"regex": "([a-z"}), ".a.validations[0].params.regex", ["'([a-z'"]),
        (one(validations={"regex": {"pattern": "*"}}), ".a.validations.regex.pattern", ["not a valid regular"]),
        (rule(validationtype="regex"), ".a.validations[0].params.regex", ["no pattern"]),
        (rule(validationtype="min", min=1), ".a.validations[0].validationtype", ["min does not apply to a text"]),
        (rule("checkbox", validationtype="regex", regex="x"), ".a.validations[0].validationtype", ["does not apply"]),
        (rule("number", validationtype="max"), ".a.validations[0].params.max", ["has no value"]),
        (rule("number", validationtype="max", value="lots"), ".a.validations[0].value", ["'lots' is not a number"]),
        (one("number", params={"min": "zero"}), ".a.params.min", ["'zero' is not a number"]),
        (one("number", params={"max": True}), ".a.params.max", ["True is not a number"]),
        (one(params={"minlength": 1.5}), ".a.params.minlength", ["whole number"]),
        (one(params={"max_length": -1}), ".a.params.max_length", ["whole number"]),
        (one("select", params={"options": "ZAR,USD"}), ".a.params.options", ["not a list"]),
        (one("select", params={"options": ["ZAR", {"label": "Dollar"}]}), ".a.params.options[1]", ["no plain value"]),
        (one("select", params={"options": [["ZAR"]]}), ".a.params.options[0]", ["no plain value"]),
        (one("select", params={"multiple": "yes"}), ".a.params.multiple", ["true or false"]),
        (one(details="x"), ".a.details", ["not an object"]),
        (one(details={"keyname": 5}), ".a.details.keyname", ["not a string"]),
        (one(details={"datapath": "a..b"}), ".a.details.datapath", ["'a..b' is not a dotted path"]),
        (one("arraybuilder", params={"fields": {"s": {"fieldtype": "?"}}}), ".a.params.fields.s.fieldtype", ["'?'"]),
        (one("objectbuilder", fields=["s"]), ".a.fields", ["not an object"]),
        (
            {"c": {"fieldtype": "text"}, "e": {"fieldtype": "text", "details": {"datapath": "c.e"}}},
            ".e.details.datapath",
            ["c.e", "inside the value at c"],
        ),
        (
            {
                "a": {"fieldtype": "text", "details": {"datapath": "x"}},
                "b": {"fieldtype": "hidden", "details": {"datapath": "x"}},
            },
            ".b.details.datapath",
            ["would go to x"],
        ),
    ],
)
def test_template_errors_name_template_path_and_fix(fields: Any, path: str, words: list[str]) -> None:
    with pytest.raises(TemplateError) as info:
        build_schema(fields, template="order", path=PATH)
    error = info.value
    assert (error.template, error.path) == ("order", PATH + path)
    assert error.fix and error.fix[0].isupper() and error.fix.endswith(".")
    assert f"Template 'order' at {PATH}{path}: " in str(error)
    assert str(error).endswith(error.fix)
    for word in words:
        assert word in str(error)
    assert error.code == "template_error"
