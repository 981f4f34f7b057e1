"""Every `>>>` example in the package's docstrings runs, and prints what the docstring shows.

The examples are collected from all modules when the tests are collected, so an example added
anywhere in the package is tested without editing this file. Each runs with `np`, `keras`, `ops`,
`tf`, `os`, `keras_shiftinv` and its module's own names in scope, in a fresh empty `tmp_dir`
(also the working directory).
"""

import doctest
import importlib
import os
import pkgutil
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_shiftinv

SKIP_MODULES = {"keras_shiftinv.__main__"}  # importing it runs the command line
OPTIONS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _modules():
    yield keras_shiftinv
    for info in pkgutil.walk_packages(keras_shiftinv.__path__, "keras_shiftinv."):
        if info.name not in SKIP_MODULES:
            yield importlib.import_module(info.name)


def _examples():
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for module in _modules():
        for test in finder.find(module, module.__name__, globs={}):
            if test.examples:
                tests.append(pytest.param(module, test, id=test.name))
    return tests


EXAMPLES = _examples()


def test_examples_were_found():
    names = {p.id for p in EXAMPLES}
    assert len(names) >= 10, names
    assert "keras_shiftinv.layers.polyphase_downsample.polyphase_split" in names


@pytest.mark.parametrize("module,test", EXAMPLES)
def test_docstring_example(module, test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    test.globs = {**vars(module), "np": np, "keras": keras, "ops": ops, "tf": tf, "os": os,
                  "keras_shiftinv": keras_shiftinv, "tmp_dir": str(tmp_path)}
    out = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)


def test_every_design_citation_names_a_section_of_docs_design_md():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "design.md"), encoding="utf-8") as f:
        sections = set(re.findall(r"^## (.+)$", f.read(), flags=re.M))
    cited, old_style = {}, []
    for folder in ("keras_shiftinv", "tests", "benchmarks"):
        for dirpath, _, files in os.walk(os.path.join(root, folder)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(dirpath, name)
                    with open(path, encoding="utf-8") as f:
                        text = f.read()
                    if re.search(r"DESIGN(\.md)? ?\u00a7", text):  # old citations by paragraph number
                        old_style.append(os.path.relpath(path, root))
                    for section in re.findall(r"docs/design\.md,?\s+[\"']([^\"'\n]+)[\"']", text):
                        cited.setdefault(section, os.path.relpath(path, root))
    assert "Data" in cited and "Metrics" in cited, cited
    missing = {s: where for s, where in cited.items() if s not in sections}
    assert not missing, f"cited sections not in docs/design.md: {missing}"
    assert not old_style, old_style
