"""Templates: loading, the Python builder, and refusal of broken ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from marshmallow import Schema, fields

from flask_stubber import StubberWebhooks, Template, TemplateError

from .conftest import ORDER


def order_builder() -> Template:
    t = Template("order", start_state="awaiting_payment", create_webhook=True)
    t.state("awaiting_payment", actions=["payment_received", "cancel", "add_note"])
    t.state("paid", actions=["ship", "add_note"]).state("shipped").state("cancelled")
    t.action("payment_received", to_state="paid", webhook=True,
             fields=ORDER["actions"]["payment_received"]["fields"])
    t.action("add_note", webhook=True, post_data_on_root=True)
    t.action("cancel", to_state="cancelled")
    t.action("ship", to_state="shipped", webhook=True, methods=["POST"])
    return t


def test_load_from_path_dict_and_builder_agree(tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(ORDER))
    compiled = [StubberWebhooks().register_template(s) for s in (path, str(path), copy.deepcopy(ORDER),
                                                                 order_builder())]
    for other in compiled[1:]:
        assert other.name == compiled[0].name == "order"
        assert other.start_state == "awaiting_payment"
        assert other.states == compiled[0].states
        assert {n: (a.targets, a.webhooks.enable, a.webhooks.methods, a.webhooks.post_data_on_root)
                for n, a in other.actions.items()} == {
            n: (a.targets, a.webhooks.enable, a.webhooks.methods, a.webhooks.post_data_on_root)
            for n, a in compiled[0].actions.items()}
        assert other.create_options == {"enable": True}


def test_file_without_name_takes_the_file_stem(tmp_path: Path) -> None:
    source = {k: v for k, v in ORDER.items() if k != "name"}
    path = tmp_path / "exported_flow.json"
    path.write_text(json.dumps(source))
    assert StubberWebhooks().register_template(path).name == "exported_flow"


def test_unknown_keys_are_kept_and_ignored() -> None:
    source = copy.deepcopy(ORDER)
    source["structure"] = {"nodes": [1, 2]}
    source["annotations"] = [{"x": 1}]
    source["states"]["paid"]["position"] = {"x": 10}
    compiled = StubberWebhooks().register_template(source)
    assert compiled.source["structure"] == {"nodes": [1, 2]}


@pytest.mark.parametrize(("to_state", "targets"), [({}, ()), ("paid", ("paid",)), ({"paid": {}}, ("paid",)),
                                                  (None, ())])
def test_to_state_forms(to_state: Any, targets: tuple[str, ...]) -> None:
    source = copy.deepcopy(ORDER)
    source["actions"]["cancel"]["to_state"] = to_state
    assert StubberWebhooks().register_template(source).actions["cancel"].targets == targets


def test_registering_a_name_again_replaces_it() -> None:
    ext = StubberWebhooks()
    ext.register_template(ORDER)
    changed = copy.deepcopy(ORDER)
    changed["details"]["busy_start_state"] = "paid"
    ext.register_template(changed)
    assert ext._templates["order"].start_state == "paid"


def broken(edit: Any) -> dict[str, Any]:
    source = copy.deepcopy(ORDER)
    edit(source)
    return source


BROKEN = [
    pytest.param(lambda s: s["states"]["paid"]["actions"].append("refund"), "states.paid.actions[2]",
                 "'refund' is listed but not defined", id="undefined-action"),
    pytest.param(lambda s: s["actions"]["cancel"].update(to_state={"void": {}}), "actions.cancel.to_state",
                 "'void' is not defined", id="missing-target"),
    pytest.param(lambda s: s["details"].update(busy_start_state="nowhere"), "details.busy_start_state",
                 "'nowhere' is not a defined state", id="missing-start"),
    pytest.param(lambda s: s["details"].pop("busy_start_state"), "details.busy_start_state", "None",
                 id="no-start"),
    pytest.param(lambda s: s["actions"]["payment_received"]["fields"]["amount"].update(fieldtype="money"),
                 "actions.payment_received.fields.amount", "money", id="unknown-fieldtype"),
    pytest.param(lambda s: s["actions"]["payment_received"]["fields"]["amount"].update(
        validations=[{"validationtype": "regex", "params": {"regex": "("}}]),
                 "actions.payment_received.fields.amount", "", id="bad-regex"),
    pytest.param(lambda s: s["actions"]["cancel"].update(tasks={"t": {"tasktype": "send_fax"}}),
                 "actions.cancel.tasks.t.tasktype", "'send_fax' is not registered", id="unregistered-tasktype"),
    pytest.param(lambda s: s["actions"]["cancel"].update(action_meta={"schema": "Nope"}),
                 "actions.cancel.action_meta.schema", "'Nope' is registered", id="unregistered-schema"),
    pytest.param(lambda s: s["actions"]["ship"]["action_meta"]["webhooks"].update(methods=["DELETE"]),
                 "actions.ship.action_meta.webhooks.methods", "'DELETE'", id="bad-method"),
    pytest.param(lambda s: s["states"].update(paid=["ship"]), "states.paid", "expected a JSON object",
                 id="state-not-object"),
    pytest.param(lambda s: s.update(states={}), "states", "no states", id="no-states"),
    pytest.param(lambda s: s.update(name=""), "name", "no usable 'name'", id="no-name"),
]


@pytest.mark.parametrize(("edit", "path", "message"), BROKEN)
def test_broken_templates_are_refused_with_path_and_fix(edit: Any, path: str, message: str) -> None:
    ext = StubberWebhooks()
    with pytest.raises(TemplateError) as info:
        ext.register_template(broken(edit))
    error = info.value
    assert error.path is not None and error.path.startswith(path)
    assert message in str(error)
    assert error.fix
    if path != "name":
        assert error.template == "order"
        assert str(error).startswith("Template 'order' at ")
    assert ext._templates == {}


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot be read"):
        StubberWebhooks().register_template(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(TemplateError, match="not valid JSON"):
        StubberWebhooks().register_template(bad)
    bad.write_text("[]")
    with pytest.raises(TemplateError, match="JSON object"):
        StubberWebhooks().register_template(bad)


class PaymentSchema(Schema):
    reference = fields.String(required=True)


def test_registered_schema_alone_and_with_fields() -> None:
    ext = StubberWebhooks()
    ext.register_schema("PaymentSchema", PaymentSchema)
    source = copy.deepcopy(ORDER)
    source["actions"]["cancel"]["action_meta"] = {"schema": "PaymentSchema"}
    source["actions"]["payment_received"]["action_meta"]["schema"] = "PaymentSchema"
    compiled = ext.register_template(source)
    assert compiled.actions["cancel"].load({"reference": "r1"}) == {"reference": "r1"}
    both = compiled.actions["payment_received"]
    assert both.load({"reference": "r1", "amount": "3"})["amount"] == 3
    from marshmallow import ValidationError

    with pytest.raises(ValidationError) as info:
        both.load({"amount": 3})
    assert "reference" in info.value.messages


def test_schema_is_built_once_at_registration() -> None:
    compiled = StubberWebhooks().register_template(ORDER)
    action = compiled.actions["payment_received"]
    assert action.schema is compiled.actions["payment_received"].schema
    assert compiled.actions["cancel"].schema is None
