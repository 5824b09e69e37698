"""State diagrams of templates: Mermaid, Graphviz DOT, and SVG or PNG through Graphviz.

Each action available in a state is drawn as a transition to each of its target
states; an action that keeps the state is a loop back to it. Transitions of
webhook-enabled actions are marked ``(webhook)`` (and drawn bold in DOT), the
start state gets an arrow from the initial pseudo-state, and states without
actions are drawn as final states.

::

    from flask_stubber.graph import to_mermaid

    print(to_mermaid(stubber.register_template("templates/order.json")))

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from .errors import StubberError
from .templates import CompiledTemplate

__all__ = ["FORMATS", "GraphvizError", "Transition", "render", "to_dot", "to_mermaid", "transitions"]

#: The formats :func:`render` produces; ``svg`` and ``png`` need Graphviz's ``dot``.
FORMATS = ("mermaid", "dot", "svg", "png")
WEBHOOK_MARK = "(webhook)"

_MERMAID_ID = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
_MERMAID_KEYWORDS = frozenset({"end", "state", "note", "direction", "class", "classDef", "click", "style"})
_WEBHOOK_COLOR = "#1f6feb"


class GraphvizError(StubberError):
    """Graphviz's ``dot`` is not installed, or it failed to render a diagram."""

    code = "graphviz_error"
    title = "Graphviz failed"


@dataclass(frozen=True)
class Transition:
    """One arrow of a state diagram: ``action`` moves a stub from ``source`` to ``target``."""

    source: str
    target: str
    action: str
    webhook: bool

    @property
    def label(self) -> str:
        """The action's name, marked when a webhook can run it."""
        return f"{self.action} {WEBHOOK_MARK}" if self.webhook else self.action


def transitions(template: CompiledTemplate) -> list[Transition]:
    """Return every transition of ``template``, in the order of its states and their actions."""
    result = []
    for state, actions in template.states.items():
        for name in actions:
            action = template.actions[name]
            for target in action.targets or (state,):
                result.append(Transition(state, target, name, action.webhooks.enable))
    return result


def _final_states(template: CompiledTemplate) -> list[str]:
    return [state for state, actions in template.states.items() if not actions]


def to_mermaid(template: CompiledTemplate) -> str:
    """Return the template as a Mermaid ``stateDiagram-v2``."""
    ids: dict[str, str] = {}
    lines = ["stateDiagram-v2"]
    for index, state in enumerate(template.states):
        if _MERMAID_ID.match(state) and state not in _MERMAID_KEYWORDS:
            ids[state] = state
            lines.append(f"    {state}")
        else:
            ids[state] = f"state_{index}"
            label = _one_line(state).replace('"', "#quot;")
            lines.append(f'    state "{label}" as {ids[state]}')
    lines.append(f"    [*] --> {ids[template.start_state]}")
    for t in transitions(template):
        lines.append(f"    {ids[t.source]} --> {ids[t.target]}: {_one_line(t.label)}")
    lines.extend(f"    {ids[state]} --> [*]" for state in _final_states(template))
    return "\n".join(lines) + "\n"


def to_dot(template: CompiledTemplate) -> str:
    """Return the template as a Graphviz DOT ``digraph``."""
    start = "__start__"
    while start in template.states:
        start = f"_{start}_"
    lines = [
        f"digraph {_quote(template.name)} {{",
        "    rankdir=LR;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
        f'    {_quote(start)} [shape=point, width=0.15, label=""];',
    ]
    final = set(_final_states(template))
    for state in template.states:
        lines.append(f"    {_quote(state)}{' [peripheries=2]' if state in final else ''};")
    lines.append(f"    {_quote(start)} -> {_quote(template.start_state)};")
    for t in transitions(template):
        attrs = f"label={_quote(t.label)}"
        if t.webhook:
            attrs += f', style=bold, color="{_WEBHOOK_COLOR}", fontcolor="{_WEBHOOK_COLOR}"'
        lines.append(f"    {_quote(t.source)} -> {_quote(t.target)} [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(template: CompiledTemplate, format: str = "mermaid", *, dot: str = "dot") -> bytes:
    """Return the diagram of ``template`` in ``format``, one of :data:`FORMATS`.

    :param format: ``mermaid`` and ``dot`` are text; ``svg`` and ``png`` are drawn by Graphviz.
    :param dot: The Graphviz executable, looked up on ``PATH``.
    :raises ValueError: for an unknown format.
    :raises GraphvizError: when ``dot`` is not installed or fails.
    """
    if format == "mermaid":
        return to_mermaid(template).encode()
    if format == "dot":
        return to_dot(template).encode()
    if format not in FORMATS:
        raise ValueError(f"Unknown diagram format {format!r}; use one of {', '.join(FORMATS)}.")
    executable = shutil.which(dot)
    if executable is None:
        raise GraphvizError(
            f"Drawing {format.upper()} needs Graphviz's {dot!r} on PATH; install Graphviz "
            "(Debian: apt-get install graphviz) or use the mermaid or dot format."
        )
    try:
        done = subprocess.run(
            [executable, f"-T{format}"], input=to_dot(template).encode(), capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphvizError(f"Graphviz could not draw the template {template.name!r}: {exc}.") from exc
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()
        raise GraphvizError(f"Graphviz could not draw the template {template.name!r}: {detail}")
    return done.stdout


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
