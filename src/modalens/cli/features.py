"""``modalens features``: the feature engine's command line (a typer sub-app mounted by ``modalens.cli``).

Commands
--------
demo    Run the embedded Fashion-MNIST two-tower demo and write a run directory.
embed   Embed image-caption pairs (a CSV/Parquet/JSONL table of image paths and texts) to Parquet or npz.
study   Run the feature study on precomputed paired embeddings (npz, Parquet, or two npy files).
study-model
        Run it on a predictor's hidden layer (a named torch layer; dominance over the model's modalities).
compare Compare feature runs: MDS distributions, category shares, features matched across runs.
ablate, remove, steer, attack
        The interventions on a saved run (``modalens.cli.interventions``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modalens.cli.common import UsageError, console, error_exit
from modalens.cli.feature_inputs import (
    check_model_spec,
    load_images,
    load_model,
    read_pairs_table,
    write_embeddings,
)
from modalens.cli.options import with_config
from modalens.features.config import FeatureStudyConfig
from modalens.features.sae import list_extractors

app = typer.Typer(help="Monosemantic multimodal features of CLIP-like models (SAE, MDS, interventions).")


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
    from modalens.runs import RunError, check_target

    try:
        check_target(out_dir, overwrite=overwrite)  # before the demo computes anything
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
        check_model_spec(model)
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
@with_config(FeatureStudyConfig, fixed={"progress": True}, choices={"extractor": list_extractors})
def study(
    embeddings: Annotated[Path, typer.Argument(help=".npz (arrays image, text), .parquet, or the image .npy.")],
    out_dir: Annotated[Path, typer.Argument(help="Run directory to write.")],
    config: FeatureStudyConfig,
    text_npy: Annotated[Path | None, typer.Option(help="Text embeddings .npy when EMBEDDINGS is an .npy.")] = None,
    epochs: Annotated[int, typer.Option(help="Extractor training epochs.")] = 30,
    text_meta: Annotated[str | None, typer.Option(help="Parquet column to show as each pair's text.")] = None,
    label_meta: Annotated[str | None, typer.Option(help="Parquet column to show as each pair's label.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
) -> None:
    """Train a sparse feature extractor on precomputed pairs, score MDS and interpretability, save a run.

    The options from --extractor on are the fields of FeatureStudyConfig.
    """
    from modalens.features.embeddings import EmbeddingError, PrecomputedEmbeddings
    from modalens.features.study import run_feature_study
    from modalens.runs import RunError, check_target

    try:
        check_target(out_dir, overwrite=overwrite)  # exists, writable: before any computation
    except RunError as exc:
        raise error_exit(UsageError(str(exc).replace("overwrite=True (CLI: --overwrite)", "--overwrite"))) from exc
    try:
        pre = PrecomputedEmbeddings.load(embeddings, text_npy)
        for col in (text_meta, label_meta):
            if col is not None and col not in pre.meta.columns:
                raise EmbeddingError(f"{embeddings}: no column {col!r}; it has {list(pre.meta.columns)}")
        result = run_feature_study(
            pre.image_emb,
            pre.text_emb,
            config.updated(extractor_options={"epochs": epochs}),
            texts=pre.meta[text_meta].astype(str).tolist() if text_meta else None,
            labels=pre.meta[label_meta].tolist() if label_meta else None,
            model_info={"name": pre.name, "dim": pre.dim, "source": str(embeddings)},
        )
        path = result.save(out_dir, overwrite=overwrite)
    except (EmbeddingError, RunError, ValueError) as exc:
        raise error_exit(exc) from exc
    _print_summary(result)
    console.print(f"run written to [bold]{path}[/bold]")


@app.command("study-model")
@with_config(FeatureStudyConfig, fixed={"progress": True}, choices={"extractor": list_extractors})
def study_model(
    data: Annotated[str, typer.Argument(help="Dataset file (any format modalens reads), or 'demo'.")],
    out_dir: Annotated[Path, typer.Argument(help="Run directory to write.")],
    config: FeatureStudyConfig,
    model: Annotated[str, typer.Option(help="A model directory (modalens train) or pretrained:ARCH (e.g. mult).")] = (
        "pretrained:mult"
    ),
    layer: Annotated[
        str, typer.Option(help="Named layer to read (NAME, or NAME:input for its input; head:input for MulT).")
    ] = "head:input",
    split: Annotated[str | None, typer.Option(help="Split to study (default: every instance).")] = None,
    limit: Annotated[int | None, typer.Option(help="Study at most this many instances.")] = None,
    baseline: Annotated[str, typer.Option(help="Baseline of absent modalities: zeros or mean (train split).")] = "mean",
    epochs: Annotated[int, typer.Option(help="Extractor training epochs.")] = 30,
    n_top: Annotated[int, typer.Option(help="Features kept per instance (largest attribution).")] = 5,
    data_format: Annotated[str, typer.Option("--format", help="Dataset format, or auto")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
) -> None:
    """Feature study on a predictor's hidden layer: SAE features, their dominance over the model's modalities (each
    modality alone, the rest at baseline) and each instance's prediction attributed to them.

    Serve it with an interaction run of the same data (modalens serve INTERACTION_RUN FEATURE_RUN). The options
    from --extractor on are the fields of FeatureStudyConfig.
    """
    from modalens.cli.model_features import load_reference_model
    from modalens.cli.model_features import study_model as run_study
    from modalens.runs import RunError, check_target

    try:
        check_target(out_dir, overwrite=overwrite)
    except RunError as exc:
        raise error_exit(UsageError(str(exc).replace("overwrite=True (CLI: --overwrite)", "--overwrite"))) from exc
    try:
        if data == "demo":
            from modalens.data.demo import load_demo

            full = load_demo()
        else:
            from modalens.data.loaders import load_dataset

            full = load_dataset(Path(data), format=data_format)
        dataset = full.split(split) if split is not None else full
        if limit is not None:
            dataset = dataset.take(range(min(limit, len(dataset))))
        has_train = full.splits is not None and "train" in set(full.splits)
        module, name = load_reference_model(model, device=config.device)
        result = run_study(
            module,
            dataset,
            layer,
            config.updated(extractor_options={"epochs": epochs, **dict(config.extractor_options)}),
            baseline_data=full.split("train") if has_train else full,
            baseline=baseline,
            n_top=n_top,
            model_name=name,
        )
        path = result.save(out_dir, overwrite=overwrite)
    except (RunError, ValueError) as exc:
        raise error_exit(exc) from exc
    _print_summary(result)
    console.print(f"run written to [bold]{path}[/bold]")


@app.command()
def compare(
    runs: Annotated[
        list[Path], typer.Argument(help="Two or more feature run directories (the first is the reference).")
    ],
    match: Annotated[
        str, typer.Option(help="How features are matched: activation (same pairs), decoder (same model) or auto.")
    ] = "auto",
    out: Annotated[Path | None, typer.Option(help="Also write the summary and every match as JSON here.")] = None,
) -> None:
    """Compare feature runs: MDS distributions, category shares with intervals and chance, and matched features.

    Runs of different models over the same image-caption pairs are matched by activation; runs in one embedding
    space (an SAE and NCL on one model) can also be matched by decoder cosine.
    """
    from modalens.features.compare import MATCHES, compare_runs, load_runs
    from modalens.features.errors import FeatureError
    from modalens.runs import RunError

    try:
        if match not in MATCHES:
            raise UsageError(f"--match must be one of {', '.join(MATCHES)}, got {match!r}")
        if len(runs) < 2:
            raise UsageError("give at least two feature run directories to compare")
        for r in runs:
            if not r.is_dir():
                raise UsageError(f"{r}: no such run directory")
        result = compare_runs(load_runs(runs), match=match)
    except (FeatureError, RunError, ValueError, OSError) as exc:
        raise error_exit(exc) from exc
    _print_comparison(result)
    if out is not None:
        doc = {
            "runs": result["runs"],
            "pairs": [{"summary": p["summary"], "matches": p["matches"].to_dict("records")} for p in result["pairs"]],
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1, default=float))
        console.print(f"written to [bold]{out}[/bold]")


def _print_comparison(result) -> None:
    t = Table(title="Feature runs")
    for col in ("run", "model", "extractor", "L0", "live features", "MDS median", "stable"):
        t.add_column(col, justify="right")
    for r in result["runs"]:
        l0, stable = r.get("l0"), r.get("stable_share")
        t.add_row(
            r["run"],
            str(r.get("model") or "-"),
            r["extractor"],
            f"{l0:.1f}" if l0 is not None else "-",
            str(r["n_live"]),
            f"{r['mds_median']:.3f}",
            f"{stable:.0%}" if stable is not None else "-",
        )
    console.print(t)
    s = Table(title="Category shares: bootstrap interval, and chance (modality-swap null)")
    for col in ("run", "category", "share", "interval", "chance", "stable features"):
        s.add_column(col, justify="right")
    for r in result["runs"]:
        for c in ("vision", "language", "cross-modal"):
            share, ci, null = r["shares"].get(c), r["share_ci"].get(c), r["null_shares"].get(c)
            s.add_row(
                r["run"],
                c,
                f"{share:.1%}" if share is not None else "-",
                f"{ci[0]:.1%} - {ci[1]:.1%}" if ci else "-",
                f"{null:.1%}" if null is not None else "-",
                str(r["stable_counts"].get(c, "-")),
            )
    console.print(s)
    m = Table(title="Matched features (each live feature of A and its best match in B)")
    for col in ("A", "B", "method", "median score", "matched >= 0.5", "same category", "MDS corr."):
        m.add_column(col, justify="right")
    for p in result["pairs"]:
        s = p["summary"]
        m.add_row(
            s["a"],
            s["b"],
            s["method"],
            f"{s['median_score']:.3f}",
            f"{s['share_good']:.1%}",
            f"{s['category_agreement']:.1%}",
            f"{s['mds_correlation']:.3f}",
        )
    console.print(m)


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
