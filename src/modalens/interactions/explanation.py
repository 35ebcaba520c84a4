"""The one result object between computation and every view.

An :class:`Explanation` holds, for N explained instances, the model outputs, the value of every modality coalition
for the explained output, exact modality Shapley values, pairwise interaction indices, Moebius dividends, the
interaction types, optional feature-level attributions, templates, a 2-D projection and dataset-level measures. It
slices (``expl[mask]``, :meth:`subset`), summarises any subset the same way as the whole (:meth:`summary`), turns into
DataFrames (:meth:`to_frame`) and saves to / loads from a run directory (:meth:`save`, :func:`load_run`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalens._core.errors import ModalensError
from modalens.data.dataset import MultimodalDataset
from modalens.data.native import load_dataset, save_dataset
from modalens.interactions.coalitions import coalition_label, coalition_matrix
from modalens.interactions.interaction_types import InteractionTypes, TypingConfig, classify
from modalens.runs import RunError, check_target, read_run, safe_name, write_run

DATASET_FILE = "dataset.npz"


@dataclass
class Explanation:
    """Explanations of N instances by one predictor (see the module docstring)."""

    dataset: MultimodalDataset
    modalities: list[str]
    model: dict[str, Any]
    target: np.ndarray  # [N] int: the output column explained per instance
    outputs: np.ndarray  # [N, K] model outputs on the full input
    coalition_values: np.ndarray  # [N, 2**M] explained output per coalition (code c holds modality m iff bit m set)
    shapley: np.ndarray  # [N, M]
    interactions: np.ndarray  # [N, M, M] Shapley interaction indices (symmetric, zero diagonal)
    moebius: np.ndarray  # [N, 2**M]
    typing: TypingConfig
    types: InteractionTypes
    feature_attributions: pd.DataFrame | None = None  # long table, see docs/run-format.md
    word_attributions: pd.DataFrame | None = None  # words of token modalities (sum of their pieces)
    templates: pd.DataFrame | None = None
    template_members: pd.DataFrame | None = None
    projection: np.ndarray | None = None  # [N, 2]
    dataset_measures: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    _shown_run: Path | None = field(default=None, repr=False, compare=False)

    # -- basic access ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        shares = self.type_shares()
        text = ", ".join(f"{k} {v:.0%}" for k, v in shares.items() if v > 0)
        return f"Explanation(N={len(self)}, modalities={self.modalities}, types: {text})"

    @property
    def predictions(self) -> np.ndarray:
        """The explained output per instance, ``[N]`` (= coalition value of the full input)."""
        return self.coalition_values[:, -1]

    @property
    def base_values(self) -> np.ndarray:
        """The explained output with every modality at its baseline, ``[N]``."""
        return self.coalition_values[:, 0]

    @property
    def unimodal(self) -> pd.DataFrame:
        """Predictions from one modality alone (others at baseline), one column per modality."""
        return pd.DataFrame({m: self.coalition_values[:, 1 << i] for i, m in enumerate(self.modalities)})

    @property
    def bimodal(self) -> pd.DataFrame:
        """Predictions from each pair of modalities alone, columns named ``"a+b"``."""
        cols = {}
        for i in range(len(self.modalities)):
            for j in range(i + 1, len(self.modalities)):
                cols[f"{self.modalities[i]}+{self.modalities[j]}"] = self.coalition_values[:, (1 << i) | (1 << j)]
        return pd.DataFrame(cols)

    @property
    def point_predictions(self) -> np.ndarray:
        """The model's answer per instance: the regression value, or the predicted class index."""
        if self.model.get("output_kind") == "classification":
            return self.outputs.argmax(1)
        return self.outputs[:, 0]

    @property
    def errors(self) -> np.ndarray | None:
        """Prediction minus label for regression (None without labels or for classification)."""
        if self.dataset.labels is None or self.model.get("output_kind") == "classification":
            return None
        return self.outputs[:, 0] - self.dataset.labels

    # -- levels ------------------------------------------------------------------------------------------------
    def __getitem__(self, index: Any) -> Explanation:
        return self.subset(index)

    def subset(self, selector: np.ndarray | list | slice | Callable[[pd.DataFrame], Any]) -> Explanation:
        """The explanation of a subset of instances.

        ``selector`` is a boolean mask, integer positions, a slice, or a function of :meth:`to_frame` returning a
        boolean mask (e.g. ``lambda f: (f.interaction_type == "conflict") & (f.abs_error > 1)``).
        """
        if callable(selector):
            selector = np.asarray(selector(self.to_frame()))
        index = np.atleast_1d(np.arange(len(self))[selector])
        old_to_new = {int(o): k for k, o in enumerate(index)}

        def remap(frame: pd.DataFrame | None) -> pd.DataFrame | None:
            if frame is None:
                return None
            kept = frame[frame["instance"].isin(old_to_new)].copy()
            kept["instance"] = kept["instance"].map(old_to_new).astype(np.int64)
            return kept.reset_index(drop=True)

        types = InteractionTypes(
            *(getattr(self.types, f)[index] for f in ("types", "dominant", "shares", "roles", "strength"))
        )
        members = remap(self.template_members)
        templates = self.templates
        if templates is not None and members is not None:
            # templates keep their full-set support and means; count becomes the subset's members
            counts = members.groupby("template_id").size()
            templates = templates[templates["template_id"].isin(counts.index)].copy()
            templates["count"] = templates["template_id"].map(counts).astype(np.int64)
        return replace(
            self,
            dataset=self.dataset.take(index),
            target=self.target[index],
            outputs=self.outputs[index],
            coalition_values=self.coalition_values[index],
            shapley=self.shapley[index],
            interactions=self.interactions[index],
            moebius=self.moebius[index],
            types=types,
            feature_attributions=remap(self.feature_attributions),
            word_attributions=remap(self.word_attributions),
            templates=templates,
            template_members=members,
            projection=None if self.projection is None else self.projection[index],
            _shown_run=None,
        )

    def in_template(self, template_id: int) -> np.ndarray:
        """Boolean mask of the instances that hold a template."""
        if self.template_members is None:
            raise ValueError("this explanation has no templates (explain(..., templates=True))")
        mask = np.zeros(len(self), bool)
        mask[self.template_members.loc[self.template_members.template_id == template_id, "instance"].to_numpy()] = True
        return mask

    def retype(self, config: TypingConfig) -> Explanation:
        """The same explanation typed with other thresholds (no model evaluation needed)."""
        return replace(self, typing=config, types=classify(self.shapley, self.interactions, config), _shown_run=None)

    def type_shares(self) -> dict[str, float]:
        """Share of instances of each type; dominance is split by modality as ``dominance:<modality>``."""
        labels = self.type_labels()
        n = max(len(labels), 1)
        keys = [f"dominance:{m}" for m in self.modalities] + ["complement", "conflict", "none"]
        return {k: float((labels == k).sum() / n) for k in keys}

    def type_labels(self) -> np.ndarray:
        """Per instance ``dominance:<modality>``, ``complement``, ``conflict`` or ``none``."""
        labels = self.types.types.astype(object).copy()
        dom = self.types.dominant >= 0
        labels[dom] = [f"dominance:{self.modalities[d]}" for d in self.types.dominant[dom]]
        return labels

    def modality_importance(self) -> dict[str, float]:
        """Mean absolute Shapley value of each modality over the instances."""
        return {
            m: float(np.abs(self.shapley[:, i]).mean()) if len(self) else 0.0 for i, m in enumerate(self.modalities)
        }

    def summary(self) -> dict[str, Any]:
        """Global (or subset) summary: performance, modality importance, type shares and the error within each type."""
        from modalens.data.metrics import performance

        labels = self.type_labels()
        result: dict[str, Any] = {
            "n_instances": len(self),
            "modality_importance": self.modality_importance(),
            "mean_shapley": {
                m: float(self.shapley[:, i].mean()) if len(self) else 0.0 for i, m in enumerate(self.modalities)
            },
            "type_shares": self.type_shares(),
            "interaction_strength": float(self.types.strength.mean()) if len(self) else 0.0,
        }
        if self.dataset.labels is not None and len(self):
            result["performance"] = performance(self.dataset.label_kind, self.dataset.labels, self.outputs)
            correct = self._per_instance_error()
            result["error_by_type"] = {
                k: {"count": int((labels == k).sum()), "error": float(correct[labels == k].mean())}
                for k in result["type_shares"]
                if (labels == k).any()
            }
            result["error_measure"] = "mean absolute error" if self.errors is not None else "error rate"
        shares = self.mm_shap()
        if shares is not None and len(self):
            result["mm_shap"] = {m: float(v) for m, v in shares.groupby("modality", sort=False)["share"].mean().items()}
        return result

    # -- MM-SHAP -----------------------------------------------------------------------------------------------
    @property
    def has_token_or_patch_modality(self) -> bool:
        """Whether some explained modality holds token ids or image patches (MM-SHAP's setting)."""
        return any(
            self.dataset[m].tokens is not None or self.dataset[m].patches is not None
            for m in self.modalities
            if m in self.dataset.modalities
        )

    def mm_shap(self, *, always: bool = False) -> pd.DataFrame | None:
        """MM-SHAP's modality shares (Parcalabescu & Frank, 2023) per instance, from step-level Shapley values.

        For instance i and modality m, ``abs_total`` = sum over m's players (word pieces, patches, frames) of the
        absolute attribution, and ``share`` = ``abs_total`` over the sum for all modalities: T-SHAP is the text's
        share, V-SHAP (= 1 - T-SHAP with two modalities) the image's. An instance whose attributions are all 0 gets
        shares of 0.

        Returns None without step-level attributions, or (unless ``always``) when no explained modality holds
        tokens or patches.
        """
        fa = self.feature_attributions
        if fa is None or (not always and not self.has_token_or_patch_modality):
            return None
        steps = fa[fa["feature"] == "*"]
        if steps.empty:
            return None
        sums = steps.assign(abs=steps["value"].abs()).pivot_table(
            index="instance", columns="modality", values="abs", aggfunc="sum"
        )
        sums = sums.reindex(index=range(len(self)), columns=self.modalities).fillna(0.0)
        total = sums.sum(axis=1).to_numpy()[:, None]
        share = np.divide(sums.to_numpy(), total, out=np.zeros(sums.shape), where=total > 0)
        n, m = share.shape
        return pd.DataFrame(
            {
                "instance": np.repeat(np.arange(n, dtype=np.int64), m),
                "modality": np.tile(np.asarray(self.modalities, dtype=object), n),
                "share": share.reshape(-1),
                "abs_total": sums.to_numpy().reshape(-1),
            }
        )

    def _per_instance_error(self) -> np.ndarray:
        errors = self.errors
        if errors is not None:
            return np.abs(errors)
        return (self.point_predictions != self.dataset.labels).astype(float)

    # -- frames ------------------------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per instance: id, split, label, prediction, error, type, dominant modality, Shapley values ..."""
        n = len(self)
        ds = self.dataset
        frame = pd.DataFrame(
            {
                "instance": np.arange(n, dtype=np.int64),
                "id": ds.ids.astype(str),
                "split": None if ds.splits is None else ds.splits.astype(str),
                "label": np.full(n, np.nan) if ds.labels is None else ds.labels.astype(np.float64),
                "prediction": self.point_predictions.astype(np.float64),
                "target": self.target.astype(np.int64),
                "explained_output": self.predictions,
                "base_value": self.base_values,
                "interaction_type": self.types.types.astype(str),
                "dominant_modality": [self.modalities[d] if d >= 0 else None for d in self.types.dominant],
                "interaction_strength": self.types.strength,
                "text": None if ds.texts is None else ds.texts.astype(str),
            }
        )
        errors = self.errors
        frame["error"] = np.full(n, np.nan) if errors is None else errors
        frame["abs_error"] = np.abs(frame["error"])
        for i, m in enumerate(self.modalities):
            frame[f"shapley_{m}"] = self.shapley[:, i]
        if ds.meta is not None:
            for col in ds.meta.columns:
                frame[f"meta_{col}"] = _parquet_safe(ds.meta[col]).to_numpy()
        return frame

    def modality_frame(self) -> pd.DataFrame:
        """Long table: instance, modality, value, share, role."""
        n, m = self.shapley.shape
        return pd.DataFrame(
            {
                "instance": np.repeat(np.arange(n, dtype=np.int64), m),
                "modality": np.tile(np.asarray(self.modalities, dtype=object), n),
                "value": self.shapley.reshape(-1),
                "share": self.types.shares.reshape(-1),
                "role": self.types.roles.reshape(-1).astype(str),
            }
        )

    def coalition_frame(self) -> pd.DataFrame:
        """Long table: instance, coalition, size, value."""
        present = coalition_matrix(len(self.modalities))
        labels = np.asarray([coalition_label(p, self.modalities) for p in present], dtype=object)
        n, c = self.coalition_values.shape
        return pd.DataFrame(
            {
                "instance": np.repeat(np.arange(n, dtype=np.int64), c),
                "coalition": np.tile(labels, n),
                "size": np.tile(present.sum(1), n).astype(np.int64),
                "value": self.coalition_values.reshape(-1),
            }
        )

    def interaction_frame(self) -> pd.DataFrame:
        """Long table, one row per instance and unordered pair: shapley_interaction, mobius."""
        m = len(self.modalities)
        rows = []
        for i in range(m):
            for j in range(i + 1, m):
                rows.append(
                    pd.DataFrame(
                        {
                            "instance": np.arange(len(self), dtype=np.int64),
                            "modality_i": self.modalities[i],
                            "modality_j": self.modalities[j],
                            "shapley_interaction": self.interactions[:, i, j],
                            "mobius": self.moebius[:, (1 << i) | (1 << j)],
                        }
                    )
                )
        columns = ["instance", "modality_i", "modality_j", "shapley_interaction", "mobius"]
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)

    def feature_importance(self) -> pd.DataFrame | None:
        """Global importance of named features and of words: modality, feature, mean_abs, mean, count."""
        fa = self.feature_attributions
        if fa is None or fa.empty:
            return None
        named = fa[(fa["feature"] != "*") & (fa["position"] < 0)][["modality", "feature", "value"]]  # not cells
        words = fa[(fa["feature"] == "*") & fa["token"].notna() & (fa["token"] != "")]
        wa = self.word_attributions
        if wa is not None and len(wa):  # token modalities: whole words (the sum of their pieces), not pieces
            words = words[~words["modality"].isin(set(wa["modality"]))]
            whole = wa[wa["text"].notna() & (wa["text"] != "")]
            words = pd.concat([words, whole.rename(columns={"text": "token"})], ignore_index=True)
        words = words.assign(feature="word:" + words["token"].str.lower())[["modality", "feature", "value"]]
        both = pd.concat([named, words], ignore_index=True)
        both["abs"] = both["value"].abs()
        out = both.groupby(["modality", "feature"], sort=False).agg(
            mean_abs=("abs", "mean"), mean=("value", "mean"), count=("value", "size")
        )
        return out.reset_index().sort_values("mean_abs", ascending=False, ignore_index=True)

    # -- persistence -------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a run directory (manifest + Parquet tables + dataset.npz + media), atomically.

        Media keys become folder names (``media/<key>/``) only if :func:`modalens.runs.safe_name` accepts them;
        an unsafe key (``../x``, ``a/b``, ``.hidden`` ...) and a target that cannot be written are refused with a
        :class:`~modalens.runs.RunError` before anything is built.
        """
        import tempfile

        check_target(path, overwrite=overwrite)
        for key, column in self.dataset.media.items():
            safe_name(key, "media key")
            safe_name(f"0.{column.extension}", f"media {key!r}: file extension {column.extension!r} gives file name")
        tables = {
            "instances": self.to_frame(),
            "modality_shapley": self.modality_frame(),
            "coalitions": self.coalition_frame(),
            "interactions": self.interaction_frame(),
            "outputs": _outputs_frame(self.outputs, self.model.get("output_names")),
        }
        if self.feature_attributions is not None:
            tables["feature_attributions"] = self.feature_attributions
            importance = self.feature_importance()
            if importance is not None:
                tables["feature_importance"] = importance
            if self.word_attributions is not None and len(self.word_attributions):
                tables["word_attributions"] = self.word_attributions
            shares = self.mm_shap()
            if shares is not None:
                tables["mm_shap"] = shares
        if self.templates is not None:
            tables["templates"] = self.templates
            tables["template_members"] = self.template_members
        if self.projection is not None:
            tables["projection"] = pd.DataFrame(
                {
                    "instance": np.arange(len(self), dtype=np.int64),
                    "x": self.projection[:, 0],
                    "y": self.projection[:, 1],
                }
            )
        files = {}
        with tempfile.TemporaryDirectory() as tmp:
            files[DATASET_FILE] = save_dataset(self.dataset, Path(tmp) / DATASET_FILE).read_bytes()
        for key, column in self.dataset.media.items():
            for row, item in enumerate(column.items):
                if item:  # named by instance row: ids may hold characters a file name cannot
                    files[f"media/{key}/{row}.{column.extension}"] = item
        manifest = {
            "dataset": self.dataset.describe(),
            "model": self.model,
            "modalities": self.modalities,
            "target": self.config.get("target", "predicted"),
            "typing": self.typing.to_dict(),
            "config": self.config,
            "timings": self.timings,
            "global": self.summary(),
            "dataset_measures": self.dataset_measures,
            "media": {k: c.mime for k, c in self.dataset.media.items()},
            "projection": None
            if self.projection is None
            else {"method": str(self.config.get("projection") or "custom"), "seed": self.config.get("seed")},
        }
        return write_run(path, kind="interaction", manifest=manifest, tables=tables, files=files, overwrite=overwrite)

    def show(self, **kwargs: Any) -> Any:
        """Show the explanation in the app, embedded in a notebook (JupyterLab, VS Code; no extension needed).

        The explanation is saved once to a temporary run directory, which later calls reuse. Options go to
        :func:`modalens.app.notebook.show` (``mode="server"`` or ``"inline"``, size ...). The app sits above the
        engine, so it registers itself as the viewer (:func:`set_viewer`) when ``modalens`` is imported.
        """
        import tempfile

        if _VIEWER["show"] is None:
            raise ModalensError("no viewer is registered: import modalens.app.notebook (import modalens does)")
        if self._shown_run is None:
            self._shown_run = self.save(Path(tempfile.mkdtemp(prefix="modalens-")) / "run")
        return _VIEWER["show"](self._shown_run, **kwargs)


_VIEWER: dict[str, Callable[..., Any] | None] = {"show": None}


def set_viewer(show: Callable[..., Any]) -> None:
    """Make ``show(run_dir, **options)`` the viewer behind :meth:`Explanation.show` (the app calls this)."""
    _VIEWER["show"] = show


def load_run(path: str | os.PathLike) -> Explanation:
    """Read an interaction run directory back into an :class:`Explanation` (through :func:`modalens.runs.read_run`)."""
    run = read_run(path)
    if run.kind != "interaction":
        raise RunError(f"{run.path} is a {run.kind!r} run, not an interaction run")
    manifest = run.manifest
    dataset = load_dataset(run.file(DATASET_FILE))
    modalities = list(manifest.modalities)
    n, m = len(dataset), len(modalities)
    coal = run.table("coalitions").sort_values(["instance"], kind="stable")
    present = coalition_matrix(m)
    code_of = {coalition_label(p, modalities): c for c, p in enumerate(present)}
    values = np.zeros((n, 2**m))
    codes = coal["coalition"].map(code_of).to_numpy(dtype=np.int64)
    values[coal["instance"].to_numpy(dtype=np.int64), codes] = coal["value"].to_numpy()
    from modalens.interactions.shapley import interaction_indices, moebius_transform, shapley_values

    cv = values[:, :, None]
    phi = shapley_values(cv)[..., 0]
    inter = interaction_indices(cv)[..., 0]
    typing = TypingConfig(**manifest.typing)
    outputs_frame = run.table("outputs")
    k = len(manifest.model.output_names or []) or int(outputs_frame["output_index"].max() + 1 if n else 1)
    outputs = np.zeros((n, k))
    outputs[outputs_frame["instance"].to_numpy(), outputs_frame["output_index"].to_numpy()] = outputs_frame["value"]
    instances = run.table("instances")
    target = instances.sort_values("instance")["target"].to_numpy().astype(np.int64)
    projection = None
    if run.has_table("projection"):
        proj = run.table("projection").sort_values("instance")
        projection = proj[["x", "y"]].to_numpy()

    explanation = Explanation(
        dataset=dataset,
        modalities=modalities,
        model=manifest.model.model_dump(mode="json", exclude_unset=True),
        target=target,
        outputs=outputs,
        coalition_values=values,
        shapley=phi,
        interactions=inter,
        moebius=moebius_transform(cv)[..., 0],
        typing=typing,
        types=classify(phi, inter, typing),
        feature_attributions=run.optional_table("feature_attributions"),
        word_attributions=run.optional_table("word_attributions"),
        templates=run.optional_table("templates"),
        template_members=run.optional_table("template_members"),
        projection=projection,
        dataset_measures=manifest.dataset_measures,
        config=manifest.config,
        timings=manifest.timings,
    )
    if len(instances) != n:
        raise RunError(f"{run.path}: instances table has {len(instances)} rows, dataset.npz has {n}")
    return explanation


def _parquet_safe(column: pd.Series) -> pd.Series:
    """Object columns of mixed types become strings (None stays None): Parquet needs one type per column."""
    kind = pd.api.types.infer_dtype(column, skipna=True)
    if column.dtype != object or kind in ("string", "boolean", "integer", "floating"):
        return column
    return column.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))


def _outputs_frame(outputs: np.ndarray, names: list[str] | None) -> pd.DataFrame:
    n, k = outputs.shape
    names = names or [f"output {i}" for i in range(k)]
    return pd.DataFrame(
        {
            "instance": np.repeat(np.arange(n, dtype=np.int64), k),
            "output_index": np.tile(np.arange(k, dtype=np.int64), n),
            "output": np.tile(np.asarray(names, dtype=object), n),
            "value": outputs.reshape(-1),
        }
    )
