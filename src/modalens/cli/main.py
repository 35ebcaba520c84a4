"""The ``modalens`` command line: demo, explain, truth, methods, and the mounted train, serve, export, features."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from modalens._core.errors import ModalensError
from modalens.cli.baselines import predictor_record
from modalens.cli.common import run_explain
from modalens.cli.live_model import load_predictor
from modalens.cli.options import with_config
from modalens.interactions.api import list_methods
from modalens.interactions.config import ExplainConfig

app = typer.Typer(help="See how multimodal models use their modalities.", no_args_is_help=True, add_completion=False)
console = Console()

DEFAULT_DEMO_RUN = Path("runs/demo")
DEMO_ARCHITECTURE = "mult"  # the best of the three reference models on the demo test split
SYNTHETIC_TITLE = "synthetic glass-box example"


_debug = {"on": False}


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of any error")] = False,
) -> None:
    """See how multimodal models use their modalities."""
    _debug["on"] = debug


METHOD_CHOICES = {  # the registered methods are the choices of --method and --feature-method
    "method": lambda: list_methods()["modality"],
    "feature_method": lambda: [*list_methods()["feature"], "none"],
}


def main(argv: list[str] | None = None) -> None:
    """Run the command line; modalens' own errors end in one ``error:`` line and exit status 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub from the CLI
    try:
        app(args=argv)  # click itself reports usage errors and exits
    except (ModalensError, OSError, zipfile.BadZipFile) as exc:
        # Bad input (a ModalensError names what was wrong; a missing or unreadable file is an OSError; a truncated
        # .npz a BadZipFile) gets one clear line.
        if _debugging():
            raise
        _error_line(str(exc))
        raise SystemExit(2) from None
    except Exception as exc:  # anything else is a bug, in modalens or a library: say so, and how to see more
        if _debugging():
            raise
        _error_line(f"{type(exc).__name__}: {exc} (an unexpected error; --debug shows the traceback)")
        raise SystemExit(1) from None


def _debugging() -> bool:
    return _debug["on"] or bool(os.environ.get("MODALENS_DEBUG"))


def _error_line(message: str) -> None:
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(message)}")


@app.command()
def methods() -> None:
    """List the registered explanation methods by level, with their declared capabilities and options."""
    from modalens.interactions.methods import CAPABILITIES, LEVELS, method_specs

    for level in LEVELS:
        console.print(f"[bold]{level}[/bold]")
        for spec in method_specs(level):
            aliases = f" (also {', '.join(spec.aliases)})" if spec.aliases else ""
            flags = ", ".join(f"{c.replace('_', ' ')}: {'yes' if getattr(spec, c) else 'no'}" for c in CAPABILITIES)
            console.print(
                f"  [bold]{escape(spec.name)}[/bold]{escape(aliases)}: {escape(spec.description)}", soft_wrap=True
            )
            console.print(f"    {flags}", soft_wrap=True, markup=False)
            console.print(f"    options: {', '.join(sorted(spec.options)) or 'none'}", soft_wrap=True, markup=False)


@app.command()
@with_config(ExplainConfig, fixed={"progress": True}, choices=METHOD_CHOICES)
def explain(
    data: Annotated[Path, typer.Argument(help="Dataset file: MMSA .pkl, CMU-SDK .csd folder, modalens .npz")],
    model: Annotated[
        str,
        typer.Option(
            help="A trained model directory (modalens train), demo[:ARCH] (the demo's reference model), "
            "'pkg.module:factory', or an MMSA checkpoint: "
            "mmsa:[MODEL:]CHECKPOINT.pth|DIR[:CONFIG.json][:dataset=..][:pretrained=BERT_DIR] (docs/mmsa.md)"
        ),
    ],
    config: ExplainConfig,
    out: Annotated[Path, typer.Option(help="Run directory to write")] = Path("runs/explain"),
    split: Annotated[str | None, typer.Option(help="Split to explain (default: test when the data has one)")] = None,
    data_format: Annotated[str, typer.Option("--format", help="Dataset format, or auto")] = "auto",
    baseline: Annotated[str, typer.Option(help="Baseline for absent modalities: zeros or mean")] = "mean",
    limit: Annotated[int | None, typer.Option(help="Explain at most this many instances")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda (torch models)")] = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory")] = False,
    name: Annotated[
        str | None, typer.Option(help="The model's display name in the run (default: the --model spec)")
    ] = None,
) -> None:
    """Explain a model on a dataset and write a run directory (the options from --method on are ExplainConfig's)."""
    from modalens.data.loaders import load_dataset

    _check_out(out, overwrite)
    mmsa = _mmsa_spec(model)
    full = load_dataset(data, format=data_format, **_mmsa_load_options(mmsa, data, data_format))
    _check_out(out, overwrite, full)
    dataset = _choose_split(full, split)
    if limit is not None:
        dataset = dataset.take(range(min(limit, len(dataset))))
    predictor = _load_predictor(model, dataset, baseline=baseline, device=device, mmsa=mmsa)
    predictor.masker.fit(_baseline_data(full))
    record = predictor_record(predictor, dataset, command="explain", spec=model)
    run_explain(predictor, dataset, out, config, overwrite=overwrite, name=name or model, record=record)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Run directory to write")] = DEFAULT_DEMO_RUN,
    synthetic: Annotated[bool, typer.Option(help="Use the small synthetic glass-box example")] = False,
    serve: Annotated[bool, typer.Option(help="Open the app on the run when done")] = True,
    port: int = 8765,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory")] = True,
    name: Annotated[
        str | None,
        typer.Option(help="The model's display name in the run (default: 'MulT-style reference (demo)')"),
    ] = None,
) -> None:
    """Run the whole pipeline on the embedded default and open the app."""
    from modalens.models import Masker

    _check_out(out, overwrite)
    full, predictor, title = _demo_inputs(synthetic)
    dataset = full.split("test")
    predictor.masker = Masker("mean").fit(_baseline_data(full))
    console.print(f"[bold]modalens demo[/bold]: {title}, {len(dataset)} test instances")
    spec, default_name = _demo_model(title)
    record = predictor_record(predictor, dataset, command="demo", spec=spec)
    # 4 walks (2 antithetic pairs) per instance, half the time of the default 8; on the MulT demo model the values
    # then differ from a 64-walk reference by 0.36 (steps) and 0.60 (features) of the mean |value| on average
    # (docs/benchmarks.md, "make demo")
    explanation = run_explain(
        predictor,
        dataset,
        out,
        ExplainConfig(n_permutations=4),
        overwrite=overwrite,
        name=name or default_name,
        record=record,
    )
    _print_summary(explanation)
    if serve:
        try:
            from modalens.app.server import serve as serve_app
        except ImportError:
            console.print(f"Run written to {out}; the app is not installed in this build.")
            return
        serve_app([out], host="127.0.0.1", port=port, open_browser=True)


@app.command()
def truth(
    runs: Annotated[list[Path], typer.Argument(help="Interaction run directories over a dataset with known roles")],
    glass_box: Annotated[
        bool, typer.Option(help="Also report typing accuracy on the synthetic glass-box model")
    ] = False,
) -> None:
    """Compare explained modality roles and types with the roles the dataset was built with."""
    from modalens.interactions import load_run
    from modalens.interactions.truth import role_agreement, type_by_roles

    for run in runs:
        explanation = load_run(run)
        console.rule(f"{run} ({explanation.model.get('name', explanation.model.get('adapter'))})")
        typer.echo(role_agreement(explanation).round(3).to_string(index=False))
        typer.echo(type_by_roles(explanation).to_string())
    if glass_box:
        console.rule("glass-box typing accuracy (synthetic set, known contributions)")
        result = _glass_box_typing()
        typer.echo(
            f"type accuracy {result['type_accuracy']:.3f}, type and dominant modality "
            f"{result['type_and_dominant_accuracy']:.3f}, over {result['n']} instances"
        )
        typer.echo(result["confusion"].to_string())


def _glass_box_typing() -> dict:
    import numpy as np

    from modalens.data.synthetic import glass_box_terms, make_synthetic
    from modalens.interactions import explain
    from modalens.interactions.truth import typing_accuracy
    from modalens.models.glass_box import glass_box_model

    data = make_synthetic(600, seed=11)
    expl = explain(glass_box_model(), data, feature_method=None, templates=False, projection=None, progress=False)
    return typing_accuracy(expl, np.asarray(glass_box_terms(data)))


def _choose_split(dataset: Any, split: str | None) -> Any:
    """The split to explain: the one asked for, else ``test`` when there is one, else everything."""
    if split is None:
        has_test = dataset.splits is not None and "test" in set(dataset.splits)
        return dataset.split("test") if has_test else dataset
    if dataset.splits is None:
        raise typer.BadParameter(f"the dataset has no splits, so --split {split} cannot apply", param_hint="--split")
    return dataset.split(split)


def _baseline_data(dataset: Any) -> Any:
    """The data mean baselines are fitted on: the training split when there is one, else the whole dataset."""
    if dataset.splits is not None and "train" in set(dataset.splits):
        return dataset.split("train")
    return dataset


def _demo_inputs(synthetic: bool) -> tuple[Any, Any, str]:
    """The embedded demo data and reference model, or the synthetic glass-box example."""
    if not synthetic:
        try:
            from modalens.data.demo import load_demo
            from modalens.models.training import load_pretrained

            dataset = load_demo()
            model = load_pretrained(DEMO_ARCHITECTURE).to_predictor()
            return dataset, model, f"MOSI-style demo set, reference model {DEMO_ARCHITECTURE!r}"
        except (ImportError, FileNotFoundError, OSError) as exc:
            console.print(f"[yellow]embedded demo unavailable ({exc}); using the synthetic example[/yellow]")
    from modalens.data.synthetic import make_synthetic
    from modalens.models.glass_box import glass_box_model

    return make_synthetic(400), glass_box_model(), SYNTHETIC_TITLE


def _check_out(out: Path, overwrite: bool, dataset: Any = None) -> None:
    """Before any computation: the output folder can be written (and exists only with --overwrite), and the
    dataset's media keys can become folder names in the run."""
    from modalens.runs import RunError, check_target, safe_name

    try:
        check_target(out, overwrite=overwrite)
        for key in getattr(dataset, "media", None) or {}:
            safe_name(key, "media key")
    except RunError as exc:
        raise typer.BadParameter(
            str(exc).replace("overwrite=True (CLI: --overwrite)", "--overwrite"), param_hint="--out"
        ) from None


def _print_summary(explanation: Any) -> None:
    summary = explanation.summary()
    if "performance" in summary:
        perf = ", ".join(f"{k} {v:.3f}" for k, v in summary["performance"].items() if isinstance(v, float))
        console.print(f"[bold]performance[/bold]: {perf}")
    table = Table(title="modality importance (mean |Shapley|)")
    table.add_column("modality")
    table.add_column("importance", justify="right")
    for name, value in summary["modality_importance"].items():
        table.add_row(name, f"{value:.3f}")
    console.print(table)
    types = Table(title="interaction types")
    types.add_column("type")
    types.add_column("share", justify="right")
    types.add_column("error in type", justify="right")
    for name, share in summary["type_shares"].items():
        err = summary.get("error_by_type", {}).get(name, {}).get("error")
        types.add_row(name, f"{share:.1%}", "" if err is None else f"{err:.3f}")
    console.print(types)
    if explanation.templates is not None and len(explanation.templates):
        tpl = Table(title="top templates")
        for col in ("polarity", "items", "support", "mean_prediction"):
            tpl.add_column(col)
        for _, row in explanation.templates.head(8).iterrows():
            tpl.add_row(
                row["polarity"], " & ".join(row["items"]), f"{row['support']:.3f}", f"{row['mean_prediction']:.2f}"
            )
        console.print(tpl)


def _mmsa_spec(spec: str) -> Any:
    """The parsed ``mmsa:...`` model spec (an MMSA checkpoint), or None for any other --model."""
    if not spec.startswith("mmsa:"):
        return None
    from modalens.models.mmsa import MMSASpec

    return MMSASpec.parse(spec)


def _mmsa_load_options(mmsa: Any, data: Path, data_format: str) -> dict:
    """How an MMSA pickle is read for an MMSA model: BERT-based models read text_bert through their tokenizer."""
    from modalens.data.loaders import detect_format

    if mmsa is None or (data_format if data_format != "auto" else detect_format(data)) != "mmsa":
        return {}
    return mmsa.load_options()


def _load_predictor(spec: str, dataset: Any, *, baseline: str, device: str, mmsa: Any = None) -> Any:
    """A predictor from a model spec (:func:`modalens.cli.live_model.load_predictor`, shared with ``serve``)."""
    return load_predictor(spec, dataset, baseline=baseline, device=device, mmsa=mmsa)


def _demo_model(title: str) -> tuple[str, str]:
    """The model spec that rebuilds the demo's predictor (recorded for ``serve --model``) and its display name."""
    from modalens.models.glass_box import glass_box_model

    if title == SYNTHETIC_TITLE:  # asked for, or the fallback when the embedded demo is unavailable
        return f"{glass_box_model.__module__}:{glass_box_model.__name__}", "glass-box additive model (demo)"
    return f"demo:{DEMO_ARCHITECTURE}", "MulT-style reference (demo)"


def _mount_subcommands() -> None:
    """Attach the commands kept in their own modules: train, serve, export, and the features group."""
    from modalens.cli.features import app as features_app
    from modalens.cli.interventions import register as register_interventions
    from modalens.cli.serve import register as register_app_commands
    from modalens.cli.train import train_command
    from modalens.cli.vlm import explain_vlm_command

    app.command("train", help="Train a reference architecture on a dataset file (or 'demo').")(train_command)
    app.command("explain-vlm", help="Explain a CLIP-like model on image-caption pairs (patches, tokens, MM-SHAP).")(
        explain_vlm_command
    )
    register_app_commands(app)
    register_interventions(features_app)
    app.add_typer(features_app, name="features")


_mount_subcommands()
