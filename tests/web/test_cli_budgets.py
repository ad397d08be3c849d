"""The command line and the Python API obey the same work budget as the web app."""

from __future__ import annotations

import pytest

import visualizeai
from visualizeai import cli, python_api
from visualizeai.budgets import WorkTooLarge

pytestmark = pytest.mark.models

TEXT = "I think, therefore I am."


def test_cli_export_over_the_budget_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VISUALIZEAI_WORK_BUDGET", "1000")
    out = tmp_path / "a.json"
    assert cli.main(["export", "--offline", "--format", "json", "--out", str(out), TEXT]) == 2
    err = capsys.readouterr().err
    assert "The JSON export of this analysis costs" in err
    assert "over the work budget of 1,000 (VISUALIZEAI_WORK_BUDGET)" in err
    assert not out.exists()


def test_cli_export_within_the_budget_writes(tmp_path, capsys):
    out = tmp_path / "a.json"
    assert cli.main(["export", "--offline", "--format", "json", "--out", str(out), TEXT]) == 0
    assert out.stat().st_size > 0


def test_python_api_save_obeys_the_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(python_api, "_service", None)  # the module's own service is back after the test
    python_api.configure(offline=True, work_budget=1000)
    result = visualizeai.analyze(TEXT)
    with pytest.raises(WorkTooLarge, match="VISUALIZEAI_WORK_BUDGET"):
        visualizeai.save(result, tmp_path / "a.npz")
    with pytest.raises(WorkTooLarge, match="VISUALIZEAI_WORK_BUDGET"):
        visualizeai.figure(result, fmt="svg")
    assert not (tmp_path / "a.npz").exists()
