"""One contract for every explanation method, and one registry of them with their declared capabilities.

Every method -- modality level (Shapley values over modalities), feature level (words, frames, named features) and
dataset level (EMAP, PID) -- is registered in :data:`METHODS` as a :class:`MethodSpec` and called the same way::

    result = spec(predictor, dataset, target=None, index=None, **options)

- ``predictor``: a :class:`~modalens.models.predictor.Predictor`;
- ``dataset``: the :class:`~modalens.data.dataset.MultimodalDataset` the instances come from;
- ``target``: the output explained. None: the predicted class of each instance for classifiers, column 0 for
  regression (dataset-level methods read None as "every output", see each method); an int: that column; an int
  array: one column per dataset row (or per explained instance);
- ``index``: the dataset rows to explain (ints or a boolean mask); all rows by default;
- ``options``: the method's own settings. A spec declares them (:attr:`MethodSpec.options`, read from the
  function's keyword arguments), so callers never special-case a method by name: :meth:`MethodSpec.accepted` picks
  from a pool of shared settings (``batch_size``, ``seed``, ``progress`` ...) the ones a method takes, and an option
  a method does not take is refused with the list of those it does.

Every result derives from :class:`MethodResult` (``method``, ``level``, ``n_evaluations``, ``seconds``).

Capabilities are declared, never sniffed: a spec says whether it ``needs_gradients``, ``batches_across_instances``,
``gives_standard_errors`` and is ``exact``; a predictor says whether it ``supports_gradients``
(:class:`~modalens.models.predictor.Predictor`). A method that needs what the predictor lacks is refused with a
:class:`CapabilityError` before any work is done.

The method table of ``docs/attribution.md`` is generated from this registry (:func:`method_table`,
``python scripts/update_method_table.py``); a test fails when the two drift apart.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from modalens._core.errors import ConfigurationError, ModalensError
from modalens._core.registry import Registry
from modalens.data.dataset import MultimodalDataset
from modalens.models.predictor import Predictor

LEVELS: tuple[str, ...] = ("modality", "feature", "dataset")
CAPABILITIES: tuple[str, ...] = ("needs_gradients", "batches_across_instances", "gives_standard_errors", "exact")
# Arguments every method takes by the contract; everything else a method's function takes is one of its options.
CONTRACT_ARGUMENTS: tuple[str, ...] = ("predictor", "dataset", "target", "index")


class MethodError(ModalensError, ValueError):
    """Bad arguments to an explanation method; the message names the argument."""


class AttributionError(MethodError):
    """Bad arguments to an attribution method (modality or feature level); the message names the argument."""


class CapabilityError(AttributionError):
    """The predictor lacks a capability the method needs (e.g. gradients); the message says which and what to use."""


class MethodResult:
    """The base of every method's result.

    Attributes
    ----------
    level
        ``"modality"``, ``"feature"`` or ``"dataset"`` (a class attribute of each result type).
    method
        The registered name of the method that produced it.
    n_evaluations
        Model rows evaluated (input rows, not calls).
    seconds
        Wall-clock time of the call, set when the method is called through its :class:`MethodSpec`.
    """

    level: ClassVar[str] = ""
    method: str
    n_evaluations: int
    seconds: float

    def cost(self) -> dict[str, Any]:
        """What the result cost: ``{"method", "level", "n_evaluations", "seconds"}``, JSON-ready."""
        return {
            "method": self.method,
            "level": self.level,
            "n_evaluations": int(self.n_evaluations),
            "seconds": float(self.seconds),
        }


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its function, level, one-line description and declared capabilities.

    Attributes
    ----------
    name
        The registered name (``explain(feature_method=name)``, ``modalens methods``).
    level
        ``"modality"``, ``"feature"`` or ``"dataset"``.
    run
        ``run(predictor, dataset, *, target=None, index=None, **options) -> MethodResult``.
    description
        One line for listings.
    needs_gradients
        The method differentiates the model: the predictor must declare ``supports_gradients``.
    batches_across_instances
        Model rows of many instances are stacked into one model call.
    gives_standard_errors
        The result holds a standard error per value (a Monte-Carlo estimate).
    exact
        The values are exact (no sampling or integration error).
    aliases
        Other names the method is found by.
    options
        Option name -> default, read from ``run``'s keyword arguments (the contract's arguments excluded).
    """

    name: str
    level: str
    run: Callable[..., MethodResult]
    description: str
    needs_gradients: bool = False
    batches_across_instances: bool = False
    gives_standard_errors: bool = False
    exact: bool = False
    aliases: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ConfigurationError(f"method {self.name!r}: level must be one of {list(LEVELS)}, got {self.level!r}")
        if not self.description or "\n" in self.description:
            raise ConfigurationError(f"method {self.name!r}: the description must be one non-empty line")
        params = inspect.signature(self.run).parameters
        missing = [a for a in CONTRACT_ARGUMENTS if a not in params]
        if missing:
            raise ConfigurationError(
                f"method {self.name!r}: its function must take (predictor, dataset, *, target, index, **options); "
                f"it lacks {missing}"
            )
        options = {
            n: p.default
            for n, p in params.items()
            if n not in CONTRACT_ARGUMENTS and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }
        object.__setattr__(self, "options", dict(options))

    def capabilities(self) -> dict[str, bool]:
        """The declared capabilities, keyed as :data:`CAPABILITIES`."""
        return {c: bool(getattr(self, c)) for c in CAPABILITIES}

    def accepted(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of ``settings`` that are options of this method (shared settings offered to every method)."""
        return {k: v for k, v in settings.items() if k in self.options}

    def check(self, predictor: Predictor) -> None:
        """Refuse a predictor that lacks a capability this method needs, before any work is done."""
        if self.needs_gradients and not supports_gradients(predictor):
            raise CapabilityError(
                f"{self.name} needs gradients, and {type(predictor).__name__} does not support them "
                "(supports_gradients is False): wrap a differentiable torch module in a TorchPredictor, or use a "
                f"model-agnostic {self.level}-level method: {_agnostic(self.level)}"
            )

    def __call__(
        self,
        predictor: Predictor,
        dataset: MultimodalDataset,
        *,
        target: Any = None,
        index: np.ndarray | None = None,
        **options: Any,
    ) -> MethodResult:
        """Run the method through the contract: options checked by name, capabilities checked, time recorded."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ConfigurationError(
                f"method {self.name!r} takes no option(s) {unknown}; its options are {sorted(self.options)}"
            )
        self.check(predictor)
        clock = time.perf_counter()
        result = self.run(predictor, dataset, target=target, index=index, **options)
        if not isinstance(result, MethodResult):
            raise MethodError(f"method {self.name!r} returned {type(result).__name__}, not a MethodResult")
        result.seconds = time.perf_counter() - clock
        return result

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description: name, level, description, capabilities, aliases and option names."""
        return {
            "name": self.name,
            "level": self.level,
            "description": self.description,
            **self.capabilities(),
            "aliases": list(self.aliases),
            "options": sorted(self.options),
        }


METHODS: Registry[MethodSpec] = Registry(
    "method",
    providers=[
        "modalens.interactions.shapley",
        "modalens.interactions.attribution",
        "modalens.interactions.emap",
        "modalens.interactions.pid",
    ],
)
"""Every explanation method, by name; importing the provider modules registers the built-in ones."""


def register_method(
    name: str,
    level: str,
    *,
    description: str,
    needs_gradients: bool = False,
    batches_across_instances: bool = False,
    gives_standard_errors: bool = False,
    exact: bool = False,
    aliases: tuple[str, ...] = (),
    replace: bool = False,
) -> Callable[[Callable[..., MethodResult]], Callable[..., MethodResult]]:
    """Decorator: register a function that follows the contract as a method; the function is returned unchanged."""

    def add(run: Callable[..., MethodResult]) -> Callable[..., MethodResult]:
        spec = MethodSpec(
            name,
            level,
            run,
            description,
            needs_gradients=needs_gradients,
            batches_across_instances=batches_across_instances,
            gives_standard_errors=gives_standard_errors,
            exact=exact,
            aliases=tuple(aliases),
        )
        METHODS.register(name, spec, aliases=aliases, replace=replace)
        return run

    return add


def get_method(name: str, level: str | None = None) -> MethodSpec:
    """The spec registered as ``name`` (or an alias); with ``level``, only that level's methods are found."""
    if level is None:
        return METHODS.get(name)
    return MethodsAt(level)[name]


def method_specs(level: str | None = None) -> list[MethodSpec]:
    """The registered specs, by level (modality, feature, dataset) then name; only ``level``'s when given."""
    if level is not None and level not in LEVELS:
        raise ConfigurationError(f"level must be one of {list(LEVELS)}, got {level!r}")
    specs = [spec for _, spec in METHODS.items() if level is None or spec.level == level]
    return sorted(specs, key=lambda s: (LEVELS.index(s.level), s.name))


class MethodsAt(Mapping[str, MethodSpec]):
    """The methods of one level as a read-only mapping, name -> spec; an unknown name lists the level's choices."""

    def __init__(self, level: str) -> None:
        if level not in LEVELS:
            raise ConfigurationError(f"level must be one of {list(LEVELS)}, got {level!r}")
        self.level = level

    def __getitem__(self, name: str) -> MethodSpec:
        spec = METHODS.get(name) if name in METHODS else None
        if spec is None or spec.level != self.level:
            raise ConfigurationError(f"unknown {self.level} method {name!r}; choose from {list(self)}")
        return spec

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in METHODS and METHODS.get(name).level == self.level

    def __iter__(self) -> Iterator[str]:
        return iter([s.name for s in method_specs(self.level)])

    def __len__(self) -> int:
        return len(method_specs(self.level))


def supports_gradients(predictor: Predictor) -> bool:
    """Whether ``predictor`` declares gradient support (``supports_gradients``); undeclared means no."""
    return bool(getattr(predictor, "supports_gradients", False))


def _agnostic(level: str) -> str:
    names = [s.name for s in method_specs(level) if not s.needs_gradients]
    return ", ".join(names) if names else "none registered"


# -- the rows and outputs a method explains ------------------------------------------------------------------------


def resolve_index(
    dataset: MultimodalDataset, index: np.ndarray | None, error: type[MethodError] = AttributionError
) -> np.ndarray:
    """The dataset rows to explain as an int64 array: all rows for None; ints or a boolean mask otherwise."""
    n = len(dataset)
    if index is None:
        return np.arange(n)
    idx = np.asarray(index)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise error(f"index: a boolean index must have shape ({n},), got {idx.shape}")
        return np.flatnonzero(idx)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise error(f"index: expected a 1-D array of dataset row numbers, got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise error(f"index: row numbers must lie in [0, {n}), got range [{idx.min()}, {idx.max()}]")
    return idx.astype(np.int64)


def rows_of(dataset: MultimodalDataset, rows: np.ndarray) -> MultimodalDataset:
    """The dataset restricted to ``rows``; the dataset itself when that is every row in order (no copy)."""
    if len(rows) == len(dataset) and np.array_equal(rows, np.arange(len(dataset))):
        return dataset
    return dataset.take(rows)


def check_target(target: int | np.ndarray | None, n_dataset: int, rows: np.ndarray) -> np.ndarray | int | None:
    """Validate ``target`` and return it per explained row (an array), an int, or None (choose per output)."""
    if target is None:
        return None
    if np.isscalar(target):
        if not isinstance(target, int | np.integer) or isinstance(target, bool):
            raise AttributionError(f"target: expected None, an int or an int array, got {target!r}")
        return int(target)
    arr = np.asarray(target)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise AttributionError(f"target: expected an int array of output columns, got {arr.dtype} {arr.shape}")
    if len(arr) == n_dataset:  # one per dataset row
        return arr[rows].astype(np.int64)
    if len(arr) == len(rows):  # one per explained instance
        return arr.astype(np.int64)
    raise AttributionError(
        f"target: an array must hold one column per dataset row ({n_dataset}) or per explained instance "
        f"({len(rows)}), got {len(arr)}"
    )


def pick_target(output_kind: str, target: np.ndarray | int | None, full: np.ndarray, where: slice) -> np.ndarray:
    """Per-instance output column from the full-input outputs ``full`` ([B, K]) of the explained rows ``where``."""
    k = full.shape[1]
    if target is None:
        if output_kind == "classification":
            return full.argmax(1)
        return np.zeros(len(full), dtype=np.int64)
    t = np.full(len(full), target, dtype=np.int64) if isinstance(target, int) else target[where]
    if (t < 0).any() or (t >= k).any():
        raise AttributionError(f"target: output columns must lie in [0, {k}), got {sorted(set(t.tolist()))}")
    return t


# -- the generated method table ------------------------------------------------------------------------------------

TABLE_START = "<!-- method-table:start (generated by scripts/update_method_table.py; do not edit) -->"
TABLE_END = "<!-- method-table:end -->"


def method_table() -> str:
    """The registered methods as a Markdown table: level, name, capabilities, options and description."""

    def mark(flag: bool) -> str:
        return "yes" if flag else "-"

    lines = [
        "| level | method | needs gradients | batches across instances | standard errors | exact | options | what |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for spec in method_specs():
        options = ", ".join(f"`{o}`" for o in sorted(spec.options)) or "-"
        name = f"`{spec.name}`" + "".join(f" (`{a}`)" for a in spec.aliases)
        flags = " | ".join(mark(f) for f in spec.capabilities().values())
        lines.append(f"| {spec.level} | {name} | {flags} | {options} | {spec.description} |")
    return "\n".join(lines)


def render_method_table(text: str) -> str:
    """``text`` with the part between :data:`TABLE_START` and :data:`TABLE_END` replaced by :func:`method_table`."""
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ConfigurationError(f"the text has no method-table markers ({TABLE_START!r} ... {TABLE_END!r})")
    return text[: start + len(TABLE_START)] + "\n" + method_table() + "\n" + text[end:]


def write_method_table(path: str | Path) -> bool:
    """Regenerate the method table in the Markdown file ``path``; True when the file changed."""
    target = Path(path)
    old = target.read_text(encoding="utf-8")
    new = render_method_table(old)
    if new != old:
        target.write_text(new, encoding="utf-8")
    return new != old
