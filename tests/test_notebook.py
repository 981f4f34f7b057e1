import os

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "notebooks", "shift_invariance_tour.ipynb")


@pytest.mark.slow  # 24 s; the default run checks the committed notebook's outputs (below) and its APIs elsewhere
def test_notebook_executes(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "| group-aps |" in outputs
    assert (tmp_path / "stability_curves.png").exists()


def test_the_committed_notebook_is_executed_with_its_plots():
    """A reader browsing the notebook sees its outputs: every code cell ran, in order, and plots are there."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    kinds = [o.get("output_type") for c in code for o in c.get("outputs", [])]
    assert "error" not in kinds
    images = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "no plot in the committed notebook"
