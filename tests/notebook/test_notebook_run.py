"""A real notebook executed by nbclient on a kernel of this interpreter: analyse a text with the embedded
default model, then ``visualizeai.show`` it; the cell's output is an anywidget view, no error anywhere."""

from __future__ import annotations

import json
import sys

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.models

KERNEL = "visualizeai-test"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TEXT = "The animal didn't cross the street because it was too tired."


@pytest.fixture
def jupyter_dirs(tmp_path, monkeypatch):
    """A kernel spec for ``sys.executable`` in a temporary Jupyter path; Jupyter's and IPython's own files go
    to temporary folders too, so the user's home is never touched."""
    spec = tmp_path / "data" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": KERNEL, "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "data"))
    for name, folder in [
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ]:
        monkeypatch.setenv(name, str(tmp_path / folder))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return tmp_path


def test_analyze_then_show_renders_a_widget(jupyter_dirs):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"import visualizeai\na = visualizeai.analyze({TEXT!r})\na.n"),
        nbformat.v4.new_code_cell("w = visualizeai.show(a, layer=1, head=2)\nw"),
        nbformat.v4.new_code_cell("print(w.layer, w.head, w.info['n'], w.info['tokens'][2]['raw'])"),
    ]
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=120, allow_errors=False)
    client.execute(cwd=str(jupyter_dirs))

    outputs = [cell.outputs for cell in nb.cells]
    assert all(out.output_type != "error" for cell in outputs for out in cell)
    n = int(outputs[0][0].data["text/plain"])
    assert n == 16

    (display,) = outputs[1]
    assert display.output_type == "execute_result"
    view = display.data[WIDGET_VIEW]
    assert view["version_major"] == 2 and view["model_id"]
    assert display.data["text/plain"].startswith("<VisualizeAI widget of all-MiniLM-L6-v2: 16 tokens")

    # the widget state the notebook saved: anywidget's model with our metadata, no matrices
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"][view["model_id"]]
    assert state["model_name"] == "AnyModel" and state["model_module"] == "anywidget"
    values = state["state"]
    assert values["info"]["n"] == 16 and (values["layer"], values["head"]) == (1, 2)
    assert "render" in values["_esm"] and ".vai-widget" in values["_css"]

    assert outputs[2][0].text.split() == ["1", "2", "16", "animal"]
