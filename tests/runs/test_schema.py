"""The run schema: runs from the real writers validate; anything else is refused with a message naming the field."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modalens.runs import KINDS, FeatureManifest, InteractionManifest, RunError, read_run, write_run
from modalens.runs.schema import check_columns

from .helpers import copy_run, parts, rewrite


def _declared(run) -> None:
    """Every stored table holds exactly the declared columns with the declared types."""
    decl = KINDS[run.kind]
    for name in run.table_names:
        schema = pq.read_schema(run.path / f"{name}.parquet")
        found = check_columns(decl.table(name), schema, run.modalities, str(run.path), rows=run.rows(name))
        for f in schema:
            if found[f.name].type is not None:
                assert f.type == found[f.name].type, (name, f.name, f.type)


def test_explanation_save_writes_a_valid_run(interaction_run):
    from modalens.interactions.explanation import load_run

    run = read_run(interaction_run)
    assert isinstance(run.manifest, InteractionManifest)
    assert {"instances", "outputs", "feature_attributions", "templates", "projection"} <= set(run.table_names)
    _declared(run)
    assert run.manifest.projection is not None and run.manifest.projection.method == "tsne"
    errors = run.manifest.global_.error_by_type
    assert errors and all(e.count > 0 for e in errors.values())
    assert run.manifest_json()["global"]["error_by_type"] == {
        k: {"count": e.count, "error": e.error} for k, e in errors.items()
    }
    back = load_run(interaction_run)
    assert back.modalities == run.manifest.modalities and len(back) == 40


def test_feature_study_save_writes_a_valid_run(feature_run):
    from modalens.features.study import load_feature_study

    run = read_run(feature_run)
    assert isinstance(run.manifest, FeatureManifest) and run.modalities == ["image", "text"]
    assert {"features", "top_samples", "interventions", "samples"} <= set(run.table_names)
    _declared(run)
    study = load_feature_study(feature_run)
    assert study.dominance["modalities"] == ["image", "text"] and len(study.features) == 24


def test_the_fixture_run_of_the_app_tests_is_valid(tmp_path):
    from tests.app.fixtures import write_interaction_run

    _declared(read_run(write_interaction_run(tmp_path / "run", 30)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["instances"].assign(label="x"), r"table 'instances' column 'label': expected double.*found"),
        (lambda t: t["instances"].assign(extra=1), r"table 'instances' has an unexpected column 'extra'"),
        (lambda t: t["instances"].drop(columns="target"), r"table 'instances' has no column 'target' \(expected int64"),
        (lambda t: t["instances"].drop(columns="shapley_audio"), r"no column 'shapley_audio'"),
        (lambda t: t["instances"].assign(prediction=np.nan), r"column 'prediction': 40 null/NaN values"),
        (lambda t: t["coalitions"].assign(size=0.5), r"table 'coalitions' column 'size': expected int64, found double"),
    ],
)
def test_a_wrong_table_is_refused_on_write(interaction_run, tmp_path, change, message):
    def edit(tables: dict[str, pd.DataFrame]) -> None:
        name = "coalitions" if "coalitions" in message else "instances"
        tables[name] = change(tables)

    with pytest.raises(RunError, match=message) as info:
        rewrite(interaction_run, tmp_path / "run", tables=edit)
    assert str(tmp_path / "run") in str(info.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.pop("outputs"), r"interaction runs need table 'outputs'; it is missing"),
        (lambda t: t.update(extra=pd.DataFrame({"a": [1]})), r"table 'extra' is not part of the interaction run"),
        (lambda t: t.pop("template_members"), r"table 'templates' needs table 'template_members'"),
    ],
)
def test_a_missing_or_unknown_table_is_refused(interaction_run, tmp_path, edit, message):
    with pytest.raises(RunError, match=message):
        rewrite(interaction_run, tmp_path / "run", tables=edit)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("typing"), r"key 'typing' is missing"),
        (lambda m: m.update(extra=1), r"key 'extra' is not part of the schema"),
        (lambda m: m.update(modalities="text"), r"key 'modalities': .*found 'text'"),
        (lambda m: m["global"]["error_by_type"]["complement"].update(mae=1.0), r"global.error_by_type.complement.mae"),
        (lambda m: m.update(projection="tsne"), r"key 'projection'"),
        (lambda m: m.update(target="first"), r"key 'target'"),
    ],
)
def test_a_wrong_manifest_is_refused(interaction_run, tmp_path, edit, message):
    with pytest.raises(RunError, match=message) as info:
        rewrite(interaction_run, tmp_path / "run", manifest=edit)
    assert "does not match the interaction run schema" in str(info.value)


def test_feature_manifest_and_tables_are_checked(feature_run, tmp_path):
    with pytest.raises(RunError, match=r"key 'dominance.mu'"):
        rewrite(feature_run, tmp_path / "a", manifest=lambda m: m["dominance"].update(mu="high"))
    with pytest.raises(RunError, match=r"table 'features' column 'stable': expected bool, found (large_)?string"):
        rewrite(feature_run, tmp_path / "b", tables=lambda t: t["features"].__setitem__("stable", "yes"))
    with pytest.raises(RunError, match=r"table 'features' has no column 'top_text'"):
        rewrite(feature_run, tmp_path / "c", tables=lambda t: t["features"].pop("top_text"))
    with pytest.raises(RunError, match=r"features runs need table 'interventions'"):
        rewrite(feature_run, tmp_path / "d", tables=lambda t: t.pop("interventions"))


def test_unknown_kind_is_refused(interaction_run, tmp_path):
    m, tables = parts(read_run(interaction_run))
    with pytest.raises(RunError, match=r"unknown run kind 'explanations'"):
        write_run(tmp_path / "run", kind="explanations", manifest=m, tables=tables)


def test_writer_stores_declared_types_and_empty_tables(feature_run, tmp_path):
    """Narrower types are widened to the declared ones; `pd.DataFrame()` is an empty table of the declared columns."""

    def edit(tables: dict[str, pd.DataFrame]) -> None:
        tables["top_samples"] = tables["top_samples"].astype({"rank": np.int32, "activation": np.float32})
        tables["interventions"] = pd.DataFrame()

    run = read_run(rewrite(feature_run, tmp_path / "run", tables=edit))
    schema = pq.read_schema(run.path / "top_samples.parquet")
    assert schema.field("rank").type == pa.int64() and schema.field("activation").type == pa.float64()
    assert run.rows("interventions") == 0 and "intervention" in run.table("interventions").columns


def test_tables_and_manifest_are_checked_on_read(interaction_run, tmp_path):
    target = copy_run(interaction_run, tmp_path / "run")
    table = pq.read_table(target / "outputs.parquet")
    pq.write_table(table.set_column(1, "output_index", table.column(1).cast(pa.string())), target / "outputs.parquet")
    with pytest.raises(RunError, match=r"table 'outputs' column 'output_index': expected int64, found string"):
        read_run(target)
    pq.write_table(table.slice(0, 3), target / "outputs.parquet")
    with pytest.raises(RunError, match=r"table 'outputs' has 3 rows, the manifest says 40"):
        read_run(target)
    pq.write_table(table, target / "outputs.parquet")
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["model"]["masker"] = "zeros"
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match=r"key 'model.masker'"):
        read_run(target)
