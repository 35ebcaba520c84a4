"""Partial information decomposition (PID) of what two modalities tell about a target.

The decomposition is Bertschinger, Rauh, Olbrich, Jost and Ay's (2014, "Quantifying unique information"), the one
Liang et al. (2023, "Quantifying & modeling multimodal interactions") estimate on discretised multimodal features.
For a joint distribution p(x1, x2, y) let

    Delta_p = {q : q(x1, y) = p(x1, y) and q(x2, y) = p(x2, y)}

be the distributions with the same source-target marginals, and q* a minimiser of I_q(X1, X2; Y) over Delta_p. Then

    U1 = I_q*(X1; Y | X2),   U2 = I_q*(X2; Y | X1),
    R  = I(X1; Y) - U1 = I(X2; Y) - U2,
    S  = I_p(X1, X2; Y) - I_q*(X1, X2; Y),

and R + U1 + U2 + S = I_p(X1, X2; Y). Minimising I_q(X1, X2; Y) over Delta_p is the same as maximising
H_q(Y | X1, X2) (H_q(Y) is fixed by the constraints), a convex program solved here with cvxpy over an exponential
cone: minimise sum q(x1,x2,y) log(q(x1,x2,y) / q(x1,x2)) subject to the two marginal constraints.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from modalens.data.dataset import MultimodalDataset
from modalens.interactions.methods import MethodError, MethodResult, register_method, resolve_index, rows_of
from modalens.models.predictor import Predictor

UNITS = {"bits": np.log(2.0), "nats": 1.0}
# Entries below this are treated as zero when the program's solution is read back; solvers return ~1e-10 noise.
_SOLUTION_FLOOR = 1e-12


class PIDError(MethodError):
    """A distribution or sample is unfit for the decomposition; the message names the argument."""


@dataclass
class PIDResult(MethodResult):
    """Redundancy, unique information and synergy of two sources about a target.

    Attributes
    ----------
    redundancy, unique1, unique2, synergy
        The four PID atoms, in ``unit``.
    total
        I(X1, X2; Y) = redundancy + unique1 + unique2 + synergy.
    mi1, mi2
        I(X1; Y) = redundancy + unique1 and I(X2; Y) = redundancy + unique2.
    unit
        ``"bits"`` or ``"nats"``.
    solver
        The cvxpy solver that produced q* (``"closed form"`` when the constraint set is a single point).
    sizes
        ``(|X1|, |X2|, |Y|)`` of the (discretised) distribution.
    n_samples
        For estimates from data: the number of samples; None for an exact distribution.
    names
        Names of the two sources, for display.
    extra
        Estimation settings and diagnostics: ``bias_estimate`` (the Miller-Madow estimate of the plug-in bias of
        ``total``, in ``unit``) and, with ``n_shuffles``, ``shuffle_baseline`` (mean atoms with the target shuffled,
        i.e. what the estimator reports when there is no information at all).
    notes
        Warnings about the estimate (e.g. a bias comparable to the information measured).
    method, n_evaluations, seconds
        ``"pid"``, the model rows predicted for the target (0 for labels and exact distributions) and the
        wall-clock time of the estimate (0 for an exact distribution).
    """

    level: ClassVar[str] = "dataset"

    redundancy: float
    unique1: float
    unique2: float
    synergy: float
    total: float
    mi1: float
    mi2: float
    unit: str = "bits"
    solver: str = ""
    sizes: tuple[int, int, int] = (0, 0, 0)
    n_samples: int | None = None
    names: tuple[str, str] = ("x1", "x2")
    extra: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    method: str = "pid"
    n_evaluations: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """A JSON-ready dict (for run manifests)."""
        out = asdict(self)
        for key in ("redundancy", "unique1", "unique2", "synergy", "total", "mi1", "mi2"):
            out[key] = float(out[key])
        out["sizes"] = list(self.sizes)
        out["names"] = list(self.names)
        out.pop("seconds")  # timings live in the run's timings, so equal estimates give equal records
        return out

    def atoms(self) -> dict[str, float]:
        """The four atoms keyed ``redundancy, unique_<name1>, unique_<name2>, synergy``."""
        return {
            "redundancy": self.redundancy,
            f"unique_{self.names[0]}": self.unique1,
            f"unique_{self.names[1]}": self.unique2,
            "synergy": self.synergy,
        }


# -- information quantities of a discrete joint p[x1, x2, y] (natural logs) -----------------------------------
def _entropy(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-np.sum(nz * np.log(nz)))


def _mutual_information(pxy: np.ndarray) -> float:
    """I(X; Y) of a 2-D joint ``p[x, y]``."""
    return _entropy(pxy.sum(1)) + _entropy(pxy.sum(0)) - _entropy(pxy)


def _conditional_mi(p: np.ndarray, given: int) -> float:
    """I(X_other; Y | X_given) of ``p[x1, x2, y]``; ``given`` is 0 (X1) or 1 (X2)."""
    # I(A; Y | B) = H(A, B) + H(B, Y) - H(A, B, Y) - H(B)
    other = 1 - given
    h_ab = _entropy(p.sum(2))
    h_by = _entropy(p.sum(other))
    h_b = _entropy(p.sum((other, 2)))
    return h_ab + h_by - _entropy(p) - h_b


def _joint_mi(p: np.ndarray) -> float:
    """I(X1, X2; Y) of ``p[x1, x2, y]``."""
    return _mutual_information(p.reshape(-1, p.shape[2]))


def _check_distribution(p: np.ndarray) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 3:
        raise PIDError(f"p must be a 3-D array p[x1, x2, y], got shape {arr.shape}")
    if min(arr.shape) < 1:
        raise PIDError(f"p has an empty axis: shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise PIDError("p must hold finite, non-negative probabilities")
    total = arr.sum()
    if total <= 0:
        raise PIDError("p sums to zero")
    if abs(total - 1.0) > 1e-6:
        raise PIDError(f"p must sum to 1 (got {total:.6g}); normalise counts first, or use pid_from_counts")
    return arr / total


def _solve_min_synergy(p: np.ndarray, solver: str | None) -> tuple[np.ndarray, str]:
    """q* = argmin over Delta_p of I_q(X1, X2; Y), as a dense ``[|X1|, |X2|, |Y|]`` array."""
    import cvxpy as cp
    import scipy.sparse as sp

    p1y, p2y = p.sum(1), p.sum(0)  # p(x1, y), p(x2, y)
    # q can only be positive where both marginals are: that is the support of Delta_p.
    support = (p1y[:, None, :] > 0) & (p2y[None, :, :] > 0)
    cells = np.argwhere(support)  # [n_var, 3] of (x1, x2, y)
    n_var = len(cells)
    n1, n2, ny = p.shape
    # Marginal constraints as sparse incidence matrices over the support variables.
    key1 = cells[:, 0] * ny + cells[:, 2]
    key2 = cells[:, 1] * ny + cells[:, 2]
    used1, inv1 = np.unique(key1, return_inverse=True)
    used2, inv2 = np.unique(key2, return_inverse=True)
    a1 = sp.csr_matrix((np.ones(n_var), (inv1, np.arange(n_var))), shape=(len(used1), n_var))
    a2 = sp.csr_matrix((np.ones(n_var), (inv2, np.arange(n_var))), shape=(len(used2), n_var))
    b1 = p1y.reshape(-1)[used1]
    b2 = p2y.reshape(-1)[used2]
    if n_var == len(used1) or n_var == len(used2):
        # Each variable is pinned by one marginal alone: Delta_p is a single point (e.g. X2 determined by Y).
        q = np.zeros(n_var)
        q[:] = b1[inv1] if n_var == len(used1) else b2[inv2]
        return _dense(q, cells, p.shape), "closed form"
    # q(x1, x2) for every variable's (x1, x2) cell: a sparse "sum over y, then broadcast back" operator.
    key12 = cells[:, 0] * n2 + cells[:, 1]
    _, inv12 = np.unique(key12, return_inverse=True)
    g = sp.csr_matrix((np.ones(n_var), (inv12, np.arange(n_var))))
    spread = (g.T @ g).tocsr()  # [n_var, n_var]: (spread @ q)_v = q(x1_v, x2_v)
    q_var = cp.Variable(n_var, nonneg=True)
    objective = cp.Minimize(cp.sum(cp.rel_entr(q_var, spread @ q_var)))
    constraints = [a1 @ q_var == b1, a2 @ q_var == b2]
    problem = cp.Problem(objective, constraints)
    tried: list[str] = []
    for name in [solver] if solver else ["CLARABEL", "SCS"]:
        if name not in cp.installed_solvers():
            tried.append(f"{name}: not installed")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                problem.solve(solver=name)
        except cp.error.SolverError as exc:
            tried.append(f"{name}: {exc}")
            continue
        if problem.status in ("optimal", "optimal_inaccurate") and q_var.value is not None:
            return _dense(np.asarray(q_var.value), cells, p.shape), name
        tried.append(f"{name}: status {problem.status}")
    raise PIDError(f"the PID convex program was not solved ({'; '.join(tried)})")


def _dense(q: np.ndarray, cells: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape)
    out[cells[:, 0], cells[:, 1], cells[:, 2]] = np.where(q > _SOLUTION_FLOOR, q, 0.0)
    return out / out.sum()


def pid_discrete(
    p: np.ndarray,
    *,
    unit: str = "bits",
    solver: str | None = None,
    names: Sequence[str] = ("x1", "x2"),
) -> PIDResult:
    """Bertschinger et al.'s PID of a discrete joint distribution.

    Parameters
    ----------
    p
        ``[|X1|, |X2|, |Y|]`` joint probabilities summing to 1.
    unit
        ``"bits"`` (log base 2) or ``"nats"``.
    solver
        A cvxpy solver name; by default CLARABEL, then SCS if CLARABEL fails.
    names
        Names of the two sources (for :meth:`PIDResult.atoms`).

    Returns
    -------
    PIDResult
        Atoms computed from q* so that they sum exactly to I_p(X1, X2; Y). Solver tolerance can leave an atom at
        about -1e-7 instead of 0; atoms are not clipped, so the sum identity holds as computed.
    """
    if unit not in UNITS:
        raise PIDError(f"unit must be 'bits' or 'nats', got {unit!r}")
    arr = _check_distribution(p)
    q, used = _solve_min_synergy(arr, solver)
    scale = UNITS[unit]
    mi_total = _joint_mi(arr)
    # Read every q-quantity off the same q so the chain rule makes the atoms sum to I_p(X1, X2; Y) exactly.
    u1 = _conditional_mi(q, given=1)
    u2 = _conditional_mi(q, given=0)
    red = _mutual_information(q.sum(1)) - u1
    syn = mi_total - _joint_mi(q)
    return PIDResult(
        redundancy=red / scale,
        unique1=u1 / scale,
        unique2=u2 / scale,
        synergy=syn / scale,
        total=mi_total / scale,
        mi1=_mutual_information(arr.sum(1)) / scale,
        mi2=_mutual_information(arr.sum(0)) / scale,
        unit=unit,
        solver=used,
        sizes=tuple(int(s) for s in arr.shape),  # type: ignore[arg-type]
        names=(str(names[0]), str(names[1])),
    )


# -- estimates from samples -------------------------------------------------------------------------------------
def discretise_features(x: np.ndarray, n_clusters: int, seed: int = 0, name: str = "x") -> np.ndarray:
    """Cluster labels ``[N]`` of the rows of ``x`` (``[N, d]``) by k-means (scikit-learn), standardised first.

    Features are z-scored so that no single large-scale feature decides the clusters. Fewer clusters are used
    when there are fewer distinct rows than ``n_clusters``.
    """
    from sklearn.cluster import KMeans

    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise PIDError(f"{name} must be [N, d] (or [N]), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise PIDError(f"{name} has NaN/inf entries")
    if n_clusters < 1:
        raise PIDError(f"n_clusters must be >= 1, got {n_clusters}")
    std = arr.std(0)
    arr = (arr - arr.mean(0)) / np.where(std > 0, std, 1.0)
    distinct = len(np.unique(arr, axis=0))
    k = min(n_clusters, distinct)
    if k <= 1:
        return np.zeros(len(arr), dtype=np.int64)
    km = KMeans(n_clusters=k, n_init=4, random_state=seed)
    return km.fit_predict(arr).astype(np.int64)


def discretise_target(y: np.ndarray, n_bins: int = 8, discrete: bool | None = None) -> np.ndarray:
    """Integer codes ``[N]`` of a target: its classes, or quantile bins for a continuous target.

    ``discrete=None`` treats integer/bool targets, and float targets with at most ``n_bins`` distinct values, as
    classes. Quantile bins put about N / n_bins samples in each bin (fewer bins when values tie).
    """
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise PIDError(f"y must be a vector [N], got shape {arr.shape}")
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        raise PIDError("y has NaN/inf entries")
    distinct = np.unique(values)
    if _reads_as_classes(arr, len(distinct), n_bins, discrete):
        return np.searchsorted(distinct, values).astype(np.int64)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right").astype(np.int64)


def _reads_as_classes(y: np.ndarray, n_distinct: int, n_bins: int, discrete: bool | None) -> bool:
    if discrete is not None:
        return discrete
    return y.dtype == bool or np.issubdtype(y.dtype, np.integer) or n_distinct <= n_bins


def joint_histogram(c1: np.ndarray, c2: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Empirical ``p[x1, x2, y]`` of three integer code vectors (codes 0 .. max, unused codes dropped)."""
    codes = []
    for c in (c1, c2, cy):
        _, inv = np.unique(np.asarray(c), return_inverse=True)
        codes.append(inv.reshape(-1))
    shape = tuple(int(c.max()) + 1 for c in codes)
    counts = np.zeros(shape)
    np.add.at(counts, tuple(codes), 1.0)
    return counts / counts.sum()


AUTO_MAX_CLUSTERS = 8
AUTO_BIAS_BITS = 0.05


def auto_clusters(n: int, n_classes: int | None, budget_bits: float = AUTO_BIAS_BITS) -> int:
    """The largest k <= 8 (at least 2) whose Miller-Madow bias of I(X1, X2; Y) stays within ``budget_bits``.

    ``n_classes`` is |Y| for a discrete target; None means a continuous target cut into k bins as well.
    """
    for k in range(AUTO_MAX_CLUSTERS, 2, -1):
        ny = n_classes if n_classes is not None else k
        if (k * k - 1) * (ny - 1) / (2 * n * np.log(2)) <= budget_bits:
            return k
    return 2


def pid_estimate(
    x1: np.ndarray,
    x2: np.ndarray,
    y: np.ndarray,
    *,
    n_clusters: int | str = 8,
    n_bins: int | None = None,
    y_discrete: bool | None = None,
    seed: int = 0,
    unit: str = "bits",
    names: Sequence[str] = ("x1", "x2"),
    n_shuffles: int = 0,
) -> PIDResult:
    """PID of two continuous representations about a target, on a discretisation (Liang et al. 2023).

    Each representation is clustered by k-means into ``n_clusters`` codes; ``y`` is taken by its classes or cut
    into ``n_bins`` quantile bins; the plug-in joint histogram goes to :func:`pid_discrete`.

    Parameters
    ----------
    x1, x2
        ``[N, d1]`` and ``[N, d2]`` features (``[N]`` is read as d = 1).
    y
        ``[N]`` target (class labels, or a continuous value such as a sentiment score or model output).
    n_clusters
        Clusters per representation. More clusters keep more information but inflate the plug-in estimate's
        upward bias (about (|X1||X2| - 1)(|Y| - 1) / (2 N ln 2) bits for I(X1, X2; Y), most of it landing in
        synergy): keep ``n_clusters**2 * |Y|`` well below N. ``"auto"`` picks :func:`auto_clusters`: the largest
        k <= 8 whose bias estimate is at most 0.05 bits (bins for a continuous target follow k).
    n_bins
        Quantile bins for a continuous target (default ``n_clusters``).
    y_discrete
        Force the target to be read as classes (True) or binned (False); None decides from its values.
    seed
        k-means seed (and the shuffles' seed).
    unit, names
        As for :func:`pid_discrete`.
    n_shuffles
        Also decompose with the target randomly permuted this many times and report the mean atoms as
        ``extra["shuffle_baseline"]``: the estimator's output when the sources carry no information about the target.
        Measured atoms near their shuffle baseline are estimation bias, not information.
    """
    n = len(np.asarray(y))
    for name, arr in (("x1", x1), ("x2", x2)):
        if len(np.asarray(arr)) != n:
            raise PIDError(f"{name} has {len(np.asarray(arr))} rows, y has {n}")
    if n < 2:
        raise PIDError(f"need at least 2 samples, got {n}")
    if n_clusters == "auto":
        values = np.asarray(y)
        n_distinct = len(np.unique(values))
        if _reads_as_classes(values, n_distinct, n_bins or AUTO_MAX_CLUSTERS, y_discrete):
            n_clusters = auto_clusters(n, n_distinct)
        else:
            n_clusters = auto_clusters(n, n_bins)  # None: the bins follow k
    elif not isinstance(n_clusters, int | np.integer):
        raise PIDError(f"n_clusters must be an integer or 'auto', got {n_clusters!r}")
    c1 = discretise_features(x1, n_clusters, seed, name="x1")
    c2 = discretise_features(x2, n_clusters, seed, name="x2")
    cy = discretise_target(y, n_bins or n_clusters, y_discrete)
    hist = joint_histogram(c1, c2, cy)
    result = pid_discrete(hist, unit=unit, names=names)
    result.n_samples = n
    # Miller-Madow: the plug-in I(X; Y) over-estimates by about (|X| - 1)(|Y| - 1) / (2N) nats, X = (X1, X2) here.
    bias = float((hist.shape[0] * hist.shape[1] - 1) * (hist.shape[2] - 1) / (2 * n) / UNITS[unit])
    result.extra = {"n_clusters": n_clusters, "n_bins": n_bins or n_clusters, "seed": seed, "bias_estimate": bias}
    if bias > 0.2 * result.total:
        result.notes.append(
            f"plug-in bias estimate {bias:.3g} {unit} is {bias / max(result.total, 1e-12):.0%} of I(X1, X2; Y) = "
            f"{result.total:.3g} {unit} (mostly inflating synergy): use fewer clusters/bins or more samples"
        )
    if n_shuffles > 0:
        rng = np.random.default_rng(seed)
        runs = [pid_discrete(joint_histogram(c1, c2, rng.permutation(cy)), unit=unit) for _ in range(n_shuffles)]
        result.extra["shuffle_baseline"] = {
            key: float(np.mean([getattr(r, key) for r in runs]))
            for key in ("redundancy", "unique1", "unique2", "synergy", "total")
        }
    return result


def pooled_features(dataset: MultimodalDataset, name: str, representation: str = "mean") -> np.ndarray:
    """One vector per instance for a modality: the mean over its real steps, or all steps flattened."""
    modality = dataset[name]
    if modality.tokens is not None:
        raise PIDError(
            f"modality {name!r} holds token ids, which have no pooled features to discretise; run PID on modalities "
            "of float features"
        )
    if representation == "mean":
        w = modality.step_mask().astype(np.float64)[..., None]
        return (modality.values * w).sum(1) / np.maximum(w.sum(1), 1.0)
    if representation == "flatten":
        return modality.values.reshape(len(modality.values), -1).astype(np.float64)
    raise PIDError(f"representation must be 'mean' or 'flatten', got {representation!r}")


def modality_pid(
    predictor: Predictor | None,
    dataset: MultimodalDataset,
    modalities: Sequence[str] | None = None,
    *,
    target: str = "label",
    representation: str = "mean",
    n_clusters: int | str = "auto",
    n_bins: int | None = None,
    seed: int = 0,
    unit: str = "bits",
    n_shuffles: int = 0,
    batch_size: int = 4096,
    output: int | None = None,
) -> PIDResult:
    """PID of two modalities' pooled features about the labels or about a model's predictions.

    Parameters
    ----------
    predictor
        A :class:`~modalens.models.predictor.Predictor`; needed only for ``target="prediction"``.
    dataset
        The instances.
    modalities
        The two modalities (default: the dataset's first two).
    target
        ``"label"``: what the modalities tell about the labels (a property of the data). ``"prediction"``: about
        the model's outputs (argmax class for classifiers, the value for regressors) -- what the model's output
        can be explained by.
    representation
        ``"mean"`` (masked mean over real steps) or ``"flatten"``.
    n_clusters, n_bins, seed, unit, n_shuffles
        As for :func:`pid_estimate`; ``n_clusters`` defaults to ``"auto"`` here, so datasets of any size get an
        estimate whose plug-in bias stays small.
    batch_size
        Rows per forward pass when predicting.
    output
        With ``target="prediction"``: the output column whose value is the target (binned like any continuous
        target); None takes the predicted class of classifiers and column 0 of regressors.
    """
    clock = time.perf_counter()
    names = list(modalities) if modalities is not None else dataset.modality_names[:2]
    _check_pair(dataset, names)
    y, y_discrete, n_eval = _pid_target(predictor, dataset, target, output, batch_size)
    result = _pair_pid(dataset, names, y, y_discrete, representation, n_clusters, n_bins, seed, unit, n_shuffles)
    result.extra.update({"target": target, "representation": representation})
    if output is not None:
        result.extra["output"] = int(output)
    result.n_evaluations = n_eval
    result.seconds = time.perf_counter() - clock
    return result


def _check_pair(dataset: MultimodalDataset, names: Sequence[str]) -> None:
    if len(names) != 2:
        raise PIDError(f"modality_pid needs exactly two modalities, got {list(names)}")
    for name in names:
        if name not in dataset.modalities:
            raise PIDError(f"dataset {dataset.name!r} has no modality {name!r}; it has {dataset.modality_names}")


def _pid_target(
    predictor: Predictor | None, dataset: MultimodalDataset, target: str, output: int | None, batch_size: int
) -> tuple[np.ndarray, bool, int]:
    """The variable the modalities inform about: ``(y, y_discrete, model rows predicted)``."""
    if target == "label":
        if output is not None:
            raise PIDError("output picks a model output column; it applies to target='prediction', not 'label'")
        if dataset.labels is None:
            raise PIDError(f"dataset {dataset.name!r} has no labels; use target='prediction' with a predictor")
        return dataset.labels, dataset.label_kind == "classification", 0
    if target != "prediction":
        raise PIDError(f"target must be 'label' or 'prediction', got {target!r}")
    if predictor is None:
        raise PIDError("target='prediction' needs a predictor")
    out = _predict_all(predictor, dataset, batch_size)
    if output is not None:
        if isinstance(output, bool) or not isinstance(output, int | np.integer) or not 0 <= output < out.shape[1]:
            raise PIDError(f"output: expected a column index in [0, {out.shape[1]}), got {output!r}")
        return out[:, int(output)], False, len(out)
    if predictor.output_kind == "classification":
        return out.argmax(1), True, len(out)
    return out[:, 0], False, len(out)


def _pair_pid(
    dataset: MultimodalDataset,
    names: Sequence[str],
    y: np.ndarray,
    y_discrete: bool,
    representation: str,
    n_clusters: int | str,
    n_bins: int | None,
    seed: int,
    unit: str,
    n_shuffles: int,
) -> PIDResult:
    x1 = pooled_features(dataset, names[0], representation)
    x2 = pooled_features(dataset, names[1], representation)
    return pid_estimate(
        x1,
        x2,
        y,
        n_clusters=n_clusters,
        n_bins=n_bins,
        y_discrete=y_discrete,
        seed=seed,
        unit=unit,
        names=list(names),
        n_shuffles=n_shuffles,
    )


@dataclass
class PIDPairs(MethodResult):
    """PID of every pair of a predictor's modalities (or of chosen pairs), the dataset-level ``"pid"`` method.

    Attributes
    ----------
    pairs
        ``"<a>+<b>"`` -> the :class:`PIDResult` of modalities a and b.
    about
        ``"label"`` or ``"prediction"``: what the modalities inform about.
    instances
        ``[N]`` dataset rows used.
    method, n_evaluations, seconds
        As for every :class:`~modalens.interactions.methods.MethodResult`.
    """

    level: ClassVar[str] = "dataset"
    pairs: dict[str, PIDResult]
    about: str
    instances: np.ndarray
    method: str = "pid"
    n_evaluations: int = 0
    seconds: float = 0.0

    def __getitem__(self, pair: str) -> PIDResult:
        if pair not in self.pairs:
            raise PIDError(f"no PID for {pair!r}; the pairs are {list(self.pairs)}")
        return self.pairs[pair]

    def to_dict(self) -> dict[str, dict]:
        """``{"<a>+<b>": PIDResult.to_dict()}``, JSON-ready (the run manifest's ``dataset_measures["pid"]``)."""
        return {pair: result.to_dict() for pair, result in self.pairs.items()}

    def to_frame(self) -> pd.DataFrame:
        """One row per pair: the pair, the four atoms, the total and the unit."""
        return pd.DataFrame(
            [
                {
                    "pair": pair,
                    "redundancy": r.redundancy,
                    "unique1": r.unique1,
                    "unique2": r.unique2,
                    "synergy": r.synergy,
                    "total": r.total,
                    "unit": r.unit,
                }
                for pair, r in self.pairs.items()
            ]
        )


@register_method(
    "pid",
    "dataset",
    description="Partial information decomposition (redundancy, uniqueness, synergy) of each pair of modalities",
)
def pairwise_pid(
    predictor: Predictor,
    dataset: MultimodalDataset,
    *,
    target: int | None = None,
    index: np.ndarray | None = None,
    pairs: Sequence[Sequence[str]] | None = None,
    about: str = "auto",
    representation: str = "mean",
    n_clusters: int | str = "auto",
    n_bins: int | None = None,
    seed: int = 0,
    unit: str = "bits",
    n_shuffles: int = 0,
    batch_size: int = 4096,
) -> PIDPairs:
    """PID of the pooled features of every pair of the predictor's modalities (:func:`modality_pid` per pair).

    Parameters
    ----------
    predictor
        The predictor; its modalities make the pairs, and with ``about="prediction"`` its outputs the target.
    dataset
        The instances.
    target
        With ``about="prediction"``: the output column informed about (None: predicted class of classifiers,
        column 0 of regressors). Must be None for ``about="label"``.
    index
        Dataset rows to use (ints or a boolean mask); all by default.
    pairs
        The pairs of modality names (default: every pair of the predictor's modalities, in its order).
    about
        ``"label"``, ``"prediction"``, or ``"auto"`` (default): the labels when the dataset has them, else the
        model's predictions.
    representation, n_clusters, n_bins, seed, unit, n_shuffles, batch_size
        As for :func:`modality_pid`.
    """
    rows = resolve_index(dataset, index, PIDError)
    data = rows_of(dataset, rows)
    reads = list(predictor.modalities)
    every_pair = [[a, b] for i, a in enumerate(reads) for b in reads[i + 1 :]]
    chosen = [list(p) for p in pairs] if pairs is not None else every_pair
    if not chosen:
        raise PIDError(f"PID needs at least two modalities; the predictor reads {reads}")
    for pair in chosen:
        _check_pair(data, pair)
    if about == "auto":
        about = "label" if data.labels is not None else "prediction"
    y, y_discrete, n_eval = _pid_target(predictor, data, about, target, batch_size)
    results = {}
    for pair in chosen:
        clock = time.perf_counter()
        result = _pair_pid(data, pair, y, y_discrete, representation, n_clusters, n_bins, seed, unit, n_shuffles)
        result.extra.update({"target": about, "representation": representation})
        if target is not None:
            result.extra["output"] = int(target)
        result.n_evaluations = n_eval
        result.seconds = time.perf_counter() - clock
        results["+".join(pair)] = result
    return PIDPairs(pairs=results, about=about, instances=rows, n_evaluations=n_eval)


def _predict_all(predictor: Predictor, dataset: MultimodalDataset, batch_size: int) -> np.ndarray:
    reads = list(predictor.modalities)
    missing = [m for m in reads if m not in dataset.modalities]
    if missing:
        raise PIDError(f"the predictor reads modalities {missing} that dataset {dataset.name!r} lacks")
    parts = []
    for start in range(0, len(dataset), batch_size):
        sl = slice(start, min(len(dataset), start + batch_size))
        values = {m: dataset[m].values[sl] for m in reads}
        masks = {m: dataset[m].step_mask()[sl] for m in reads}
        parts.append(np.asarray(predictor.predict(values, masks), dtype=np.float64))
    return np.concatenate(parts, axis=0)
