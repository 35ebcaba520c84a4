"""Live what-if (``modalens serve RUN --model SPEC``): known answers on a small model with an interaction term.

The run is written by ``modalens explain`` itself (so it records its baselines), with the model of
:func:`interacting_model` given as the factory spec ``tests.app.test_whatif:interacting_model``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from modalens.app.server import create_app
from modalens.cli.live_model import LiveModelError, live_predictor, load_live_predictors
from modalens.data.native import load_dataset, save_dataset
from modalens.data.synthetic import make_synthetic
from modalens.models.predictor import CallablePredictor

BASE = "http://127.0.0.1"
SPEC = "tests.app.test_whatif:interacting_model"
NAMES = ["text", "audio", "vision"]


def interacting_model() -> CallablePredictor:
    """The glass-box terms plus a text x vision product: coalitions are not additive, so Shapley values share the
    interaction and a wrong baseline or coalition shows."""

    def predict(values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        m = masks["text"].astype(np.float64)
        count = np.maximum(m.sum(1), 1.0)
        text = (values["text"][:, :, 0] * m).sum(1)
        audio = (values["audio"][:, :, 0] * m).sum(1) / count
        vision = (values["vision"][:, :, 2] * m).sum(1) / count
        return 1.0 * text + 0.5 * audio + 0.8 * vision + 0.6 * text * vision

    return CallablePredictor(predict, NAMES)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from modalens.cli.main import main

    folder = tmp_path_factory.mktemp("whatif")
    save_dataset(make_synthetic(80, seed=5), folder / "data.npz")
    out = folder / "interacting"
    argv = [
        "explain", str(folder / "data.npz"), "--model", SPEC, "--out", str(out),
        "--feature-method", "none", "--no-templates", "--projection", "none", "--name", "Interacting glass box",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as done:  # typer ends the command with sys.exit(0)
        main(argv)
    assert done.value.code in (0, None)
    return out


@pytest.fixture(scope="module")
def client(run: Path) -> TestClient:
    predictors, refused = load_live_predictors([run], SPEC)
    assert refused == {} and list(predictors) == [run.resolve()]
    return TestClient(create_app([run], predictors=predictors), base_url=BASE)


def whatif(client: TestClient, **body: object):  # noqa: ANN201
    return client.post("/api/runs/interacting/whatif", json=body)


def stored(run: Path, table: str, instance: int) -> pd.DataFrame:
    frame = pd.read_parquet(run / f"{table}.parquet")
    return frame[frame["instance"] == instance]


def test_runs_list_live_and_model_name(client: TestClient) -> None:
    (info,) = client.get("/api/runs").json()
    assert info["live"] is True
    assert info["model"] == "Interacting glass box"  # explain --name lands in model.name


def test_no_edit_reproduces_the_stored_explanation(client: TestClient, run: Path) -> None:
    for i in (0, 5, 11):
        doc = whatif(client, instance=i).json()
        ms = stored(run, "modality_shapley", i).set_index("modality")["value"]
        got = {r["modality"]: r["value"] for r in doc["modality_shapley"]}
        for m in NAMES:
            assert got[m] == pytest.approx(ms[m], abs=1e-6)
        coal = stored(run, "coalitions", i).set_index("coalition")["value"]
        assert {c["coalition"] for c in doc["coalitions"]} == set(coal.index)
        for c in doc["coalitions"]:
            assert c["value"] == pytest.approx(coal[c["coalition"]], abs=1e-6)
            assert c["size"] == (0 if c["coalition"] == "" else c["coalition"].count("+") + 1)
        inst = stored(run, "instances", i).iloc[0]
        assert doc["original"]["prediction"] == pytest.approx(inst["prediction"])
        assert doc["prediction"] == pytest.approx(inst["prediction"], abs=1e-6)
        assert doc["base_value"] == pytest.approx(inst["base_value"], abs=1e-6)
        assert doc["seconds"] >= 0


def test_dropping_gives_the_complement_coalition_value(client: TestClient, run: Path) -> None:
    i = 7
    coal = stored(run, "coalitions", i).set_index("coalition")["value"]
    assert whatif(client, instance=i, drop=["text"]).json()["explained_output"] == pytest.approx(
        coal["audio+vision"], abs=1e-6
    )
    doc = whatif(client, instance=i, drop=["text", "vision"]).json()
    assert doc["prediction"] == pytest.approx(coal["audio"], abs=1e-6)
    # a dropped modality is at its baseline whether present or not: it gets no credit, and efficiency holds
    phi = {r["modality"]: r["value"] for r in doc["modality_shapley"]}
    assert phi["text"] == pytest.approx(0, abs=1e-9) and phi["vision"] == pytest.approx(0, abs=1e-9)
    assert doc["base_value"] + sum(phi.values()) == pytest.approx(doc["explained_output"], abs=1e-9)


def test_swap_gives_the_model_on_the_spliced_input(client: TestClient, run: Path) -> None:
    data = load_dataset(run / "dataset.npz")
    i, j = 2, 9
    values = {m: data[m].values[[i]].copy() for m in NAMES}
    masks = {m: data[m].step_mask()[[i]].copy() for m in NAMES}
    values["vision"], masks["vision"] = data["vision"].values[[j]], data["vision"].step_mask()[[j]]
    expected = float(interacting_model().predict(values, masks)[0, 0])
    doc = whatif(client, instance=i, swap={"vision": j}).json()
    assert doc["prediction"] == pytest.approx(expected, abs=1e-5)
    assert doc["prediction"] != pytest.approx(doc["original"]["prediction"], abs=1e-3)  # the swap changed something


def test_masking_a_word_puts_its_baseline_there(client: TestClient, run: Path) -> None:
    import json

    data = load_dataset(run / "dataset.npz")
    record = json.loads((run / "manifest.json").read_text())["config"]["predictor"]
    baseline = np.asarray(record["baselines"]["text"], dtype=np.float32)  # the train split's per-feature mean
    full = make_synthetic(80, seed=5).split("train")["text"]
    np.testing.assert_allclose(baseline, full.values[full.step_mask()].mean(0), rtol=1e-5)
    i = 4
    values = {m: data[m].values[[i]].copy() for m in NAMES}
    masks = {m: data[m].step_mask()[[i]] for m in NAMES}
    values["text"][0, [0, 2]] = baseline
    expected = float(interacting_model().predict(values, masks)[0, 0])
    doc = whatif(client, instance=i, mask={"text": [0, 2]}).json()
    assert doc["prediction"] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"instance": 0, "drop": ["smell"]}, "unknown modality 'smell'"),
        ({"instance": 0, "mask": {"text": [99]}}, "mask.text: position 99"),
        ({"instance": 0, "mask": {"text": [-1]}}, "position -1"),
        ({"instance": 10_000}, "no instance 10000"),
        ({"instance": -1}, "no instance -1"),
        ({"instance": 0, "swap": {"audio": 0}}, "swap.audio: instance 0 is the instance itself"),
        ({"instance": 0, "swap": {"audio": 10_000}}, "swap.audio: no instance 10000"),
        ({"instance": 0, "drop": ["audio"], "swap": {"audio": 3}}, "'audio' is dropped and also swapped"),
        ({"instance": 0, "keep": ["text"]}, "keep"),
        ({"drop": ["text"]}, "instance"),
        ({"instance": "zero"}, "instance"),
    ],
)
def test_bad_bodies_are_422_naming_the_problem(client: TestClient, body: dict, named: str) -> None:
    r = client.post("/api/runs/interacting/whatif", json=body)
    assert r.status_code == 422, r.text
    assert named in r.json()["error"]


def test_padding_is_not_a_position(client: TestClient, run: Path) -> None:
    data = load_dataset(run / "dataset.npz")
    i = int(np.argmin(data["text"].step_mask().sum(1)))  # the shortest instance has padding steps
    real = data["text"].step_mask()[i]
    assert not real.all()
    pad = int(np.flatnonzero(~real)[0])
    r = whatif(client, instance=i, mask={"text": [pad]})
    assert r.status_code == 422 and f"position {pad} is not a real step" in r.json()["error"]


def test_form_posts_are_refused(client: TestClient) -> None:
    """A page of another site can POST text/plain without a preflight; the route only reads JSON."""
    r = client.post("/api/runs/interacting/whatif", content=b'{"instance": 0}', headers={"content-type": "text/plain"})
    assert r.status_code == 422


def test_without_a_model_live_is_false_and_the_routes_are_404(run: Path) -> None:
    c = TestClient(create_app([run]), base_url=BASE)
    assert c.get("/api/runs").json()[0]["live"] is False
    r = c.post("/api/runs/interacting/whatif", json={"instance": 0})
    assert r.status_code == 404 and "--model" in r.json()["error"]
    assert c.post("/api/runs/interacting/instances/0/cells", json={}).status_code == 404
    assert c.post("/api/runs/nope/whatif", json={"instance": 0}).status_code == 404


def test_a_failing_model_is_a_500_and_the_server_keeps_serving(run: Path) -> None:
    predictor = live_predictor(run, SPEC)
    broken = copy.copy(predictor)

    def fail(values: dict, masks: dict) -> np.ndarray:
        raise RuntimeError("out of memory on purpose")

    broken.fn = fail
    c = TestClient(create_app([run], predictors={run: broken}), base_url=BASE, raise_server_exceptions=False)
    r = c.post("/api/runs/interacting/whatif", json={"instance": 0})
    assert r.status_code == 500
    assert "the model failed" in r.json()["error"] and "out of memory on purpose" in r.json()["error"]
    assert c.get("/api/runs").status_code == 200
    assert c.post("/api/runs/interacting/whatif", json={"instance": 99_999}).status_code == 422


def test_cells_route(client: TestClient, run: Path) -> None:
    r = client.post("/api/runs/interacting/instances/3/cells", json={"n_permutations": 4})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["instance"] == 3 and doc["n_permutations"] == 4 and doc["evaluations"] > 0
    data = load_dataset(run / "dataset.npz")
    assert doc["rows"] and {r["modality"] for r in doc["rows"]} <= set(NAMES)
    for row in doc["rows"]:
        assert 0 <= row["position"] < data[row["modality"]].values.shape[1]
        assert row["feature"] in data[row["modality"]].feature_names
    # the model reads only feature 0 of text: every other text feature's cells are exactly zero
    read = data["text"].feature_names[0]
    other = [r["value"] for r in doc["rows"] if r["modality"] == "text" and r["feature"] != read]
    assert other and max(abs(v) for v in other) < 1e-9
    # one player per named feature at each real step; the cost is the estimator's: 2 + walks * (players - 1)
    real = {m: int(data[m].step_mask()[3].sum()) for m in NAMES}
    assert len(doc["rows"]) == sum(real[m] * len(data[m].feature_names) for m in NAMES)
    assert doc["evaluations"] == 2 + 4 * (len(doc["rows"]) - 1) and doc["seconds"] > 0
    # efficiency: the cells share out f(x) - f(every cell masked), the stored full and empty coalitions
    coal = stored(run, "coalitions", 3).set_index("coalition")["value"]
    assert sum(r["value"] for r in doc["rows"]) == pytest.approx(coal["+".join(NAMES)] - coal[""], abs=1e-5)
    # the model's terms are linear or pairwise products, which antithetic walks split exactly as Shapley does: each
    # modality's cells add up to its (exact, stored) modality Shapley value, within the estimator's error
    phi = stored(run, "modality_shapley", 3).set_index("modality")["value"]
    for m in NAMES:
        mine = [r for r in doc["rows"] if r["modality"] == m]
        error = sum(r["std_error"] or 0.0 for r in mine)  # sum of the cells' errors bounds their total's
        assert sum(r["value"] for r in mine) == pytest.approx(phi[m], abs=1e-5 + 4 * error), m
    bad = client.post("/api/runs/interacting/instances/999/cells", json={})
    assert bad.status_code == 422 and "no instance 999" in bad.json()["error"]
    assert client.post("/api/runs/interacting/instances/0/cells", json={"n_permutations": 0}).status_code == 422


def test_a_run_without_a_record_or_with_another_model_is_refused(run: Path, tmp_path: Path) -> None:
    from modalens.interactions import explain
    from modalens.models import Masker

    predictor = interacting_model()
    predictor.masker = Masker("mean")
    data = make_synthetic(40, seed=1).split("test")
    plain = explain(predictor, data, feature_method=None, templates=False, projection=None, progress=False)
    path = plain.save(tmp_path / "api-run")  # the Python API records no baselines
    with pytest.raises(LiveModelError, match="records no baselines"):
        live_predictor(path, SPEC)
    with pytest.raises(LiveModelError, match="does not reproduce"):
        live_predictor(run, "modalens.models.glass_box:glass_box_model")
    live, refused = load_live_predictors([run, path], SPEC)
    assert list(live) == [run.resolve()] and "records no baselines" in refused[path.resolve()]


def test_the_demo_model_serves_a_demo_run_without_a_record(tmp_path: Path) -> None:
    """Runs of ``modalens demo`` written before runs recorded baselines: ``--model demo`` rebuilds them from the
    embedded set's train split, checked against the stored coalition values; answers well within a second."""
    pytest.importorskip("torch")
    from modalens.data.demo import load_demo
    from modalens.interactions import explain
    from modalens.models import Masker
    from modalens.models.training import load_pretrained

    full = load_demo()
    predictor = load_pretrained("mult").to_predictor()
    predictor.masker = Masker("mean").fit(full.split("train"))
    data = full.split("test").take(range(6))
    path = explain(predictor, data, feature_method=None, templates=False, projection=None, progress=False).save(
        tmp_path / "demo"
    )
    live = {path: live_predictor(path, "demo")}
    c = TestClient(create_app([path], predictors=live), base_url=BASE)
    first = c.post("/api/runs/demo/whatif", json={"instance": 1})  # loads the run's dataset once
    stored_phi = stored(path, "modality_shapley", 1).set_index("modality")["value"]
    for r in first.json()["modality_shapley"]:
        assert r["value"] == pytest.approx(stored_phi[r["modality"]], abs=1e-4)
    clock = time.perf_counter()
    r = c.post("/api/runs/demo/whatif", json={"instance": 1, "drop": ["audio"], "mask": {"text": [0]}})
    assert r.status_code == 200 and time.perf_counter() - clock < 1.0


@pytest.fixture(scope="module")
def glass_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from .cells_fixtures import write_glass_cells_run

    return write_glass_cells_run(tmp_path_factory.mktemp("glass-cells"))


def test_cells_of_the_additive_glass_box_are_its_known_terms(glass_run: Path) -> None:
    """Live cells equal the glass box's own terms (and the cells ``explain --granularities cells`` stored), and
    each modality's cells add up to its stored step attributions' total."""
    from .cells_fixtures import GLASS_SPEC, expected_cells

    predictors, refused = load_live_predictors([glass_run], GLASS_SPEC)
    assert refused == {}
    c = TestClient(create_app([glass_run], predictors=predictors), base_url=BASE)
    fa = pd.read_parquet(glass_run / "feature_attributions.parquet")
    n = int(pd.read_parquet(glass_run / "instances.parquet")["instance"].max()) + 1
    for i in range(n):
        doc = c.post(f"/api/runs/glass-cells/instances/{i}/cells", json={"n_permutations": 2}).json()
        got = {(r["modality"], r["position"], r["feature"]): r["value"] for r in doc["rows"]}
        want = expected_cells(glass_run, i)
        assert set(got) == set(want)
        assert any(abs(v) > 1e-3 for v in want.values())
        for key, value in want.items():
            assert got[key] == pytest.approx(value, abs=1e-5), key
        rows = fa[(fa["instance"] == i) & (fa["position"] >= 0)]
        cells = rows[rows["feature"] != "*"]
        kept = {(r.modality, r.position, r.feature): r.value for r in cells.itertuples()}
        assert kept == pytest.approx(want, abs=1e-5)
        steps = rows[rows["feature"] == "*"].groupby("modality")["value"].sum()
        for m in NAMES:
            assert sum(v for k, v in got.items() if k[0] == m) == pytest.approx(steps[m], abs=1e-5), (i, m)


@pytest.fixture(scope="module")
def feature_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from .fixtures import write_feature_run

    return write_feature_run(tmp_path_factory.mktemp("serve-mixed") / "pairs", 80)


def serve_with(monkeypatch: pytest.MonkeyPatch, runs: list[Path], spec: str) -> dict:
    """``modalens serve RUNS --model SPEC`` up to the server start: what the server would have been given."""
    import modalens.app.server
    from modalens.cli.serve import serve_command

    given: dict = {}
    monkeypatch.setattr(modalens.app.server, "serve", lambda run_dirs, **kw: given.update(kw, run_dirs=run_dirs))
    serve_command(runs, model=spec, open_browser=False)
    return given


def test_serve_an_interaction_model_with_a_feature_run_too(
    run: Path, feature_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    given = serve_with(monkeypatch, [run, feature_run], SPEC)
    assert given["run_dirs"] == [run, feature_run]  # both served
    assert list(given["predictors"]) == [run.resolve()] and given["model"] is None
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "pairs" in line]
    assert len(lines) == 1 and "served without an embedding model" in lines[0] and "unknown model" in lines[0]
    assert "live model" in err and "interacting" in err


def test_serve_an_embedding_model_with_an_interaction_run_too(
    run: Path, feature_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from modalens.features.two_tower import TwoTowerModel

    given = serve_with(monkeypatch, [run, feature_run], "two-tower")
    assert isinstance(given["model"], TwoTowerModel) and given["predictors"] == {}
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "interacting" in line]
    assert len(lines) == 1 and "served without a live model" in lines[0]
    assert "embedding model two-tower on pairs" in err


def test_a_model_spec_that_suits_no_served_run_is_an_error(
    run: Path, feature_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import typer

    with pytest.raises(typer.Exit) as done:
        serve_with(monkeypatch, [run, feature_run], "no.such.module:factory")
    assert done.value.exit_code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--model no.such.module:factory suits no served run" in err
    assert "feature runs: unknown model" in err and "cannot import" in err
