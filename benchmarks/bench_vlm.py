"""Vision-language models on raw inputs: patch and token Shapley values, ours against MM-SHAP's approach.

The model is the demo's two-tower image-text model (real weights: EfficientNet-Lite0 at 128 x 128 and MiniLM, with
the trained projections; its score is CLIP's ``logit_scale * cos``). Each pair is a Fashion-MNIST demo image under a
``p x p`` grid of patches (p = 2 and 3) and a caption of 3-4 word pieces between ``[CLS]`` and ``[SEP]`` (at most 6
tokens). One game for every method: an absent patch takes the image's mean colour, an absent piece ``[MASK]``;
``[CLS]`` and ``[SEP]`` always stay. Truth = exact Shapley values by enumerating all 2^P coalitions of the patch and
piece players. Error = ||phi - phi_exact|| / ||phi_exact|| over all players of all pairs.

Methods:

- **modalens, grid walks** (``explain-vlm``'s default): ``permutation_shapley(orders="grid")`` -- antithetic,
  orthogonal orders within the image and within the caption, every interleaving of the two averaged exactly --
  through ``ImageTextPredictor`` (each distinct image and caption encoded once; the cache emptied before every run),
  all pairs batched;
- **modalens, orthogonal walks**: the default walks of ``permutation_shapley`` through the same predictor;
- **modalens, orthogonal walks, plain model**: the same walks through a plain batched model (every row encoded), to
  show what the two-tower encoding saves apart from the sampling;
- **modalens exact**: all 2^P coalitions, through the same predictor (2^a image and 2^b text encodings per pair);
- **shap Permutation (MM-SHAP)**: MM-SHAP's recipe -- shap's permutation explainer one pair at a time over
  ``[token ids..., patch ids...]`` with a custom masker (``[CLS]``/``[SEP]`` kept, so they are players worth 0),
  the masked image built inside the model function -- with the model function batched over shap's rows;
- **shap Permutation (MM-SHAP), row by row**: the same with the model called one row at a time, as MM-SHAP's
  script does (a few budgets only).

Every method runs after an untimed warm-up; torch and BLAS on one thread. Times are CPU seconds of the process
(``time.process_time``; one thread, so close to wall time on an idle machine, and unaffected by other work sharing
the cores); wall seconds are recorded too. Equal error: the time our method needs for a peer's error, interpolated
in log-log along our grid-walk curve (``bench_attribution.time_to_error``), or exact enumeration's time when that is
less (it reaches every error).

    python benchmarks/bench_vlm.py [--quick] [--out benchmarks/results/vlm.json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_attribution import rel_error, time_to_error
from common import RESULTS_DIR, machine_info, table
from threadpoolctl import threadpool_limits

from modalens.data.images import image_text_dataset
from modalens.interactions.attribution import exact_feature_shapley, permutation_shapley
from modalens.models.predictor import CallablePredictor

PAIRS = [  # (demo class index, caption): 3-4 word pieces each with MiniLM's WordPiece
    (3, "a light dress"),
    (4, "a dark coat"),
    (5, "a light sandal"),
    (6, "a light shirt"),
    (8, "a dark bag"),
    (9, "a dark ankle boot"),
]


def make_pairs(predictor: Any, n: int, grid: int) -> Any:
    from modalens.features.demo import load_demo_assets

    assets = load_demo_assets()
    images = [assets.images[int(np.flatnonzero(assets.labels == label)[0])] for label, _ in PAIRS[:n]]
    captions = [c for _, c in PAIRS[:n]]
    return image_text_dataset(images, captions, predictor.tokenizer, image_size=predictor.image_size, patches=grid)


class PlainModel:
    """The two-tower score of masked rows, every row encoded (no reuse of repeated images or captions)."""

    def __init__(self, predictor: Any) -> None:
        self.pred = predictor
        self.rows = 0

    def score(self, patches: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.rows += len(patches)
        out = np.empty(len(patches))
        for start in range(0, len(patches), 64):
            sl = slice(start, start + 64)
            img = self.pred._encode_images(patches[sl])
            txt = self.pred._encode_texts(ids[sl], mask[sl])
            out[sl] = self.pred.logit_scale * (img * txt).sum(1)
        return out


def stack(values: dict[str, np.ndarray], ds: Any) -> np.ndarray:
    """Our player values of every pair, flattened: its word pieces (no [CLS]/[SEP]), then its patches."""
    text = ds["text"].player_mask()
    return np.concatenate([np.concatenate([values["text"][i, text[i]], values["image"][i]]) for i in range(len(ds))])


def run_ours(predictor: Any, ds: Any, budgets: list[int], seed: int, orders: str) -> list[dict]:
    out = []
    for k in [budgets[0], *budgets]:  # the first pass is an untimed warm-up
        if hasattr(predictor, "reset_cache"):
            predictor.reset_cache()
        wall, cpu = time.perf_counter(), time.process_time()
        fa = permutation_shapley(
            predictor, ds, n_permutations=k, orders=orders, seed=seed, progress=False, batch_size=2048
        )
        seconds, wall = time.process_time() - cpu, time.perf_counter() - wall
        encoded = dict(getattr(predictor, "encoded", {}))
        out.append(
            {
                "budget": k,
                "seconds": seconds,
                "wall": wall,
                "evals": fa.n_evaluations,
                "encoded": encoded or None,
                "phi": stack(fa.values, ds),
            }
        )
    return out[1:]


class MMShapGame:
    """MM-SHAP's setup for one pair: X = [token ids..., patch ids 1..P]; a masked token becomes the baseline token
    except [CLS] and [SEP]; a masked patch id becomes 0 and the model function fills the patch."""

    def __init__(self, predictor: Any, ds: Any, i: int, row_by_row: bool) -> None:
        masker = predictor.masker.bind(ds)
        real = ds["text"].step_mask()[i]
        self.ids = ds["text"].values[i, real]
        self.patches = ds["image"].values[i]
        self.baseline = masker.fill("image", self.patches[None])[0]
        self.mask_id = masker.token_id("text")
        self.t, self.p = len(self.ids), len(self.patches)
        self.pred, self.row_by_row = predictor, row_by_row
        self.rows = 0

    @property
    def x(self) -> np.ndarray:
        return np.concatenate([self.ids, np.arange(1, self.p + 1)])[None]

    def masker(self, mask: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = np.array(x, copy=True)
        tokens = out[: self.t]
        tokens[~mask[: self.t]] = self.mask_id
        tokens[0], tokens[-1] = self.ids[0], self.ids[-1]  # never mask [CLS] and [SEP] (as MM-SHAP)
        out[self.t :][~mask[self.t :]] = 0
        return out[None]

    def model(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        self.rows += len(rows)
        ids = rows[:, : self.t].astype(np.int64)
        keep = rows[:, self.t :] > 0
        patches = np.where(keep[:, :, None], self.patches[None], self.baseline[None]).astype(np.float32)
        mask = np.ones(ids.shape, bool)
        plain = PlainModel(self.pred)
        if not self.row_by_row:
            return plain.score(patches, ids, mask)
        return np.concatenate([plain.score(patches[r : r + 1], ids[r : r + 1], mask[:1]) for r in range(len(rows))])

    def ours(self, phi: np.ndarray) -> np.ndarray:
        """shap's values on our players: the pieces between [CLS] and [SEP], then the patches."""
        return np.concatenate([phi[1 : self.t - 1], phi[self.t :]])


def run_shap(predictor: Any, ds: Any, budgets: list[int], row_by_row: bool) -> list[dict]:
    """``budgets``: permutations (forward and backward) per pair; max_evals = that x (2 P + 1)."""
    import shap

    out = []
    for k in [budgets[0], *budgets]:
        wall, cpu = time.perf_counter(), time.process_time()
        phis, rows = [], 0
        for i in range(len(ds)):
            game = MMShapGame(predictor, ds, i, row_by_row)
            explainer = shap.explainers.Permutation(game.model, game.masker)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = explainer(game.x, max_evals=k * (2 * game.x.shape[1] + 1), silent=True).values[0]
            phis.append(game.ours(np.asarray(values, dtype=np.float64)))
            rows += game.rows
        seconds, wall = time.process_time() - cpu, time.perf_counter() - wall
        out.append({"budget": k, "seconds": seconds, "wall": wall, "evals": rows, "phi": np.concatenate(phis)})
    return out[1:]


def run(quick: bool, repeats: int) -> dict[str, Any]:
    from modalens.features.vlm import two_tower_predictor

    torch.manual_seed(0)
    predictor = two_tower_predictor(image_baseline="mean_colour", token_baseline="mask")
    n = 3 if quick else len(PAIRS)
    settings = []
    for grid in (2, 3):
        ds = make_pairs(predictor, n, grid)
        players = int(ds["text"].player_mask().sum(1).max()) + grid * grid
        exact_phi = None
        exact_times = []
        for _ in range(2):  # a warm-up, then the timed run
            predictor.reset_cache()
            wall, cpu = time.perf_counter(), time.process_time()
            exact = exact_feature_shapley(predictor, ds, progress=False, batch_size=4096)
            exact_times.append((time.process_time() - cpu, time.perf_counter() - wall))
            exact_phi = stack(exact.values, ds)
        truth = exact_phi
        exact_encoded = dict(predictor.encoded)
        plain = PlainModel(predictor)
        plain_predictor = CallablePredictor(
            lambda values, masks, plain=plain: plain.score(values["image"], values["text"], masks["text"]),
            ["image", "text"],
            masker=predictor.masker,
        )
        ours_budgets = [2, 4, 8, 16] if quick else [2, 4, 8, 16, 32, 64, 128]
        shap_budgets = [1, 2, 4] if quick else [1, 2, 4, 8, 16, 32, 64]
        runs = {
            "modalens, grid walks": lambda r, ds=ds, b=ours_budgets: run_ours(predictor, ds, b, r, "grid"),
            "modalens, orthogonal walks": lambda r, ds=ds, b=ours_budgets: run_ours(predictor, ds, b, r, "orthogonal"),
            "modalens, orthogonal walks, plain model": lambda r, ds=ds, b=ours_budgets[:4], pp=plain_predictor: (
                run_ours(pp, ds, b, r, "orthogonal")
            ),
            "shap Permutation (MM-SHAP)": lambda r, ds=ds, b=shap_budgets: run_shap(predictor, ds, b, False),
            "shap Permutation (MM-SHAP), row by row": lambda r, ds=ds: run_shap(predictor, ds, [1, 4], True),
        }
        np.random.seed(0)
        curves: dict[str, list[dict]] = {}
        for name, fn in runs.items():
            reps = [fn(r) for r in range(1 if "row by row" in name else repeats)]
            curves[name] = [
                {
                    "budget": first["budget"],
                    "seconds": float(np.mean([rep[j]["seconds"] for rep in reps])),
                    "wall": float(np.mean([rep[j]["wall"] for rep in reps])),
                    "evals_per_pair": float(np.mean([rep[j]["evals"] for rep in reps])) / n,
                    "error": float(np.mean([rel_error(rep[j]["phi"], truth) for rep in reps])),
                    "error_runs": [rel_error(rep[j]["phi"], truth) for rep in reps],
                    "encoded_per_pair": None
                    if not first.get("encoded")
                    else {k: v / n for k, v in first["encoded"].items()},
                }
                for j, first in enumerate(reps[0])
            ]
        exact_s = exact_times[-1][0]
        ours = curves["modalens, grid walks"]
        ratios = []
        for name in ("shap Permutation (MM-SHAP)", "shap Permutation (MM-SHAP), row by row"):
            for p in curves[name]:
                t_walks = time_to_error(ours, p["error"])
                t_ours = exact_s if t_walks is None else min(t_walks, exact_s)
                ratios.append(
                    {
                        "against": name,
                        "their_budget": p["budget"],
                        "error": p["error"],
                        "their_seconds": p["seconds"],
                        "our_seconds": t_ours,
                        "ours_by": "exact" if t_ours == exact_s else "grid walks",
                        "speedup": p["seconds"] / t_ours,
                    }
                )
        settings.append(
            {
                "grid": f"{grid}x{grid}",
                "pairs": n,
                "players_max": players,
                "exact_seconds": exact_s,
                "exact_wall": exact_times[-1][1],
                "exact_evals_per_pair": exact.n_evaluations / n,
                "exact_encoded_per_pair": {k: v / n for k, v in exact_encoded.items()},
                "curves": curves,
                "equal_error": ratios,
            }
        )
    return {"model": predictor.name, "image_size": predictor.image_size, "settings": settings}


def report(result: dict[str, Any]) -> str:
    text = ""
    for s in result["settings"]:
        body = []
        for name, points in s["curves"].items():
            for p in points:
                enc = p["encoded_per_pair"]
                body.append(
                    [
                        name,
                        p["budget"],
                        p["evals_per_pair"],
                        "" if enc is None else f"{enc['image']:.0f} / {enc['text']:.0f}",
                        p["seconds"],
                        p["error"],
                    ]
                )
        enc = s["exact_encoded_per_pair"]
        body.append(
            [
                "modalens exact",
                "all",
                s["exact_evals_per_pair"],
                f"{enc['image']:.0f} / {enc['text']:.0f}",
                s["exact_seconds"],
                0.0,
            ]
        )
        text += table(
            f"{s['grid']} patches, {s['pairs']} pairs, up to {s['players_max']} players",
            ["method", "budget", "model rows / pair", "encoded images / texts per pair", "CPU s", "relative error"],
            body,
        )
        text += "\n" + table(
            f"{s['grid']}: time to the same error, modalens (grid walks, or exact when cheaper) against MM-SHAP's",
            ["against", "their budget", "error", "their CPU s", "our CPU s", "ours by", "speed-up"],
            [
                [
                    r["against"],
                    r["their_budget"],
                    r["error"],
                    r["their_seconds"],
                    r["our_seconds"],
                    r["ours_by"],
                    r["speedup"],
                ]
                for r in s["equal_error"]
            ],
        )
        text += "\n"
    return text


def run_long(result: dict[str, Any], budgets: list[int]) -> None:
    """MM-SHAP's recipe at larger budgets on the 3x3 grid (one run each), added to ``result``: the errors where our
    exact enumeration becomes the cheaper way, measured rather than extrapolated."""
    from modalens.features.vlm import two_tower_predictor

    predictor = two_tower_predictor(image_baseline="mean_colour", token_baseline="mask")
    setting = next(s for s in result["settings"] if s["grid"] == "3x3")
    ds = make_pairs(predictor, setting["pairs"], 3)
    predictor.reset_cache()
    truth = stack(exact_feature_shapley(predictor, ds, progress=False, batch_size=4096).values, ds)
    np.random.seed(1)
    name = "shap Permutation (MM-SHAP), larger budgets"
    points = run_shap(predictor, ds, budgets, False)
    setting["curves"][name] = [
        {
            "budget": p["budget"],
            "seconds": p["seconds"],
            "wall": p["wall"],
            "evals_per_pair": p["evals"] / setting["pairs"],
            "error": rel_error(p["phi"], truth),
            "error_runs": [rel_error(p["phi"], truth)],
            "encoded_per_pair": None,
        }
        for p in points
    ]
    ours = setting["curves"]["modalens, grid walks"]
    exact_s = setting["exact_seconds"]
    setting["equal_error"] = [r for r in setting["equal_error"] if r["against"] != name]
    for p in setting["curves"][name]:
        t_walks = time_to_error(ours, p["error"])
        t_ours = exact_s if t_walks is None else min(t_walks, exact_s)
        setting["equal_error"].append(
            {
                "against": name,
                "their_budget": p["budget"],
                "error": p["error"],
                "their_seconds": p["seconds"],
                "our_seconds": t_ours,
                "ours_by": "exact" if t_ours == exact_s else "grid walks",
                "speedup": p["seconds"] / t_ours,
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 pairs, fewer budgets (a smoke run)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per method and budget (seeds 0..)")
    parser.add_argument(
        "--long",
        type=str,
        default=None,
        help="only add MM-SHAP's recipe at these budgets (e.g. 128,256) on the 3x3 grid to an existing --out file",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "vlm.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.long:
        result = json.loads(args.out.read_text())
        with threadpool_limits(limits=1):
            run_long(result, [int(b) for b in args.long.split(",")])
        print(report(result))
        args.out.write_text(json.dumps(result, indent=1, default=float))
        print(f"wrote {args.out}")
        return
    with threadpool_limits(limits=1):
        start = time.perf_counter()
        result = run(args.quick, args.repeats)
        result["total_seconds"] = time.perf_counter() - start
    result["machine"] = machine_info()
    result["quick"] = args.quick
    print(report(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
