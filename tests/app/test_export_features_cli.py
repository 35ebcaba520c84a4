"""HTML export, the Features API over a real feature run, notebook embedding and the CLI commands."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from modalens.app.export import export_documents, export_html, read_export
from modalens.app.notebook import show
from modalens.app.server import create_app
from modalens.runs import read_run

from .fixtures import write_feature_run, write_interaction_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export-runs")
    return {
        "a": write_interaction_run(root / "a", 200, model_seed=0),
        "b": write_interaction_run(root / "b", 200, model_seed=1),
        "feat": write_feature_run(root / "feat"),
    }


def embedded(html: str) -> dict:
    assert '<script id="modalens-data"' in html, "no embedded data"
    return read_export(html)


def test_export_html_is_self_contained(runs: dict[str, Path], tmp_path: Path) -> None:
    out = export_html([runs["a"], runs["b"]], tmp_path / "app.html", max_instances=25)
    html = out.read_bytes().decode("latin-1")
    assert 'src="./assets' not in html and 'href="./assets' not in html
    assert "<style>" in html and '<script type="module">' in html
    data = embedded(html)
    docs = data["documents"]
    assert [r["id"] for r in docs["api/runs"]] == ["a", "b"]
    assert docs["api/runs/a/instances"]["n"] == 200
    details = [k for k in docs if re.fullmatch(r"api/runs/a/instances/\d+", k)]
    assert len(details) == 25
    # the instance with the largest error is among the embedded ones (the instance list shows it first)
    worst = int(np.argmax(docs["api/runs/a/instances"]["columns"]["abs_error"]))
    assert f"api/runs/a/instances/{worst}" in docs
    assert docs["api/compare/a/b"]["n_matched"] == 200
    media = [v for k, v in docs.items() if "/media/" in k]
    assert media and all(v.startswith(("data:image/png;base64,", "data:audio/wav;base64,")) for v in media)
    assert "up to 25 instances" in data["note"]


def test_export_cannot_break_out_of_script(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "r", 10)
    inst = read_run(run).table("instances")
    inst.loc[0, "text"] = "</script><script>alert(1)</script>"
    manifest = json.loads((run / "manifest.json").read_text())
    inst.to_parquet(run / manifest["tables"]["instances"]["file"], index=False)
    html = export_html(run, tmp_path / "x.html", max_instances=10).read_bytes().decode("latin-1")
    payload = html.split('<script id="modalens-data"', 1)[1].split(">", 1)[1].split("</script>", 1)[0]
    assert "<" not in payload and "\x00" not in payload and "\r" not in payload  # nothing HTML would alter
    assert embedded(html)["documents"]["api/runs/r/instances/0"]["row"]["text"].startswith("</script>")


def test_features_api(runs: dict[str, Path]) -> None:
    client = TestClient(create_app([runs["feat"], runs["a"]]), base_url="http://127.0.0.1")
    doc = client.get("/api/runs/feat/features").json()
    table = read_run(runs["feat"]).table("features")
    assert doc["n"] == len(table)
    np.testing.assert_allclose(np.array(doc["columns"]["mds"], dtype=float), table["mds"].to_numpy(), equal_nan=True)
    assert "top_image" not in doc["columns"]
    dom = doc["dominance"]
    assert dom["mds_low_threshold"] < dom["mds_high_threshold"]
    # the thresholds are the documented mean -/+ k sd of the MDS over active features
    mds = table.loc[table["category"] != "inactive", "mds"].to_numpy()
    assert dom["mds_high_threshold"] == pytest.approx(mds.mean() + dom["k"] * mds.std(), rel=1e-6)
    active = int(table.loc[table["category"] != "inactive", "feature"].iloc[0])
    card = client.get(f"/api/runs/feat/features/{active}").json()
    top = read_run(runs["feat"]).table("top_samples")
    assert len(card["top_samples"]) == int((top["feature"] == active).sum())
    image_rows = [s for s in card["top_samples"] if s["modality"] == "image"]
    assert image_rows and all(s["image"] for s in image_rows)
    r = client.get(f"/api/runs/feat/images/{image_rows[0]['image']}")
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    assert client.get("/api/runs/feat/features/99999").status_code == 404
    for bad in ("..%2Fmanifest.json", "..%2F..%2Fmanifest.json", "%2Fetc%2Fpasswd", "%2E%2E"):
        assert client.get(f"/api/runs/feat/images/{bad}").status_code == 404
    assert client.get("/api/runs/a/features").status_code == 404


def test_export_feature_run(runs: dict[str, Path]) -> None:
    docs = export_documents([runs["feat"]])
    assert "api/runs/feat/features" in docs
    cards = [k for k in docs if re.fullmatch(r"api/runs/feat/features/\d+", k)]
    assert cards
    assert any(k.startswith("api/runs/feat/images/") and v.startswith("data:image/png") for k, v in docs.items())


def test_show_server_and_inline(runs: dict[str, Path]) -> None:
    view = show(runs["a"])
    assert view.url and view.url.startswith("http://127.0.0.1:")
    assert f'src="{view.url}"' in view._repr_html_()
    with urllib.request.urlopen(view.url + "api/runs") as r:  # noqa: S310 - the local kernel server
        assert json.loads(r.read())[0]["id"] == "a"
    assert show(runs["a"]).url == view.url  # one server per set of runs
    inline = show([runs["a"], runs["b"]], mode="inline", max_instances=5)
    assert inline.url is None and "srcdoc=" in inline._repr_html_() and "&lt;script" in inline._repr_html_()
    with pytest.raises(ValueError, match="mode"):
        show(runs["a"], mode="popup")  # type: ignore[arg-type]


def test_cli_commands(runs: dict[str, Path], tmp_path: Path) -> None:
    from modalens.cli.serve import register

    app = typer.Typer()

    @app.command()
    def other() -> None:  # a second command, so typer keeps sub-command names
        pass

    register(app)
    runner = CliRunner()
    out = tmp_path / "cli.html"
    result = runner.invoke(app, ["export", str(runs["a"]), "--html", str(out), "--max-instances", "5"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "wrote" in result.output
    bad = runner.invoke(app, ["serve", str(tmp_path), "--no-open"])
    assert bad.exit_code != 0 and "manifest.json" in bad.output
    assert "serve" in runner.invoke(app, ["--help"]).output
