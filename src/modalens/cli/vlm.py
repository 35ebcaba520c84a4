"""``modalens explain-vlm``: a CLIP-like model on images and captions, patches and tokens as players (MM-SHAP).

    modalens explain-vlm PAIRS.csv --model two-tower|two-tower:PATH|hf:DIR --out runs/vlm

PAIRS is a CSV, Parquet or JSONL table with an image column (file paths, relative to the table) and a caption column.
Each image is cut into a ``p x p`` grid of patches (``--patches``, MM-SHAP's ``ceil(sqrt(tokens))`` by default) and
each caption into its model's word pieces; the model's image-text score (or, with ``--classes``, its zero-shot class
over the image alone) is explained by modality Shapley values and by patch and token (or word) Shapley values, from
which MM-SHAP's T-SHAP and V-SHAP follow. The run opens in ``modalens serve``: the instance view draws each image
with its patch heat map and colours the caption's words.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from modalens.cli.common import UsageError, run_explain

console = Console()

FEATURE_METHODS = ("permutation", "exact")


def _baseline(spec: str) -> Any:
    """``mean_colour``, ``blur``, ``zeros`` or an RGB triple ``R,G,B`` in [0, 1]."""
    if spec in ("mean_colour", "blur", "zeros"):
        return spec
    try:
        rgb = [float(x) for x in spec.split(",")]
    except ValueError:
        rgb = []
    if len(rgb) != 3 or not all(0.0 <= x <= 1.0 for x in rgb):
        raise UsageError(f"--image-baseline: expected mean_colour, blur, zeros or R,G,B in [0, 1], got {spec!r}")
    return np.asarray(rgb, dtype=np.float32)


def _token_baseline(spec: str) -> str | int | None:
    if spec == "auto":
        return None
    if spec in ("mask", "pad"):
        return spec
    if spec.isdigit():
        return int(spec)
    raise UsageError(f"--token-baseline: expected auto, mask, pad or a token id, got {spec!r}")


def _patches(spec: str) -> int | str:
    if spec == "auto":
        return spec
    if spec.isdigit() and int(spec) >= 1:
        return int(spec)
    raise UsageError(f"--patches: expected auto or a positive number of patches a side, got {spec!r}")


def build_predictor(
    model: str,
    *,
    classes: list[str] | None,
    prompt: str,
    image_baseline: Any,
    token_baseline: str | int | None,
    device: str,
) -> Any:
    """The predictor of a ``--model`` spec: ``two-tower``, ``two-tower:PATH.safetensors`` or ``hf:DIR``."""
    from modalens.cli.feature_inputs import check_hf_spec, check_model_spec

    check_model_spec(model)
    prompts = None if classes is None else [prompt.format(c) for c in classes]
    options: dict[str, Any] = {"class_prompts": prompts, "class_names": classes, "image_baseline": image_baseline}
    if model.startswith("hf:"):
        from modalens.models.vlm import hf_clip_predictor, load_hf_clip

        folder = check_hf_spec(model)
        if not Path(folder).is_dir():
            raise UsageError(f"{model}: explain-vlm reads a local CLIPModel folder (the hub is offline)")
        clip, tokenizer, mean, std = load_hf_clip(folder)
        return hf_clip_predictor(
            clip, tokenizer, mean=mean, std=std, token_baseline=token_baseline, device=device, name=folder, **options
        )
    from modalens.features.vlm import two_tower_predictor

    weights = model.split(":", 1)[1] if ":" in model else None
    if token_baseline is not None:
        options["token_baseline"] = token_baseline
    return two_tower_predictor(weights=weights, **options)


def explain_vlm_command(
    pairs: Annotated[Path, typer.Argument(help="Table of image-caption pairs: .csv, .parquet or .jsonl")],
    model: Annotated[
        str, typer.Option(help="'two-tower' (the demo model; needs the features extra), 'two-tower:PATH' or 'hf:DIR'")
    ] = "two-tower",
    out: Annotated[Path, typer.Option(help="Run directory to write")] = Path("runs/vlm"),
    image_column: Annotated[str, typer.Option(help="Column of image file paths (relative to the table)")] = "image",
    text_column: Annotated[str, typer.Option(help="Column of captions")] = "caption",
    id_column: Annotated[str | None, typer.Option(help="Column of pair ids (default: row numbers)")] = None,
    patches: Annotated[str, typer.Option(help="Patches a side, or auto: MM-SHAP's ceil(sqrt(most tokens))")] = "auto",
    image_baseline: Annotated[
        str, typer.Option(help="Absent patches: mean_colour (the image's), blur, zeros, or R,G,B in [0, 1]")
    ] = "mean_colour",
    token_baseline: Annotated[
        str, typer.Option(help="Absent word pieces: auto ([MASK], else the model's default), mask, pad or an id")
    ] = "auto",
    players: Annotated[
        str, typer.Option(help="Text players: steps (each word piece) or words (a word's pieces together)")
    ] = "steps",
    feature_method: Annotated[
        str, typer.Option(help="permutation (any size) or exact (all 2^P coalitions; at most 14 players)")
    ] = "permutation",
    n_permutations: Annotated[int, typer.Option(help="Permutation walks per pair (antithetic pairs)")] = 32,
    orders: Annotated[
        str,
        typer.Option(
            help="Walk orders: grid (orders within the image and the caption, every interleaving of the two averaged;"
            " as many encodings as a plain walk, lower error), orthogonal or random"
        ),
    ] = "grid",
    classes: Annotated[
        str | None, typer.Option(help="Comma-separated class names: explain the zero-shot class of each image")
    ] = None,
    prompt: Annotated[
        str, typer.Option(help="Prompt of a class for --classes ('{}' is the class)")
    ] = "a photo of a {}.",
    limit: Annotated[int | None, typer.Option(help="Explain at most this many pairs")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the permutation walks")] = 0,
    batch_size: Annotated[int, typer.Option(help="Model rows per call")] = 1024,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory")] = False,
    name: Annotated[
        str | None, typer.Option(help="The model's display name in the run (default: the --model spec)")
    ] = None,
) -> None:
    """Explain a CLIP-like model on image-caption pairs: modality, patch and token Shapley values and MM-SHAP."""
    from modalens.cli.feature_inputs import read_pairs_table
    from modalens.data.images import image_text_dataset
    from modalens.interactions.config import ExplainConfig

    if feature_method not in FEATURE_METHODS:
        raise UsageError(f"--feature-method: choose from {list(FEATURE_METHODS)}, got {feature_method!r}")
    if orders not in ("grid", "orthogonal", "random"):
        raise UsageError(f"--orders: choose from grid, orthogonal, random; got {orders!r}")
    if players not in ("steps", "words"):
        raise UsageError(f"--players: choose from steps, words; got {players!r}")
    grid = _patches(patches)
    base = _baseline(image_baseline)
    token = _token_baseline(token_baseline)
    class_list = None if classes is None else [c.strip() for c in classes.split(",") if c.strip()]
    if class_list is not None and len(class_list) < 2:
        raise UsageError("--classes: give at least two comma-separated class names")
    _check_out(out, overwrite)
    table = read_pairs_table(pairs, image_column, text_column)
    if limit is not None:
        table = table.head(limit)
    if id_column is not None and id_column not in table.columns:
        raise UsageError(f"{pairs}: no column {id_column!r}; it has {list(table.columns)}")
    images = []
    for i, value in enumerate(table[image_column].tolist()):
        file = Path(str(value))
        file = file if file.is_absolute() else pairs.parent / file
        if not file.is_file():
            raise FileNotFoundError(f"{pairs}: row {i}: image file {file} not found")
        images.append(file)
    predictor = build_predictor(
        model, classes=class_list, prompt=prompt, image_baseline=base, token_baseline=token, device=device
    )
    clock = time.perf_counter()
    dataset = image_text_dataset(
        images,
        [str(c) for c in table[text_column].tolist()],
        predictor.tokenizer,
        image_size=predictor.image_size,
        patches=grid,
        ids=None if id_column is None else [str(x) for x in table[id_column].tolist()],
        name=pairs.stem,
    )
    console.print(
        f"{len(dataset)} pairs: {dataset['image'].patches.rows}x{dataset['image'].patches.cols} patches, up to "
        f"{int(dataset['text'].step_mask().sum(1).max())} tokens ({time.perf_counter() - clock:.1f} s to prepare)"
    )
    config = ExplainConfig(
        feature_method=feature_method,
        granularities=("steps",),
        players=players,
        n_permutations=n_permutations,
        orders=orders,
        templates=False,
        projection="auto" if len(dataset) >= 5 else None,
        batch_size=batch_size,
        seed=seed,
    )
    from modalens.cli.baselines import predictor_record

    # the zero-shot classes and prompt shape the output: serve --model rebuilds the predictor with them
    options = {"classes": class_list, "prompt": prompt}
    record = predictor_record(predictor, dataset, command="explain-vlm", spec=model, options=options)
    explanation = run_explain(
        predictor, dataset, out, config, overwrite=overwrite, unit="pairs", name=name or model, record=record
    )
    _print_mm_shap(explanation)


def _check_out(out: Path, overwrite: bool) -> None:
    """The run folder can be written (and exists only with --overwrite), before anything is computed."""
    from modalens.runs import RunError, check_target

    try:
        check_target(out, overwrite=overwrite)
    except RunError as exc:
        raise typer.BadParameter(
            str(exc).replace("overwrite=True (CLI: --overwrite)", "--overwrite"), param_hint="--out"
        ) from None


def _print_mm_shap(explanation: Any) -> None:
    shares = explanation.mm_shap()
    if shares is None:
        return
    wide = shares.pivot_table(index="instance", columns="modality", values="share")
    table = Table(title="MM-SHAP: each modality's share of the absolute patch and token Shapley values")
    table.add_column("pair")
    for m in wide.columns:
        label = {"text": "T-SHAP", "image": "V-SHAP"}.get(m, m)
        table.add_column(f"{label} ({m})", justify="right")
    table.add_column("score", justify="right")
    ids = explanation.dataset.ids
    for i in wide.index[:20]:
        table.add_row(
            str(ids[i]), *[f"{wide.loc[i, m]:.1%}" for m in wide.columns], f"{explanation.predictions[i]:.3f}"
        )
    console.print(table)
    mean = wide.mean()
    console.print("mean: " + ", ".join(f"{m} {v:.1%}" for m, v in mean.items()))
