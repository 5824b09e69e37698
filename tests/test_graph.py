"""State diagrams: Mermaid and DOT text, SVG and PNG through Graphviz."""

from __future__ import annotations

import copy
import shutil

import pytest

from flask_stubber import StubberWebhooks, Template
from flask_stubber.graph import GraphvizError, render, to_dot, to_mermaid, transitions
from flask_stubber.templates import CompiledTemplate

from .conftest import ORDER

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (Debian package graphviz; .ci/run installs it)"
)


def compiled(source: object) -> CompiledTemplate:
    return StubberWebhooks().register_template(copy.deepcopy(source))  # type: ignore[arg-type]


@pytest.fixture
def order() -> CompiledTemplate:
    return compiled(ORDER)


@pytest.fixture
def awkward() -> CompiledTemplate:
    """State names that are no Mermaid identifiers and need quoting in DOT; several targets."""
    t = Template("review flow", start_state="needs review")
    t.state("needs review", actions=["decide", "comment"]).state("end").state('say "hi"')
    t.action("decide", to_state=["end", 'say "hi"'], webhook=True)
    t.action("comment")
    return compiled(t)


def test_mermaid_of_the_order_template(order: CompiledTemplate) -> None:
    assert to_mermaid(order) == """\
stateDiagram-v2
    awaiting_payment
    paid
    shipped
    cancelled
    [*] --> awaiting_payment
    awaiting_payment --> paid: payment_received (webhook)
    awaiting_payment --> cancelled: cancel
    awaiting_payment --> awaiting_payment: add_note (webhook)
    paid --> shipped: ship (webhook)
    paid --> paid: add_note (webhook)
    shipped --> [*]
    cancelled --> [*]
"""


def test_dot_of_the_order_template(order: CompiledTemplate) -> None:
    lines = to_dot(order).splitlines()
    assert lines[0] == 'digraph "order" {' and lines[-1] == "}"
    assert '    "__start__" -> "awaiting_payment";' in lines
    assert '    "shipped" [peripheries=2];' in lines
    assert '    "paid";' in lines
    assert '    "awaiting_payment" -> "cancelled" [label="cancel"];' in lines
    webhook = ', style=bold, color="#1f6feb", fontcolor="#1f6feb"];'
    assert f'    "paid" -> "paid" [label="add_note (webhook)"{webhook}' in lines
    assert f'    "awaiting_payment" -> "paid" [label="payment_received (webhook)"{webhook}' in lines
    assert sum("->" in line for line in lines) == 1 + len(transitions(order)) == 6


def test_awkward_names_are_aliased_and_quoted(awkward: CompiledTemplate) -> None:
    mermaid = to_mermaid(awkward)
    assert '    state "needs review" as state_0' in mermaid
    assert '    state "end" as state_1' in mermaid  # A Mermaid keyword.
    assert '    state "say #quot;hi#quot;" as state_2' in mermaid
    assert "    [*] --> state_0" in mermaid
    assert "    state_0 --> state_1: decide (webhook)" in mermaid
    assert "    state_0 --> state_2: decide (webhook)" in mermaid
    assert "    state_0 --> state_0: comment" in mermaid
    dot = to_dot(awkward)
    assert 'digraph "review flow" {' in dot
    assert '"needs review" -> "say \\"hi\\"" [label="decide (webhook)"' in dot


def test_a_state_named_like_the_start_node_gets_another_start(order: CompiledTemplate) -> None:
    t = Template("t", start_state="__start__")
    t.state("__start__", actions=["go"]).state("done")
    t.action("go", to_state="done")
    assert '"___start___" -> "__start__";' in to_dot(compiled(t))


@needs_dot
@pytest.mark.parametrize(("format", "magic"), [("svg", b"<svg"), ("png", b"\x89PNG\r\n\x1a\n")])
def test_graphviz_draws_svg_and_png(awkward: CompiledTemplate, format: str, magic: bytes) -> None:
    drawing = render(awkward, format)
    assert magic in drawing[:400]
    if format == "svg":
        assert b"decide (webhook)" in drawing
        assert b"say &quot;hi&quot;" in drawing


def test_missing_graphviz_is_a_clear_error(order: CompiledTemplate) -> None:
    with pytest.raises(GraphvizError, match="install Graphviz"):
        render(order, "svg", dot="no-such-graphviz-binary")


def test_text_formats_need_no_graphviz(order: CompiledTemplate) -> None:
    assert render(order, "mermaid", dot="no-such-graphviz-binary") == to_mermaid(order).encode()
    assert render(order, "dot", dot="no-such-graphviz-binary") == to_dot(order).encode()


def test_unknown_format(order: CompiledTemplate) -> None:
    with pytest.raises(ValueError, match="mermaid, dot, svg, png"):
        render(order, "gif")
