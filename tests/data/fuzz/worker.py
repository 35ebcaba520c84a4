"""Child process of the fuzz harness: load each file of a manifest and print one line per file.

Run as ``python worker.py MANIFEST START STOP`` (cases ``START`` to ``STOP - 1``). ``MODALENS_FUZZ_MEMORY``
(bytes) caps its address space with ``setrlimit(RLIMIT_AS)`` before anything else is imported (here rather than in
a ``preexec_fn``, which is not safe in a parent with threads, as a pytest process holding torch and pyarrow is).
For case ``i`` it prints ``S i`` before touching the file and ``R i {json}`` after, flushing each line, so the
parent attributes a crash or a hang to the last ``S`` without an ``R``. The JSON holds ``outcome``:

- ``error``: a ``ModalensError`` whose message names the file; ``unnamed``: one that does not;
- ``ok``: the file loaded, and an independent reading of the same file (plain numpy, pyarrow or h5py, or a pickle
  reader with numpy's own reconstruction) says the same instances, values, masks, ids and labels;
- ``mismatch``: it loaded, but the independent reading disagrees (a silent shift or cast);
- ``other``: any other exception (a bug: the loader let a library error through).

In ``cli`` mode the file goes through ``modalens explain`` in this process: ``error`` then means exit status 2 with
exactly one ``error:`` line on stderr and no traceback; in ``cli-debug`` mode (``modalens --debug explain``) it means
the ``ModalensError`` itself propagated, as it does (with its traceback) under ``--debug``.
"""

from __future__ import annotations

import os

if os.environ.get("MODALENS_FUZZ_MEMORY"):  # the memory cap, set before anything big is imported or allocated
    import resource

    _cap = int(os.environ["MODALENS_FUZZ_MEMORY"])
    resource.setrlimit(resource.RLIMIT_AS, (_cap, _cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""


def run_load(case: dict) -> dict:
    from modalens._core.errors import ModalensError
    from modalens.data.loaders import load_dataset

    path = Path(case["path"])
    try:
        ds = load_dataset(path)
    except ModalensError as exc:
        message = str(exc)
        named = path.name in message
        return {"outcome": "error" if named else "unnamed", "type": type(exc).__name__, "message": message[:400]}
    except Exception as exc:  # noqa: BLE001  (the point: report whatever escaped)
        return {"outcome": "other", "type": type(exc).__name__, "message": str(exc)[:400], "where": _where(exc)}
    try:
        problem = ORACLES[case["format"]](path, ds)
    except Exception as exc:  # noqa: BLE001
        problem = f"independent reading failed: {type(exc).__name__}: {str(exc)[:200]}"
    if problem:
        return {"outcome": "mismatch", "message": problem}
    return {"outcome": "ok", "n": len(ds)}


def run_cli(case: dict) -> dict:
    from modalens._core.errors import ModalensError
    from modalens.cli.main import main

    err, code = io.StringIO(), None
    debug = ["--debug"] if case.get("mode") == "cli-debug" else []
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(
                [
                    *debug,
                    "explain",
                    case["path"],
                    "--model",
                    "modalens.models.glass_box:glass_box_model",
                    "--out",
                    case["out"],
                    "--overwrite",
                ]
            )
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except ModalensError as exc:
            if debug:  # with --debug the error itself propagates, traceback and all
                named = Path(case["path"]).name in str(exc)
                return {"outcome": "error" if named else "unnamed", "message": str(exc)[:400]}
            return {"outcome": "other", "type": type(exc).__name__, "message": str(exc)[:400], "where": _where(exc)}
        except Exception as exc:  # noqa: BLE001
            return {"outcome": "other", "type": type(exc).__name__, "message": str(exc)[:400], "where": _where(exc)}
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    one_line = len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err.getvalue()
    if code == 2 and one_line:
        named = Path(case["path"]).name in lines[0]
        return {"outcome": "error" if named else "unnamed", "message": lines[0][:400]}
    if code == 0:
        return {"outcome": "ok"}
    return {"outcome": "other", "type": f"exit {code}", "message": err.getvalue()[-400:]}


# -- independent readings ----------------------------------------------------------------------------------------
def _same(name: str, got: np.ndarray, want: np.ndarray) -> str:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"{name}: loaded shape {got.shape}, the file says {want.shape}"
    if got.dtype.kind in "fc" or want.dtype.kind in "fc":
        equal = np.array_equal(got.astype(np.float64), want.astype(np.float64), equal_nan=True)
    else:
        equal = np.array_equal(got, want)
    return "" if equal else f"{name}: loaded values differ from the file's"


def _check_npz(path: Path, ds) -> str:
    with np.load(path, allow_pickle=False) as archive:
        for name, m in ds.modalities.items():
            problem = _same(f"values/{name}", m.values, archive[f"values/{name}"].astype(np.float32))
            if not problem and m.mask is not None:
                problem = _same(f"mask/{name}", m.mask, archive[f"mask/{name}"].astype(bool))
            if not problem and m.words is not None:
                problem = "" if m.words == archive[f"words/{name}"].tolist() else f"words/{name} differ"
            if problem:
                return problem
        if ds.ids.tolist() != archive["ids"].tolist():
            return "ids differ"
        if ds.labels is not None and "labels" in archive.files:
            return _same("labels", ds.labels, archive["labels"].astype(ds.labels.dtype))
    return ""


def _check_parquet(path: Path, ds) -> str:
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    if len(rows) != len(ds):
        return f"{len(ds)} instances loaded, the file has {len(rows)} rows"
    for i, row in enumerate(rows):
        if row["id"] != ds.ids[i]:
            return f"row {i}: id {row['id']!r} loaded as {ds.ids[i]!r}"
        for name, m in ds.modalities.items():
            try:
                want = np.asarray(row[f"values/{name}"], dtype=np.float32)
            except ValueError:
                return f"row {i}: values/{name} is ragged in the file but loaded"
            problem = _same(f"row {i} values/{name}", m.values[i], want)
            if problem:
                return problem
            if m.mask is not None and list(map(bool, row[f"mask/{name}"])) != m.mask[i].tolist():
                return f"row {i}: mask/{name} differs"
        if ds.labels is not None and "label" in row and not np.isclose(float(row["label"]), float(ds.labels[i])):
            return f"row {i}: label differs"
    return ""


class _Reference(pickle.Unpickler):
    """numpy's own reconstruction, for files the loader under test already accepted (so nothing else is named)."""

    def find_class(self, module: str, name: str):
        if module.split(".")[0] in ("numpy", "builtins", "__builtin__", "collections", "_codecs"):
            return super().find_class(module.replace("numpy.core", "numpy._core"), name)
        raise pickle.UnpicklingError(f"{module}.{name}")


def _check_mmsa(path: Path, ds) -> str:
    with path.open("rb") as handle:
        data = _Reference(handle, encoding="latin1").load()
    order = [s for s in ("train", "valid", "test") if s in data] + [
        k for k in data if k not in ("train", "valid", "test")
    ]
    for name, m in ds.modalities.items():
        want = np.concatenate([np.asarray(data[s][name]).astype(np.float32) for s in order])
        problem = _same(name, m.values, want)
        if problem:
            return problem
    labels = np.concatenate([np.asarray(data[s]["regression_labels"]).reshape(-1) for s in order])
    problem = _same("regression_labels", ds.labels, labels.astype(np.float32))
    if problem:
        return problem
    if all("id" in data[s] for s in order):
        ids = [v.decode() if isinstance(v, bytes) else str(v) for s in order for v in np.asarray(data[s]["id"])]
        if ids != ds.ids.tolist():
            return "ids differ"
    return ""


def _check_csd(path: Path, ds) -> str:
    import h5py

    with h5py.File(path, "r") as f:
        root = next(f[k] for k in f if "data" in f[k])
        (name,) = ds.modality_names
        m = ds[name]
        if sorted(ds.ids.tolist()) != sorted(root["data"]):
            return f"videos {ds.ids.tolist()} loaded, the file has {sorted(root['data'])}"
        for i, vid in enumerate(ds.ids):
            feats = np.asarray(root["data"][vid]["features"][()], dtype=np.float32)
            feats = feats[:, None] if feats.ndim == 1 else feats
            starts = np.asarray(root["data"][vid]["intervals"][()], dtype=np.float64)[:, 0]
            want = feats[np.argsort(starts, kind="stable")]
            problem = _same(f"video {vid}", m.values[i][m.step_mask()[i]], want)
            if problem:
                return problem
    return ""


ORACLES = {"native": _check_npz, "parquet": _check_parquet, "mmsa": _check_mmsa, "csd": _check_csd}


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text())
    start, stop = int(sys.argv[2]), min(int(sys.argv[3]), len(cases))
    import h5py  # noqa: F401  (import everything once, before the first case, while memory is fresh)
    import pyarrow.parquet  # noqa: F401

    import modalens.data.loaders  # noqa: F401

    if any(case.get("mode", "").startswith("cli") for case in cases[start:stop]):
        import modalens.cli.main  # noqa: F401
        import modalens.models.glass_box  # noqa: F401

    for i in range(start, stop):
        print(f"S {i}", flush=True)
        case = cases[i]
        began = time.perf_counter()
        result = run_cli(case) if case.get("mode", "").startswith("cli") else run_load(case)
        result["seconds"] = round(time.perf_counter() - began, 3)
        print(f"R {i} {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
