"""Sphinx configuration of the flask-stubber documentation."""

from __future__ import annotations

import sys
import warnings
from importlib.metadata import version as _version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "flask-stubber"
copyright = "flask-stubber contributors"
release = _version("flask-stubber")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "http_examples",
]
exclude_patterns = ["_build", "examples"]
templates_path: list[str] = []

# autodoc inspects the mixins' declared attributes, which SQLAlchemy warns about off a model.
warnings.filterwarnings("ignore", message="Unmanaged access of declarative attribute")

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
autoclass_content = "both"

html_theme = "furo"
html_title = f"flask-stubber {release}"
html_static_path: list[str] = []

# Doctests run with `sphinx-build -b doctest docs docs/_build/doctest` (in .ci/run).
# They run in docs/examples, so that the files the pages include can be loaded and
# imported by name (``from quickstart import stubber``).
doctest_global_setup = f"""
import os
import sys
os.chdir({str(Path(__file__).parent / "examples")!r})
if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())
from flask_stubber import StubberWebhooks, Template, TemplateError
"""
