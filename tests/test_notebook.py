"""The exploration notebook executes against a trained copy of the project."""

import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from tests.project import PROJECT_ROOT, SMALL_RUN_PARAMS, run_project

NOTEBOOK = PROJECT_ROOT / "notebooks" / "rating_prediction.ipynb"
MAX_RUN_CELL_LINES = 20


@pytest.mark.slow
def test_notebook_runs_headless(project_copy, monkeypatch):
    project_path = project_copy
    # Train small models first, so the notebook takes its "already trained" path and
    # re-runs only evaluation and reporting: a short test.
    run_project(project_path, SMALL_RUN_PARAMS)
    notebook_dir = project_path / "notebooks"
    notebook_dir.mkdir()
    shutil.copy(NOTEBOOK, notebook_dir)
    monkeypatch.setenv("RATING_PREDICTION_PROJECT", str(project_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")

    notebook = nbformat.read(notebook_dir / NOTEBOOK.name, as_version=4)
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(notebook_dir)}},
    ).execute()

    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 5
    assert "Running: ['evaluation', 'reporting']" in "".join(
        output.get("text", "") for output in outputs
    )
    # The run cell shows a short summary, not the log: no line per node, no warning.
    (run_cell,) = [cell for cell in notebook.cells if "session.run(" in cell.source]
    printed = "".join(output.get("text", "") for output in run_cell.outputs)
    assert len(printed.splitlines()) <= MAX_RUN_CELL_LINES, printed
    assert "WARNING" not in printed and "Best test RMSE: " in printed
    assert "The best ranker by val ndcg@10" in printed
