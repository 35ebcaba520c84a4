"""``modalens features ablate | remove | steer | attack``: the interventions on a saved feature run.

Each command loads the run's extractor and feature categories and acts on embeddings *of the same model*: either a
file written by ``modalens features embed`` (``.parquet``, which keeps label and attribute columns, or ``.npz``) or
``demo``, the embedded Fashion-MNIST pairs with their class prompts, labels and shade attribute. Results print as a
table on stdout and, with ``--out``, are written in full as CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from modalens.cli.common import UsageError, console, error_exit
from modalens.cli.feature_inputs import check_model_spec, check_width, load_images, load_model, read_pairs_table

DEMO = "demo"


@dataclass
class Inputs:
    """Embeddings to intervene on, with the optional zero-shot task and the metadata columns."""

    image_emb: np.ndarray
    text_emb: np.ndarray
    meta: pd.DataFrame
    class_emb: np.ndarray | None = None
    labels: np.ndarray | None = None
    images: list[Any] | None = None


def load_inputs(spec: str, class_emb: Path | None = None, label_column: str | None = None) -> Inputs:
    """``demo`` or an embeddings file, with class-prompt embeddings (``.npy`` [C, d]) and integer labels."""
    if spec == DEMO:
        from modalens.features.demo import load_demo_assets

        assets = load_demo_assets()
        inputs = Inputs(
            assets.image_emb,
            assets.text_emb,
            assets.meta,
            assets.class_prompt_emb,
            assets.labels,
            list(assets.images),
        )
    else:
        from modalens.features.embeddings import PrecomputedEmbeddings

        if Path(spec).suffix.lower() not in (".parquet", ".npz"):
            raise UsageError(f"{spec}: embeddings must be 'demo', a .parquet or an .npz file (modalens features embed)")
        pre = PrecomputedEmbeddings.load(spec)
        inputs = Inputs(pre.image_emb, pre.text_emb, pre.meta)
    if class_emb is not None:
        inputs.class_emb = _load_class_emb(class_emb, inputs.image_emb.shape[1])
    if label_column is not None:
        inputs.labels = _labels(inputs.meta, label_column, spec)
    if (inputs.class_emb is None) != (inputs.labels is None):
        raise UsageError("zero-shot accuracy needs both --class-emb and --label-column (or neither)")
    if inputs.labels is not None and (inputs.labels.min() < 0 or inputs.labels.max() >= len(inputs.class_emb)):
        raise UsageError(
            f"labels must index the {len(inputs.class_emb)} class embeddings, got range "
            f"[{inputs.labels.min()}, {inputs.labels.max()}]"
        )
    return inputs


def _load_class_emb(path: Path, dim: int) -> np.ndarray:
    try:
        emb = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read class embeddings as .npy (pickled arrays are refused): {exc}") from exc
    if emb.ndim != 2 or emb.shape[1] != dim:
        raise UsageError(f"{path}: class embeddings must be [C, {dim}] like the pairs, got shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise UsageError(f"{path}: class embeddings contain NaN or inf")
    from modalens.features.embeddings import l2_normalise

    return l2_normalise(emb.astype(np.float32))  # the pairs are unit-norm too: the extractor sees one scale


def _labels(meta: pd.DataFrame, column: str, spec: str) -> np.ndarray:
    if column not in meta.columns:
        raise UsageError(f"{spec}: no column {column!r}; it has {list(meta.columns)}")
    values = meta[column].to_numpy()
    if not np.issubdtype(values.dtype, np.integer):
        raise UsageError(f"{spec}: column {column!r} must hold integer class indices, got dtype {values.dtype}")
    return values.astype(np.int64)


def _run_parts(run: Path) -> tuple[Any, np.ndarray]:
    from modalens.features.study import load_feature_study

    return load_feature_study(run).extractor_and_categories()


def _show(frame: pd.DataFrame, title: str, out: Path | None) -> None:
    """The result table on stdout (without the long columns) and, with ``out``, all of it as CSV."""
    from rich.console import Console

    shown = frame.drop(columns=[c for c in ("intervention", "details") if c in frame.columns])
    table = Table(title=title)
    for col in shown.columns:
        table.add_column(str(col), justify="right")
    for row in shown.itertuples(index=False):
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    Console().print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
        console.print(f"written to [bold]{out}[/bold]")


def _check_groups(groups: list[str] | None, categories: np.ndarray) -> None:
    valid = sorted(set(categories) - {"inactive"})
    unknown = [g for g in groups or [] if g not in valid]
    if unknown:
        raise UsageError(f"unknown group(s) {unknown}; this run's categories are {valid}")


def _fail(exc: Exception) -> typer.Exit:
    return error_exit(exc)


RunArg = Annotated[Path, typer.Argument(help="A feature run directory (modalens features study / demo).")]
EmbArg = Annotated[
    str, typer.Argument(help="'demo', or embeddings of the run's model: .parquet (with metadata columns) or .npz.")
]
ClassEmbOpt = Annotated[Path | None, typer.Option(help="Class-prompt embeddings .npy [C, d] for zero-shot accuracy.")]
LabelOpt = Annotated[str | None, typer.Option(help="Metadata column of integer class indices (zero-shot).")]
OutOpt = Annotated[Path | None, typer.Option(help="Also write the table as CSV here.")]


def ablate(
    run: RunArg,
    embeddings: EmbArg,
    class_emb: ClassEmbOpt = None,
    label_column: LabelOpt = None,
    group: Annotated[list[str] | None, typer.Option(help="Categories to ablate (repeatable; default all).")] = None,
    n_random: Annotated[int, typer.Option(min=1, help="Random groups of equal size, the control.")] = 3,
    seed: int = 0,
    out: OutOpt = None,
) -> None:
    """Zero the vision-, language- or cross-modal features; measure zero-shot accuracy and retrieval."""
    from modalens.features.interventions import group_ablation

    try:
        ext, cats = _run_parts(run)
        _check_groups(group, cats)
        data = load_inputs(embeddings, class_emb, label_column)
        check_width(data.image_emb, ext.d_in, embeddings, run)
        frame = group_ablation(
            ext,
            data.image_emb,
            data.text_emb,
            cats,
            class_text_emb=data.class_emb,
            labels=data.labels,
            groups=group,
            n_random=n_random,
            seed=seed,
        )
    except (ValueError, OSError) as exc:
        raise _fail(exc) from exc
    _show(frame, "Group ablation (control: random groups of the same size)", out)


def remove(
    run: RunArg,
    embeddings: EmbArg,
    attribute_column: Annotated[str, typer.Option(help="Metadata column of the protected attribute.")],
    class_emb: ClassEmbOpt = None,
    label_column: LabelOpt = None,
    n_features: Annotated[int, typer.Option(min=1, help="Features removed per group.")] = 8,
    n_random: Annotated[int, typer.Option(min=1, help="Random feature sets of equal size, the control.")] = 3,
    seed: int = 0,
    out: OutOpt = None,
) -> None:
    """Remove the features that carry an attribute, per category; measure leakage and task accuracy."""
    from modalens.features.interventions import concept_removal

    try:
        ext, cats = _run_parts(run)
        data = load_inputs(embeddings, class_emb, label_column)
        check_width(data.image_emb, ext.d_in, embeddings, run)
        if attribute_column not in data.meta.columns:
            raise UsageError(f"{embeddings}: no column {attribute_column!r}; it has {list(data.meta.columns)}")
        attribute = pd.factorize(data.meta[attribute_column])[0]
        frame = concept_removal(
            ext,
            data.image_emb,
            attribute,
            cats,
            n_features=n_features,
            class_text_emb=data.class_emb,
            labels=data.labels,
            n_random=n_random,
            seed=seed,
        )
    except (ValueError, OSError) as exc:
        raise _fail(exc) from exc
    _show(frame, f"Removal of {attribute_column!r} (probe accuracy = leakage)", out)


def steer(
    run: RunArg,
    embeddings: EmbArg,
    feature: Annotated[int, typer.Option(help="Feature to steer towards.")],
    alpha: Annotated[float, typer.Option(help="Strength (add: along the unit direction).")] = 1.0,
    mode: Annotated[str, typer.Option(help="add or scale.")] = "add",
    side: Annotated[str, typer.Option(help="Steer the text (queries) or image embeddings.")] = "text",
    k: Annotated[int, typer.Option(min=1, help="Retrieval depth for precision@k.")] = 10,
    save: Annotated[
        Path | None, typer.Option(help="Write the steered embeddings (.npy): the text-to-image hook.")
    ] = None,
    out: OutOpt = None,
) -> None:
    """Steer embeddings towards a feature and show retrieval from the other side follow it."""
    from modalens.features.interventions import steer as steer_embeddings
    from modalens.features.interventions import steering_retrieval

    try:
        if side not in ("text", "image"):
            raise UsageError(f"--side must be 'text' or 'image', got {side!r}")
        ext, _ = _run_parts(run)
        data = load_inputs(embeddings)
        check_width(data.image_emb, ext.d_in, embeddings, run)
        queries, gallery = (data.text_emb, data.image_emb) if side == "text" else (data.image_emb, data.text_emb)
        steered = steer_embeddings(ext, queries, feature, alpha=alpha, mode=mode)
        table = steering_retrieval(ext, queries, gallery, feature, alphas=(0.0, alpha / 2, alpha), k=k, mode=mode)
    except (ValueError, OSError) as exc:
        raise _fail(exc) from exc
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        np.save(save, steered.astype(np.float32))
    _show(table, f"Steering {side} embeddings towards feature {feature}: retrieval of its carriers", out)


def attack(
    run: RunArg,
    images: Annotated[str, typer.Argument(help="'demo', or a pairs table (CSV, Parquet, JSONL) with image paths.")],
    feature: Annotated[list[int], typer.Option(help="Target feature (repeatable).")],
    model: Annotated[
        str, typer.Option(help="The run's model: 'two-tower', 'two-tower:PATH' or 'hf:DIR'.")
    ] = "two-tower",
    image_column: Annotated[str, typer.Option(help="Column of image paths in the pairs table.")] = "image",
    direction: Annotated[str, typer.Option(help="raise or lower.")] = "raise",
    eps: Annotated[float, typer.Option(help="L-inf budget in [0, 1] pixel units (8/255 = 0.0314).")] = 8 / 255,
    steps: Annotated[int, typer.Option(help="PGD steps.")] = 20,
    limit: Annotated[int, typer.Option(min=1, help="Attack at most this many images.")] = 8,
    class_emb: ClassEmbOpt = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    seed: int = 0,
    save_dir: Annotated[Path | None, typer.Option(help="Write the perturbed images here as PNG.")] = None,
    out: OutOpt = None,
) -> None:
    """Cross-modal adversarial images: a bounded pixel perturbation that moves chosen features."""
    from modalens.features.interventions import feature_attack

    try:
        check_model_spec(model)
        ext, _ = _run_parts(run)
        class_text = None if class_emb is None else _load_class_emb(class_emb, ext.d_in)
        if images == DEMO:
            demo = load_inputs(DEMO)
            pictures = demo.images[:limit]
            class_text = demo.class_emb if class_text is None else class_text
        else:
            table = read_pairs_table(Path(images), image_column, image_column)
            pictures = load_images(table[image_column].astype(str).tolist()[:limit], Path(images).parent)
        embedder = load_model(model, device=device)
        if getattr(embedder, "dim", ext.d_in) != ext.d_in:
            raise UsageError(f"model {model!r} embeds in {embedder.dim} dims; the run's extractor reads {ext.d_in}")
        ext.to(device)
        result = feature_attack(
            embedder,
            ext,
            pictures,
            feature,
            direction=direction,
            eps=eps,
            steps=steps,
            class_text_emb=class_text,
            seed=seed,
            device=device,
        )
    except (ValueError, OSError, ImportError, RuntimeError) as exc:  # RuntimeError: torch, e.g. no CUDA device
        raise _fail(exc) from exc
    if save_dir is not None:
        _save_pngs(result.pixels, save_dir)
    title = f"Attack ({direction} features {feature}, L-inf {result.delta_linf:.4f})"
    if not np.isnan(result.flip_rate):
        title += f": zero-shot prediction changed on {result.flip_rate:.0%} of images"
    _show(result.to_frame(), title, out)


def _save_pngs(pixels: Any, folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    arrays = (pixels.detach().cpu().clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    for i, arr in enumerate(arrays):
        Image.fromarray(arr).save(folder / f"{i:04d}.png")


def register(app: typer.Typer) -> None:
    """Mount the intervention commands on the ``modalens features`` app."""
    for command in (ablate, remove, steer, attack):
        app.command(command.__name__)(command)
