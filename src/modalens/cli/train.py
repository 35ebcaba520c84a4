"""``modalens train``: fit a reference architecture on a dataset file and save it for ``modalens explain``.

The command loads a dataset (MMSA pickle, CMU-SDK sequences, modalens ``.npz``, or ``demo``), trains one of
:data:`~modalens.models.reference.ARCHITECTURES` with :func:`~modalens.models.training.train`, and writes
``config.json`` + ``model.safetensors`` + ``metrics.json`` into the output directory. The best epoch so far is
saved at every improvement, so Ctrl-C leaves a usable model behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from modalens._core.atomic import write_atomically
from modalens.models.reference import ARCHITECTURES

METRICS_FILE = "metrics.json"


def load_training_data(data: str, fmt: str = "auto", **kwargs: Any) -> Any:
    """Load a dataset for training: ``"demo"`` (the embedded demo set) or a file/folder in any registered format.

    ``kwargs`` go to the format's reader (e.g. ``nonfinite="zero"`` for MMSA pickles with -inf in COVAREP).
    """
    path = Path(data)
    if data == "demo" and not path.exists():
        from modalens.data.demo import load_demo

        return load_demo()
    from modalens.data.loaders import load_dataset

    return load_dataset(path, format=fmt, **kwargs)


def write_metrics(directory: str | Path, history: Any, dataset: Any, *, source: str | None = None) -> Path:
    """Write ``metrics.json``: test and best-validation metrics, split sizes, epochs, timing, dataset identity."""
    import torch

    record = history.to_dict()
    report = {
        "architecture": record["architecture"],
        "dataset": {"name": dataset.name, "source": source, "n_instances": len(dataset)},
        "split_sizes": record["split_sizes"],
        "test": record["test"],
        "best_valid": record["best_valid"],
        "best_epoch": record["best_epoch"],
        "epochs_run": len(record["epochs"]),
        "stopped_early": record["stopped_early"],
        "interrupted": record["interrupted"],
        "train_seconds": record["seconds"],
        "torch_version": torch.__version__,
        "epochs": record["epochs"],
    }
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    return write_atomically(Path(directory) / METRICS_FILE, lambda tmp: Path(tmp).write_text(text))


def _parse_options(pairs: list[str] | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--option")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw  # a bare string such as pool=mean
    return options


def train_command(
    data: str = typer.Argument(..., help="Dataset: an MMSA .pkl, CMU-SDK .csd folder, modalens .npz, or 'demo'."),
    architecture: str = typer.Option("late_lstm", "--architecture", "-a", help=f"One of: {', '.join(ARCHITECTURES)}."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for config.json, model.safetensors, metrics.json."),
    epochs: int = typer.Option(40, help="Maximum epochs."),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    batch_size: int = typer.Option(32, help="Instances per batch."),
    patience: int = typer.Option(8, help="Stop after this many epochs without a better validation score."),
    seed: int = typer.Option(0, help="Seed for weights, shuffling and any held-out validation part."),
    device: str = typer.Option("cpu", help="'cpu' or 'cuda'."),
    format: str = typer.Option("auto", "--format", "-f", help="Dataset format; 'auto' guesses from the path."),
    modality: list[str] | None = typer.Option(None, "--modality", "-m", help="Train on these modalities only."),
    nonfinite: str | None = typer.Option(
        None, help="MMSA/CSD readers: 'zero' replaces NaN/inf features with 0 (MMSA's own choice); default refuses."
    ),
    option: list[str] | None = typer.Option(None, "--option", help="Architecture option KEY=VALUE, e.g. hidden=64."),
    threads: int | None = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a reference model (early_lstm, late_lstm or mult) on a dataset and save it."""
    import torch
    from rich.console import Console
    from rich.table import Table

    from modalens.models.training import save_model, train

    console = Console(stderr=True)
    if architecture not in ARCHITECTURES:
        raise typer.BadParameter(
            f"unknown architecture {architecture!r}; choose one of {list(ARCHITECTURES)}", param_hint="--architecture"
        )
    options = _parse_options(option)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        dataset = load_training_data(data, format, **({"nonfinite": nonfinite} if nonfinite else {}))
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"[bold]{dataset!r}[/bold]")
    try:
        module, history = train(
            dataset,
            architecture,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            device=device,
            patience=patience,
            modalities=modality or None,
            options=options,
            checkpoint_dir=out,
            progress=not quiet,
        )
    except (ValueError, KeyError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    save_model(module, module.config, out, meta={"history": history.to_dict(), "dataset": dataset.describe()})
    write_metrics(out, history, dataset, source=str(data))
    if history.interrupted:
        console.print(f"[yellow]interrupted: kept the best epoch so far ({history.best_epoch})[/yellow]")
    shown = history.test if history.test is not None else history.best_valid
    table = Table(title=f"{architecture} on {dataset.name}: {'test' if history.test is not None else 'valid'} split")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in shown.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
    console.print(table)
    console.print(f"saved to {out}")
