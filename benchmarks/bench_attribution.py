"""Item 2: feature-level attribution -- error against exact Shapley and wall time, ours against shap and captum.

Every method explains the same game: per instance, 12 step players (4 words/frames x 3 modalities); a player out
of the coalition has its step replaced by the masker's baseline (zeros). Exact Shapley values by enumeration are the
truth. Error = ||phi - phi_exact||_F / ||phi_exact||_F over all instances. Evaluations = model rows.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from common import reference_setup, table, truncate_steps

from modalens.interactions.attribution import exact_feature_shapley, permutation_shapley

STEPS = 4
REPEATS = 3


def _stack(attr: Any, names: list[str]) -> np.ndarray:
    return np.concatenate([attr.values[m] for m in names], axis=1)  # [N, 3*STEPS]


def rel_error(phi: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(phi - exact) / np.linalg.norm(exact))


class CountingGame:
    """v_i(z): the model on instance i with the step players where z is 0 set to the baseline; counts model rows."""

    def __init__(self, predictor: Any, dataset: Any) -> None:
        self.predictor, self.dataset = predictor, dataset
        self.names = list(predictor.modalities)
        self.rows = 0

    def values(self, i: int, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z) > 0.5
        values, masks = {}, {}
        for j, m in enumerate(self.names):
            x = self.dataset[m].values[i]  # [T, D]
            keep = z[:, j * STEPS : (j + 1) * STEPS]
            values[m] = np.where(keep[:, :, None], x[None], 0.0).astype(np.float32)
            masks[m] = np.ones((len(z), STEPS), bool)
        self.rows += len(z)
        return self.predictor.predict(values, masks)[:, 0]


def run_ours(
    predictor: Any, ds: Any, names: list[str], budgets: list[int], orders: str = "orthogonal", seed: int = 0
) -> list[dict]:
    out = []
    for k in [budgets[0], *budgets]:  # the first pass is an untimed warm-up
        start = time.perf_counter()
        attr = permutation_shapley(
            predictor, ds, granularity="steps", target=0, n_permutations=k, orders=orders, seed=seed, progress=False
        )
        out.append(
            {
                "budget": k,
                "seconds": time.perf_counter() - start,
                "evals": attr.n_evaluations,
                "phi": _stack(attr, names),
            }
        )
    return out[1:]


def run_shap(game: CountingGame, n: int, kind: str, budgets: list[int]) -> list[dict]:
    import shap

    p = 3 * STEPS
    out = []
    for budget in [budgets[0], *budgets]:  # the first, untimed pass warms shap up (numba compilation)
        game.rows = 0
        phi = np.zeros((n, p))
        start = time.perf_counter()
        for i in range(n):
            f = lambda z, i=i: game.values(i, z)  # noqa: E731
            if kind == "permutation":
                explainer = shap.PermutationExplainer(f, shap.maskers.Independent(np.zeros((1, p)), max_samples=1))
                phi[i] = explainer(np.ones((1, p)), max_evals=budget, batch_size=budget, silent=True).values[0]
            else:
                explainer = shap.KernelExplainer(f, np.zeros((1, p)))
                phi[i] = np.asarray(explainer.shap_values(np.ones((1, p)), nsamples=budget, silent=True)).reshape(-1)
        out.append({"budget": budget, "seconds": time.perf_counter() - start, "evals": game.rows, "phi": phi})
    return out[1:]


def run_captum(predictor: Any, ds: Any, names: list[str], kind: str, budgets: list[int]) -> list[dict]:
    from captum.attr import FeatureAblation, KernelShap, ShapleyValueSampling

    counter = {"rows": 0}

    def forward(*args: torch.Tensor) -> torch.Tensor:
        tensors = dict(zip(names, args[: len(names)], strict=True))
        masks = dict(zip(names, args[len(names) :], strict=True))
        counter["rows"] += args[0].shape[0]
        return predictor.forward_tensors(tensors, masks)[:, 0]

    n = len(ds)
    inputs = tuple(torch.as_tensor(ds[m].values) for m in names)
    bases = tuple(torch.zeros_like(x) for x in inputs)
    masks = tuple(torch.ones(n, STEPS, dtype=torch.bool) for _ in names)
    fmask = tuple(
        (j * STEPS + torch.arange(STEPS))[None, :, None].expand(1, STEPS, x.shape[2]).contiguous()
        for j, x in enumerate(inputs)
    )
    cls = {
        "shapley_value_sampling": ShapleyValueSampling,
        "kernel_shap": KernelShap,
        "feature_ablation": FeatureAblation,
    }[kind]
    method = cls(forward)
    out = []
    for budget in [budgets[0], *budgets]:  # the first pass is an untimed warm-up
        counter["rows"] = 0
        start = time.perf_counter()
        common = dict(baselines=bases, additional_forward_args=masks, feature_mask=fmask)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "shapley_value_sampling":  # batched over all instances, as captum allows
                attrs = method.attribute(inputs, n_samples=budget, perturbations_per_eval=max(1, 4096 // n), **common)
            elif kind == "kernel_shap":  # captum's KernelShap takes one instance at a time
                parts = []
                for i in range(n):
                    one = lambda t, i=i: tuple(x[i : i + 1] for x in t)  # noqa: E731
                    parts.append(
                        method.attribute(
                            one(inputs),
                            baselines=one(bases),
                            additional_forward_args=one(masks),
                            feature_mask=fmask,
                            n_samples=budget,
                            perturbations_per_eval=budget,
                        )
                    )
                attrs = tuple(torch.cat([p[j] for p in parts]) for j in range(len(names)))
            else:
                attrs = method.attribute(inputs, perturbations_per_eval=3 * STEPS, **common)
        # every cell of a step carries the step's value: read one cell per step
        phi = np.concatenate([a[:, :, 0].double().numpy() for a in attrs], axis=1)
        out.append({"budget": budget, "seconds": time.perf_counter() - start, "evals": counter["rows"], "phi": phi})
    return out[1:]


def time_to_error(points: list[dict], target: float) -> float | None:
    """Seconds a method needs to reach ``target`` error, interpolated in log-log along its curve; None if never."""
    pts = sorted((p["seconds"], p["error"]) for p in points)
    for (t0, e0), (t1, e1) in zip([(None, None), *pts[:-1]], pts, strict=True):
        if e1 <= target:
            if t0 is None or e0 <= e1 or e0 <= target:
                return t1
            w = (np.log(e0) - np.log(target)) / (np.log(e0) - np.log(e1))
            return float(np.exp(np.log(t0) + w * (np.log(t1) - np.log(t0))))
    return None


def run(quick: bool) -> dict[str, Any]:
    ref = reference_setup()
    n = 6 if quick else 24
    ds = truncate_steps(ref.dataset, STEPS, n)
    predictor = ref.predictor
    names = list(predictor.modalities)
    start = time.perf_counter()
    exact = exact_feature_shapley(predictor, ds, granularity="steps", target=0, progress=False)
    exact_s = time.perf_counter() - start
    truth = _stack(exact, names)
    game = CountingGame(predictor, ds)
    small = quick
    ours_budgets = [2, 4, 8, 16, 32] if small else [2, 4, 8, 16, 32, 64, 128]
    runs: dict[str, Callable[[int], list[dict]]] = {
        "modalens permutation": lambda r: run_ours(predictor, ds, names, ours_budgets, seed=r),
        "modalens permutation, random orders": lambda r: run_ours(
            predictor, ds, names, ours_budgets, orders="random", seed=r
        ),
        "shap PermutationExplainer": lambda r: run_shap(
            game, n, "permutation", [50, 100, 200, 400] if small else [50, 100, 200, 400, 800, 1600]
        ),
        "shap KernelExplainer": lambda r: run_shap(
            game, n, "kernel", [64, 256, 1024] if small else [64, 128, 256, 512, 1024, 2048]
        ),
        "captum ShapleyValueSampling": lambda r: run_captum(
            predictor, ds, names, "shapley_value_sampling", [2, 8, 32] if small else [2, 4, 8, 16, 32, 64]
        ),
        "captum KernelShap": lambda r: run_captum(
            predictor, ds, names, "kernel_shap", [64, 256, 1024] if small else [64, 128, 256, 512, 1024, 2048]
        ),
        "captum FeatureAblation": lambda r: run_captum(predictor, ds, names, "feature_ablation", [0]),
    }
    # every method runs REPEATS times (ours with seeds 0.., the peers continuing their global RNG streams):
    # one Monte-Carlo run is too noisy to compare methods by; error and time are averaged per budget
    np.random.seed(0)
    torch.manual_seed(0)
    curves = {}
    for name, fn in runs.items():
        reps = [fn(r) for r in range(REPEATS)]
        curves[name] = [
            {
                "budget": first["budget"],
                "seconds": float(np.mean([rep[i]["seconds"] for rep in reps])),
                "evals": float(np.mean([rep[i]["evals"] for rep in reps])),
                "error": float(np.mean([rel_error(rep[i]["phi"], truth) for rep in reps])),
                "error_runs": [rel_error(rep[i]["phi"], truth) for rep in reps],
            }
            for i, first in enumerate(reps[0])
        ]
    for points in curves.values():
        for p in points:
            p["evals_per_instance"] = p["evals"] / n
    ours = curves["modalens permutation"]
    peers = {k: v for k, v in curves.items() if not k.startswith("modalens")}
    ratios = []
    for p in ours:
        peer_t = {k: time_to_error(v, p["error"]) for k, v in peers.items()}
        reached = {k: t for k, t in peer_t.items() if t is not None}
        fastest = min(reached, key=reached.get) if reached else None
        ratios.append(
            {
                "n_permutations": p["budget"],
                "error": p["error"],
                "seconds": p["seconds"],
                "fastest_peer": fastest,
                "peer_seconds": reached.get(fastest) if fastest else None,
                "ratio": reached[fastest] / p["seconds"] if fastest else None,
                "peers_reaching": peer_t,
            }
        )
    body = [[k, p["budget"], p["evals_per_instance"], p["seconds"], p["error"]] for k, v in curves.items() for p in v]
    text = table(
        f"Feature attribution vs exact Shapley ({n} instances x {3 * STEPS} step players; {ref.description})",
        ["method", "budget", "evals / instance", "seconds", "relative error"],
        body,
    )
    text += "\n" + table(
        "Time to equal error: fastest peer vs modalens permutation",
        ["n_permutations", "error", "ours s", "fastest peer reaching it", "peer s", "peer / ours"],
        [
            [
                r["n_permutations"],
                r["error"],
                r["seconds"],
                r["fastest_peer"] or "none reached",
                r["peer_seconds"],
                r["ratio"],
            ]
            for r in ratios
        ],
    )
    return {
        "model": ref.description,
        "instances": n,
        "players": 3 * STEPS,
        "exact_seconds": exact_s,
        "exact_evals": exact.n_evaluations,
        "curves": curves,
        "equal_error": ratios,
        "table": text,
    }
