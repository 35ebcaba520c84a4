"""The app's CLI commands, mounted on the main ``modalens`` typer app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories to serve (read-only)", exists=True)],
    host: Annotated[
        str, typer.Option(help="Interface to bind; 127.0.0.1 keeps the app private (others need --allow-remote)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8765,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open a browser tab")] = True,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a --host other machines can reach; every request then needs the printed URL's token",
        ),
    ] = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(help="A host name the server answers to besides loopback names (repeatable; * = any)"),
    ] = None,
    frame_ancestor: Annotated[
        list[str] | None,
        typer.Option(help="An origin allowed to embed the app in a frame, e.g. https://jupyter.example (repeatable)"),
    ] = None,
    max_instances: Annotated[int, typer.Option(help="Refuse runs with more instances than this")] = 5_000_000,
    max_rows: Annotated[int, typer.Option(help="Refuse tables that claim more rows than this")] = 200_000_000,
    model: Annotated[
        str | None,
        typer.Option(
            help="The model of the runs. Interaction runs: the model spec they were explained with (a model "
            "directory, demo[:ARCH], pkg.module:factory, mmsa:..., or for explain-vlm runs two-tower / hf:DIR): "
            "the instance view then answers live what-if questions. Feature runs: their embedding model "
            "('two-tower', 'two-tower:PATH', 'hf:DIR'): the Features query then embeds new captions and images"
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda: where the live model runs (torch models)")] = "cpu",
) -> None:
    """Open the visual analytics app on one or more run directories."""
    from modalens.app.server import serve
    from modalens.runs import RunError, RunLimits

    embedder, predictors = None, None
    if model is not None:
        embedder, predictors = _load_models(run_dirs, model, device)
    try:
        serve(
            run_dirs,
            host=host,
            port=port,
            open_browser=open_browser,
            allow_remote=allow_remote,
            allowed_hosts=allowed_host or (),
            frame_ancestors_extra=frame_ancestor or (),
            limits=RunLimits(max_rows=max_rows),
            max_instances=max_instances,
            model=embedder,
            predictors=predictors,
        )
    except RunError as exc:
        raise typer.BadParameter(str(exc), param_hint="RUN_DIRS") from exc


def _load_models(run_dirs: list[Path], spec: str, device: str) -> tuple[object, dict]:
    """``--model`` by run kind: an embedder for feature runs, a predictor (with the run's own baselines) for each
    interaction run it reproduces. Runs of a kind the spec does not suit (an interaction model's spec next to a
    feature run, or the reverse) are served without a live model, each with one line saying why; a spec that suits
    no served run is an error."""
    from rich.markup import escape

    from modalens.cli.common import console, error_exit
    from modalens.runs import RunError, read_run

    try:
        kinds = {p: read_run(p).kind for p in run_dirs}
    except RunError as exc:
        raise typer.BadParameter(str(exc), param_hint="RUN_DIRS") from exc
    features = [p for p, k in kinds.items() if k != "interaction"]
    interaction = [p for p, k in kinds.items() if k == "interaction"]
    embedder, embedder_error = None, None
    if features:
        from modalens.cli.feature_inputs import check_model_spec, load_model

        try:
            check_model_spec(spec)
            embedder = load_model(spec, device=device)
        except (ValueError, OSError, ImportError, typer.BadParameter) as exc:
            embedder_error = str(exc)
    predictors: dict = {}
    refused: dict[Path, str] = {}
    if interaction:
        from modalens.cli.live_model import load_live_predictors

        predictors, refused = load_live_predictors(interaction, spec, device=device)
    if embedder is None and not predictors:
        reasons = ([f"feature runs: {embedder_error}"] if embedder_error else []) + list(refused.values())
        raise error_exit(ValueError(f"--model {spec} suits no served run: " + "; ".join(reasons)))
    if embedder_error is not None:
        for path in features:
            console.print(
                f"[yellow]warning:[/yellow] {escape(path.name)} ({kinds[path]} run) is served without an embedding "
                f"model: {escape(embedder_error)}"
            )
    for path, reason in refused.items():
        console.print(f"[yellow]warning:[/yellow] {escape(path.name)} is served without a live model: {escape(reason)}")
    for path in predictors:
        console.print(f"live model {escape(spec)} on {escape(path.name)}: what-if answers in the instance view")
    if embedder is not None:
        for path in features:
            console.print(
                f"embedding model {escape(spec)} on {escape(path.name)}: "
                "the Features query embeds new captions and images"
            )
    return embedder, predictors


def export_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories to include", exists=True)],
    html: Annotated[Path, typer.Option("--html", help="The self-contained HTML file to write")] = Path("modalens.html"),
    max_instances: Annotated[
        int, typer.Option(help="Instances per run with full detail (words, tracks, media) in the file")
    ] = 1000,
) -> None:
    """Write the app and the runs' data into one self-contained HTML file (no server needed to view it)."""
    from modalens.app.export import export_html
    from modalens.runs import RunError

    try:
        out = export_html(run_dirs, html, max_instances=max_instances)
    except RunError as exc:
        raise typer.BadParameter(str(exc), param_hint="RUN_DIRS") from exc
    typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


def register(app: typer.Typer) -> None:
    """Mount ``serve`` and ``export`` on the main CLI (skipped for names the main CLI already defines)."""
    existing = {c.name or (c.callback.__name__ if c.callback else None) for c in app.registered_commands}
    if "serve" not in existing:
        app.command("serve")(serve_command)
    if "export" not in existing:
        app.command("export")(export_command)
