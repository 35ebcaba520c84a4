"""``modalens features``: the feature engine's command line (a typer sub-app mounted by ``modalens.cli``).

Commands
--------
demo    Run the embedded Fashion-MNIST two-tower demo and write a run directory.
embed   Embed image-caption pairs (a CSV/Parquet/JSONL table of image paths and texts) to Parquet or npz.
study   Run the feature study on precomputed paired embeddings (npz, Parquet, or two npy files).
ablate, remove, steer, attack
        The interventions on a saved run (``modalens.features.cli_interventions``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(help="Monosemantic multimodal features of CLIP-like models (SAE, MDS, interventions).")
console = Console(stderr=True, soft_wrap=True)  # paths in errors stay whole, never wrapped


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Argument(help="Run directory to write.")] = Path("runs/features-demo"),
    extractor: Annotated[str, typer.Option(help="topk, relu or ncl.")] = "topk",
    d_sae: Annotated[int | None, typer.Option(help="Number of features (default 4 x embedding dim).")] = None,
    epochs: Annotated[int, typer.Option(help="Extractor training epochs.")] = 30,
    topk: Annotated[int, typer.Option(help="Active features per sample (topk extractor).")] = 16,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for MDS intervals.")] = 200,
    attack_images: Annotated[int, typer.Option(help="Images to attack (needs the image tower; 0 = skip).")] = 8,
    max_pairs: Annotated[int | None, typer.Option(help="Use only this many pairs (class-balanced): quick run.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
) -> None:
    """Analyse the embedded two-tower model (EfficientNet-Lite0 + MiniLM) on Fashion-MNIST image-caption pairs."""
    from modalens.features.demo import run_demo
    from modalens.runs import RunError

    try:
        study, path = run_demo(
            out_dir,
            extractor=extractor,
            d_sae=d_sae,
            epochs=epochs,
            topk=topk,
            n_boot=n_boot,
            attack_images=attack_images,
            max_pairs=max_pairs,
            seed=seed,
            overwrite=overwrite,
            progress=True,
        )
    except (RunError, ValueError) as exc:
        raise error_exit(exc) from exc
    _print_summary(study)
    console.print(f"run written to [bold]{path}[/bold]  (open it with: modalens serve {path})")


@app.command()
def embed(
    pairs: Annotated[Path, typer.Argument(help="CSV, Parquet or JSONL table with an image-path and a text column.")],
    out: Annotated[Path, typer.Argument(help="Output .parquet (embeddings + the table's other columns) or .npz.")],
    model: Annotated[
        str,
        typer.Option(
            help="'two-tower' (the demo projections; needs the features extra), 'two-tower:PATH.safetensors', "
            "or 'hf:DIR_OR_ID' (a transformers CLIPModel)."
        ),
    ] = "two-tower",
    image_column: Annotated[
        str, typer.Option(help="Column of image paths (relative to the table's folder).")
    ] = "image",
    text_column: Annotated[str, typer.Option(help="Column of texts.")] = "text",
    batch_size: Annotated[int, typer.Option()] = 64,
    cache_dir: Annotated[Path | None, typer.Option(help="On-disk embedding cache (resumable).")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda (hf models).")] = "cpu",
) -> None:
    """Embed paired images and texts with a CLIP-like model, in batches with progress and an optional cache."""
    from modalens.features.embeddings import EmbeddingError, PrecomputedEmbeddings, extract_embeddings

    if out.suffix.lower() not in (".parquet", ".npz"):
        raise error_exit(ValueError(f"{out}: output must end in .parquet or .npz"))
    try:
        table = read_pairs_table(pairs, image_column, text_column)
        images = load_images(table[image_column].astype(str).tolist(), pairs.parent)
        emb_model = load_model(model, device=device)
        out_emb = extract_embeddings(
            emb_model,
            images=images,
            texts=table[text_column].astype(str).tolist(),
            batch_size=batch_size,
            cache_dir=cache_dir,
        )
    except (EmbeddingError, ValueError, FileNotFoundError, ImportError) as exc:
        raise error_exit(exc) from exc
    result = PrecomputedEmbeddings(out_emb["image"], out_emb["text"], meta=table, name=emb_model.name)
    write_embeddings(result, out)
    console.print(f"{len(result)} pairs x {result.dim} dims ({emb_model.name}) -> [bold]{out}[/bold]")


@app.command()
def study(
    embeddings: Annotated[Path, typer.Argument(help=".npz (arrays image, text), .parquet, or the image .npy.")],
    out_dir: Annotated[Path, typer.Argument(help="Run directory to write.")],
    text_npy: Annotated[Path | None, typer.Option(help="Text embeddings .npy when EMBEDDINGS is an .npy.")] = None,
    extractor: Annotated[str, typer.Option(help="topk, relu or ncl.")] = "topk",
    d_sae: Annotated[int | None, typer.Option(help="Number of features (default 4 x embedding dim).")] = None,
    epochs: Annotated[int, typer.Option()] = 30,
    text_meta: Annotated[str | None, typer.Option(help="Parquet column to show as each pair's text.")] = None,
    label_meta: Annotated[str | None, typer.Option(help="Parquet column to show as each pair's label.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    overwrite: Annotated[bool, typer.Option()] = False,
) -> None:
    """Train a sparse feature extractor on precomputed pairs, score MDS and interpretability, save a run."""
    from modalens.features.embeddings import EmbeddingError, PrecomputedEmbeddings
    from modalens.features.study import run_feature_study
    from modalens.runs import RunError

    try:
        pre = PrecomputedEmbeddings.load(embeddings, text_npy)
        for col in (text_meta, label_meta):
            if col is not None and col not in pre.meta.columns:
                raise EmbeddingError(f"{embeddings}: no column {col!r}; it has {list(pre.meta.columns)}")
        result = run_feature_study(
            pre.image_emb,
            pre.text_emb,
            extractor=extractor,
            d_sae=d_sae,
            extractor_options={"epochs": epochs},
            texts=pre.meta[text_meta].astype(str).tolist() if text_meta else None,
            labels=pre.meta[label_meta].tolist() if label_meta else None,
            model_info={"name": pre.name, "dim": pre.dim, "source": str(embeddings)},
            seed=seed,
            progress=True,
        )
        path = result.save(out_dir, overwrite=overwrite)
    except (EmbeddingError, RunError, ValueError) as exc:
        raise error_exit(exc) from exc
    _print_summary(result)
    console.print(f"run written to [bold]{path}[/bold]")


# ----------------------------------------------------------------------------------------------------------------
# helpers (public so scripts and tests can use them)


def error_exit(exc: Exception) -> typer.Exit:
    """Say what was wrong in one line on stderr; the caller raises the returned exit (status 2)."""
    console.print(f"[red]error:[/red] {escape(str(exc))}")
    return typer.Exit(2)


def read_pairs_table(path: Path, image_column: str, text_column: str) -> pd.DataFrame:
    """A table of pairs from CSV, Parquet or JSONL, checked for the two columns."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if suffix == ".csv":
        table = pd.read_csv(path)
    elif suffix == ".parquet":
        table = pd.read_parquet(path)
    elif suffix in (".jsonl", ".ndjson"):
        table = pd.read_json(path, lines=True)
    else:
        raise ValueError(f"{path}: unknown table type {suffix!r}; expected .csv, .parquet or .jsonl")
    missing = [c for c in (image_column, text_column) if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; it has {list(table.columns)}")
    return table.reset_index(drop=True)


def load_images(paths: list[str], base: Path) -> list[np.ndarray]:
    """Read image files (relative paths resolve against ``base``) as uint8 RGB arrays."""
    from PIL import Image

    out = []
    for i, p in enumerate(paths):
        file = Path(p) if os.path.isabs(p) else base / p
        if not file.is_file():
            raise FileNotFoundError(f"row {i}: image file {file} not found")
        with Image.open(file) as im:
            out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    return out


def load_model(spec: str, *, device: str = "cpu"):
    """An EmbeddingModel from a spec: ``two-tower``, ``two-tower:PATH``, or ``hf:DIR_OR_ID``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if spec == "two-tower" or spec.startswith("two-tower:"):
        from modalens.features.demo import DEMO_ASSETS
        from modalens.features.two_tower import TwoTowerModel

        path = spec.split(":", 1)[1] if ":" in spec else DEMO_ASSETS / "projection.safetensors"
        return TwoTowerModel.load(path)
    if spec.startswith("hf:"):
        from modalens.features.embeddings import HFCLIPModel

        return HFCLIPModel.from_pretrained(spec[3:], device=device)
    raise ValueError(f"unknown model {spec!r}; use 'two-tower', 'two-tower:PATH.safetensors' or 'hf:DIR_OR_ID'")


def write_embeddings(result, out: Path) -> None:
    """Parquet (list columns + metadata) or npz (arrays ``image``, ``text``)."""
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        result.save_parquet(out)
    elif suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, image=result.image_emb, text=result.text_emb)
    else:
        raise ValueError(f"{out}: output must end in .parquet or .npz")


def _print_summary(study) -> None:
    table = Table(title="Feature categories (share of active features)")
    table.add_column("category")
    table.add_column("share", justify="right")
    for cat, share in study.proportions.items():
        table.add_row(str(cat), f"{share:.1%}")
    console.print(table)
    iv = study.interventions
    if iv is not None and len(iv):
        zs = iv[(iv.intervention == "group_ablation") & (iv.metric == "zero_shot_accuracy")]
        if len(zs):
            t = Table(title="Zero-shot accuracy when a feature group is ablated")
            for col in ("group", "n_features", "before", "after", "control"):
                t.add_column(col, justify="right")
            for _, r in zs.iterrows():
                t.add_row(str(r.group), str(r.n_features), f"{r.before:.3f}", f"{r.after:.3f}", f"{r.control:.3f}")
            console.print(t)
    console.print(json.dumps({k: round(v, 2) for k, v in study.timings.items()}), highlight=False)


def _mount_interventions() -> None:
    from modalens.features.cli_interventions import register

    register(app)


_mount_interventions()
