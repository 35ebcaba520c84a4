"""Loader for CMU Multimodal SDK computational sequences (``.csd``, HDF5), with word-level alignment.

A computational sequence file holds one root group named after the sequence (``COVAREP``, ``FACET 4.2``,
``Opinion Segment Labels`` ...) with

- ``data/<video id>/features``: ``[T, D]`` values (for the words sequence: ``[T, 1]`` byte strings such as ``b'hello'``,
  with ``b'sp'`` marking silence);
- ``data/<video id>/intervals``: ``[T, 2]`` start and end time of each row, in seconds;
- ``metadata/<key>``: ``(1,)`` string datasets holding JSON (``dimension names``, ``root name`` ...).

Instances
---------
With a labels sequence (e.g. ``CMU_MOSI_Opinion_Labels.csd``) every labelled segment of every video is one
instance, id ``<video>[<k>]`` (the SDK's own naming), label ``features[k, label_column]``. Without one, every video
is one instance spanning all its frames and words, without labels.

Word-level alignment (``align_to="words"``)
-------------------------------------------
Steps are the words of the words sequence whose midpoint falls inside the instance's segment (each word belongs to
at most one segment; a whole-video instance takes all words), silence tokens dropped. A modality's value at a word
is the **overlap-weighted** mean of its frames over the word's interval: a frame's weight is the length of the
intersection of its interval with the word's. For frames entirely inside the word and equally long (the usual
100 Hz COVAREP / 30 Hz Facet case) this is the plain average of the frames inside the word, the SDK's collapse;
frames straddling a word boundary count in proportion to the part that lies inside (``weighting="uniform"`` instead
takes the plain mean of every overlapping frame, as the SDK's usual ``avg`` collapse does). As in the SDK, a frame
overlaps a word only when the overlap exceeds ``OVERLAP_EPSILON`` (1e-5 s): frames touching a word boundary by float
noise do not count. Zero-length (point) frames inside a word are averaged when no frame overlaps it. A word no
frame overlaps gets zeros and mask False for that modality. Words are attached to every aligned modality (they
share the word steps) and joined into ``texts``.

Without alignment (``align_to=None``), each modality keeps the frames that overlap the instance interval, padded at
the end to the longest instance, with a step mask.
"""

from __future__ import annotations

import json
import math
import os
import struct
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from modalens.data.dataset import DatasetError, Modality, MultimodalDataset
from modalens.data.limits import Budget, Limits, resolve
from modalens.data.mmsa import NonFinite, feature_names_for, fix_nonfinite, guess_kind

SILENCE = ("sp",)

# A frame belongs to a word only when their intervals overlap by more than this many seconds. This is the
# CMU Multimodal SDK's own tolerance (``epsilon = 10e-6`` in ``mmsdk/mmdatasdk/dataset/dataset.py``, used by
# ``mmdataset.align``): frame times computed by accumulation (k * 0.01 s summed up) carry float noise of ~1e-15 s, and
# without it a frame that only touches a word boundary would be counted as overlapping.
OVERLAP_EPSILON = 1e-5


@dataclass
class ComputationalSequence:
    """One ``.csd`` file in memory: per video, features ``[T, D]`` and intervals ``[T, 2]``, in order of start."""

    path: Path
    root: str
    features: dict[str, np.ndarray]
    intervals: dict[str, np.ndarray]
    metadata: dict[str, object] = field(default_factory=dict)
    _running_end: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def running_end(self, vid: str) -> np.ndarray:
        """Running maximum of the frames' end times (sorted, for bisection), cached per video."""
        if vid not in self._running_end:
            ends = self.intervals[vid][:, 1]
            self._running_end[vid] = np.maximum.accumulate(ends) if len(ends) else ends
        return self._running_end[vid]

    @property
    def dimension_names(self) -> list[str] | None:
        names = self.metadata.get("dimension names")
        return [str(x) for x in names] if isinstance(names, list) else None


def read_csd(
    path: str | os.PathLike,
    *,
    text: bool = False,
    nonfinite: NonFinite = "error",
    limits: Limits | None = None,
    budget: Budget | None = None,
) -> ComputationalSequence:
    """Read and validate one computational sequence.

    Parameters
    ----------
    path
        The ``.csd`` file.
    text
        True for a words sequence: features are ``[T, 1]`` byte or unicode strings, returned as str.
    nonfinite
        ``"error"`` refuses NaN/inf in numeric features, ``"zero"`` replaces them with 0.
    limits, budget
        Size limits (:mod:`modalens.data.limits`), or a running account shared with the other files of one load;
        every dataset's size is claimed from its HDF5 dataspace and datatype before it is read.

    Raises
    ------
    DatasetError
        Naming the file, video and field: not HDF5 (or truncated), no root/data group, features not ``[T, D]``,
        intervals not ``[T, 2]`` finite with end >= start, D differing between videos; and, naming the path inside
        the file, anything that would read outside it (external links, soft links, external storage, virtual
        datasets), storage that does not hold the declared data (never-written datasets read as fill values),
        and features that are not real numbers (or, for words, not strings).
    LimitError
        A dataset claims more bytes than the limits allow.
    """
    import h5py  # noqa: PLC0415  (optional dependency of this format only)

    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"{source}: no such file")
    budget = budget if budget is not None else resolve(limits).budget(source)
    budget.add_file(source)
    try:
        handle = h5py.File(source, "r")
    except _H5_ERRORS as exc:
        raise DatasetError(
            f"{source}: not a readable HDF5 computational sequence (truncated or corrupt?): {exc}"
        ) from exc
    try:
        with handle:
            return _read(source, handle, text, nonfinite, budget)
    except DatasetError:
        raise
    except _H5_ERRORS as exc:  # HDF5 metadata damaged somewhere the checks above did not look
        raise DatasetError(f"{source}: unreadable HDF5 structure (truncated or corrupt?): {exc}") from exc


_H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, UnicodeDecodeError)


def _read(source: Path, handle: object, text: bool, nonfinite: NonFinite, budget: Budget) -> ComputationalSequence:
    import h5py  # noqa: PLC0415

    roots = []
    for key in handle:
        obj = _child(source, handle, key, None)
        if isinstance(obj, h5py.Group) and isinstance(_child(source, obj, "data", None), h5py.Group):
            roots.append(key)
    if len(roots) != 1:
        raise DatasetError(
            f"{source}: expected one root group holding 'data' (the sequence name), found {sorted(handle)}"
        )
    root = handle[roots[0]]
    data = _child(source, root, "data", h5py.Group)
    features, intervals = {}, {}
    width = None
    size = source.stat().st_size
    for vid in data:
        where = f"{source}: video {vid!r}"
        group = _child(source, data, vid, h5py.Group, what=f"video {vid!r}")
        if group is None:
            raise DatasetError(f"{where}: listed in 'data' but cannot be opened (corrupt file?)")
        feats_ds = _child(source, group, "features", h5py.Dataset, what=f"video {vid!r} field 'features'")
        ivals_ds = _child(source, group, "intervals", h5py.Dataset, what=f"video {vid!r} field 'intervals'")
        if feats_ds is None or ivals_ds is None:
            raise DatasetError(f"{where}: missing dataset {'features' if feats_ds is None else 'intervals'!r}")
        feats = _dataset(source, feats_ds, f"{where} field 'features'", "string" if text else "number", budget, size)
        ivals = _dataset(source, ivals_ds, f"{where} field 'intervals'", "number", budget, size)
        if feats.ndim == 1:
            feats = feats[:, None]
        if feats.ndim != 2:
            raise DatasetError(f"{where} field 'features': expected shape [T, D], got {feats.shape}")
        if ivals.shape != (feats.shape[0], 2):
            raise DatasetError(f"{where} field 'intervals': expected shape [T={feats.shape[0]}, 2], got {ivals.shape}")
        ivals = ivals.astype(np.float64)
        if not np.isfinite(ivals).all() or (ivals[:, 1] < ivals[:, 0]).any():
            raise DatasetError(f"{where} field 'intervals': expected finite [start, end] rows with end >= start")
        if text:
            if feats.shape[1] != 1:
                raise DatasetError(
                    f"{where} field 'features': a words sequence holds [T, 1] strings, got {feats.shape}"
                )
            feats = np.array([_decode(x) for x in feats[:, 0]], dtype=object)[:, None]
        else:
            feats, _ = fix_nonfinite(
                feats.astype(np.float32),
                nonfinite,
                f"{where} field 'features'",
                "pass nonfinite='zero' to zero them",
            )
            if width is not None and feats.shape[1] != width:
                raise DatasetError(
                    f"{where} field 'features': expected D = {width} (as other videos), got {feats.shape[1]}"
                )
            width = feats.shape[1]
        order = np.argsort(ivals[:, 0], kind="stable")  # time order, so alignment can bisect
        features[vid], intervals[vid] = feats[order], ivals[order]
    metadata = _metadata(source, _child(source, root, "metadata", h5py.Group), budget, size)
    return ComputationalSequence(source, roots[0], features, intervals, metadata)


def _child(source: Path, group: object, name: str, kind: type | None, *, what: str | None = None) -> object:
    """``group[name]`` through a hard link only: external and soft links are refused (they can leave the file or
    loop), and the object must be of ``kind`` (a Group or Dataset) when given. None when there is no such link."""
    import h5py  # noqa: PLC0415

    inside = f"{(group.name or '').rstrip('/')}/{name}"
    label = f"{what} ({inside})" if what else inside
    link = group.get(name, getlink=True)
    if link is None:
        return None
    if isinstance(link, h5py.ExternalLink):
        raise DatasetError(
            f"{source}: {inside} is an external link to {link.filename}:{link.path}; a computational sequence must "
            "hold its own data"
        )
    if isinstance(link, h5py.SoftLink):
        raise DatasetError(
            f"{source}: {inside} is a soft link to {link.path}; a computational sequence is read through hard "
            "links only"
        )
    if not isinstance(link, h5py.HardLink):
        raise DatasetError(f"{source}: {inside} is a {type(link).__name__}; only hard links are read")
    obj = group[name]
    if kind is not None and not isinstance(obj, kind):
        expected = "group" if kind is h5py.Group else "dataset"
        raise DatasetError(f"{source}: {label} must be an HDF5 {expected}, got {type(obj).__name__}")
    return obj


def _dataset(source: Path, ds: object, where: str, kind: str, budget: Budget, file_size: int) -> np.ndarray:
    """A dataset's values after the checks that keep the read inside the file and within the limits."""
    import h5py  # noqa: PLC0415

    inside = ds.name or "an unnamed dataset"
    at = f"{where} ({inside})"
    if ds.is_virtual:
        raise DatasetError(f"{at} is a virtual dataset (it maps other files); refused")
    if ds.external:
        files = sorted({str(entry[0]) for entry in ds.external})
        raise DatasetError(f"{at} keeps its data in external files {files}; refused")
    if ds.shape is None:
        raise DatasetError(f"{at} has an empty (null) dataspace")
    dtype = ds.dtype
    vlen = h5py.check_string_dtype(dtype) is not None and dtype.kind == "O"
    if kind == "number":
        if dtype.kind not in "iuf" or dtype.fields is not None or dtype.subdtype is not None:
            raise DatasetError(f"{at}: expected real numbers, got dtype {_h5_type(dtype)}")
    elif not (vlen or (dtype.kind == "S" and dtype.fields is None)):
        raise DatasetError(f"{at}: expected strings, got dtype {_h5_type(dtype)}")
    count = math.prod(ds.shape)
    nbytes = count * dtype.itemsize
    if count and not vlen:
        _check_storage(ds, at, nbytes, file_size)
    budget.claim(f"{where.split(': ', 1)[-1]} (shape {ds.shape}, {dtype})", nbytes)
    if not count:
        return np.zeros(ds.shape, dtype=object if vlen else dtype)
    if vlen:
        return _vlen_strings(ds, at, budget, file_size)
    try:
        return ds[()]
    except _H5_ERRORS as exc:
        raise DatasetError(f"{at}: data unreadable (truncated file?): {exc}") from exc


def _check_storage(ds: object, at: str, nbytes: int, file_size: int) -> None:
    """The dataset's storage must hold what it declares, inside the file: every chunk written, of a possible size.

    HDF5 reads unwritten storage as fill values (a few bytes can declare gigabytes), and crashes on some damaged
    chunk indexes (a zero-length chunk through the Fletcher-32 filter reads before its buffer).
    """
    import h5py  # noqa: PLC0415

    plist = ds.id.get_create_plist()
    layout = plist.get_layout()
    if layout == h5py.h5d.CHUNKED:
        expected = math.prod(-(-d // c) for d, c in zip(ds.shape, ds.chunks, strict=True))
        stored = ds.id.get_num_chunks()
        if stored != expected:
            raise DatasetError(
                f"{at}: declares shape {ds.shape} in {expected} chunks but stores {stored}; the rest would read as "
                "fill values"
            )
        filtered = plist.get_nfilters() > 0
        chunk_bytes = math.prod(ds.chunks) * ds.dtype.itemsize
        for i in range(stored):
            info = ds.id.get_chunk_info(i)
            size, offset = int(info.size), info.byte_offset
            if offset is None or size <= 0 or offset + size > file_size or (not filtered and size != chunk_bytes):
                raise DatasetError(
                    f"{at}: chunk {tuple(info.chunk_offset)} is stored as {size} bytes at byte {offset} of a "
                    f"{file_size}-byte file; the chunk index is damaged"
                )
        return
    stored = ds.id.get_storage_size()
    if stored != nbytes:
        raise DatasetError(
            f"{at}: declares shape {ds.shape} of {ds.dtype} ({nbytes} bytes) but stores {stored}; the rest would "
            "read as fill values"
        )
    offset = ds.id.get_offset() if layout == h5py.h5d.CONTIGUOUS else None
    if offset is not None and offset + nbytes > file_size:
        raise DatasetError(f"{at}: its {nbytes} bytes at byte {offset} run past the end of the {file_size}-byte file")


def _vlen_strings(ds: object, at: str, budget: Budget, file_size: int) -> np.ndarray:
    """Variable-length strings, read from the file's global heap by this module, not by HDF5.

    HDF5 loops forever on some damaged global heaps (a free-space entry of size 0), and one heap object can be
    referenced by any number of elements (a string bomb). Each element is a heap reference (length, collection
    address, object index); every collection is parsed with its lengths checked against the file, and the decoded
    bytes are claimed against the limits as they accumulate.
    """
    import h5py  # noqa: PLC0415

    sizes = ds.file.id.get_create_plist().get_sizes()  # (size of addresses, size of lengths) in this file
    address_size, length_size = int(sizes[0]), int(sizes[1])
    if address_size not in (2, 4, 8) or length_size not in (2, 4, 8):
        raise DatasetError(f"{at}: the file declares {address_size}-byte addresses and {length_size}-byte lengths")
    if ds.id.get_create_plist().get_layout() != h5py.h5d.CONTIGUOUS or ds.id.get_offset() is None:
        raise DatasetError(f"{at}: variable-length strings are read only from contiguous storage")
    count = math.prod(ds.shape)
    record = 4 + address_size + 4
    offset = ds.id.get_offset()
    if ds.id.get_storage_size() != count * record or offset + count * record > file_size:
        raise DatasetError(f"{at}: its heap references do not fit in the file")
    fmt = {2: "H", 4: "I", 8: "Q"}
    with open(ds.file.filename, "rb") as handle:
        handle.seek(offset)
        raw = handle.read(count * record)
        heaps: dict[int, dict[int, bytes]] = {}
        out = np.empty(count, dtype=object)
        decoded = 0
        for i in range(count):
            length, address, index = struct.unpack_from(f"<I{fmt[address_size]}I", raw, i * record)
            if length == 0:
                out[i] = b""
                continue
            if address not in heaps:
                heaps[address] = _heap_collection(handle, address, address_size, length_size, file_size, at)
            data = heaps[address].get(index)
            if data is None or length > len(data):
                raise DatasetError(f"{at}: element {i} refers to a missing or shorter heap object ({index})")
            decoded += length
            if decoded > budget.limits.max_array_bytes // 4:
                budget.check(f"{at.split(': ', 1)[-1]} (strings)", decoded)
            out[i] = data[:length]
    budget.claim(f"{at.split(': ', 1)[-1]} (strings)", decoded)
    return out.reshape(ds.shape)


def _heap_collection(
    handle: object, address: int, address_size: int, length_size: int, file_size: int, at: str
) -> dict[int, bytes]:
    """The objects of one global heap collection (``GCOL``), by index, every length checked."""
    fmt = {2: "H", 4: "I", 8: "Q"}[length_size]
    head = 8 + length_size
    if address + head > file_size:
        raise DatasetError(f"{at}: a global heap collection at byte {address} lies past the end of the file")
    handle.seek(address)
    header = handle.read(head)
    (size,) = struct.unpack_from(f"<{fmt}", header, 8)
    if header[:4] != b"GCOL" or header[4] != 1 or size < head or address + size > file_size:
        raise DatasetError(f"{at}: the global heap collection at byte {address} is damaged")
    handle.seek(address)
    data = handle.read(size)
    objects: dict[int, bytes] = {}
    pos = head
    entry = 8 + length_size
    while pos + entry <= size:
        index, _, _, length = struct.unpack_from(f"<HHI{fmt}", data, pos)
        if index == 0:  # free space: the rest of the collection
            break
        start = pos + entry
        if length > size - start:
            raise DatasetError(f"{at}: global heap object {index} at byte {address + pos} overruns its collection")
        objects[index] = data[start : start + length]
        pos = start + -(-length // 8) * 8  # objects are padded to 8 bytes
    return objects


def _h5_type(dtype: np.dtype) -> str:
    import h5py  # noqa: PLC0415

    if h5py.check_dtype(ref=dtype) is not None:
        return "object reference"
    if h5py.check_vlen_dtype(dtype) is not None:
        return f"variable-length {h5py.check_vlen_dtype(dtype)}"
    return str(dtype)


def _decode(x: object) -> str:
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)


def _metadata(source: Path, group: object, budget: Budget, file_size: int) -> dict[str, object]:
    """Metadata datasets hold one JSON string each (the SDK's writer); fall back to the raw string."""
    import h5py  # noqa: PLC0415

    out: dict[str, object] = {}
    if group is None:
        return out
    for key in group:
        ds = _child(source, group, key, None)
        if not isinstance(ds, h5py.Dataset) or ds.shape is None or not ds.shape or ds.dtype.kind not in "SUO":
            continue
        try:
            raw = _decode(
                _dataset(source, ds, f"{source}: metadata {key!r}", "string", budget, file_size).reshape(-1)[0]
            )
        except IndexError:
            continue
        try:
            out[key] = json.loads(raw)
        except (ValueError, RecursionError):
            out[key] = raw
    return out


def load_csd(
    paths: Mapping[str, str | os.PathLike],
    *,
    labels_csd: str | os.PathLike | None = None,
    align_to: Literal["words"] | None = "words",
    words_csd: str | os.PathLike | None = None,
    label_column: int = 0,
    label_kind: Literal["regression", "classification"] = "regression",
    kinds: Mapping[str, str] | None = None,
    splits: Mapping[str, Iterable[str]] | None = None,
    missing: Literal["error", "drop"] = "error",
    silence: Sequence[str] = SILENCE,
    weighting: Literal["overlap", "uniform"] = "overlap",
    nonfinite: NonFinite = "error",
    name: str = "csd",
    limits: Limits | None = None,
) -> MultimodalDataset:
    """Load CMU-SDK computational sequences as a :class:`MultimodalDataset`.

    Parameters
    ----------
    paths
        Modality name -> ``.csd`` file, e.g. ``{"text": "CMU_MOSI_TimestampedWordVectors.csd", "audio":
        "CMU_MOSI_COVAREP.csd", "vision": "CMU_MOSI_Visual_Facet_42.csd"}``.
    labels_csd
        A labels sequence; its segments become the instances. Without it, whole videos are instances.
    align_to
        ``"words"`` averages every modality over each word's interval (needs ``words_csd``); None keeps frames.
    words_csd
        The words sequence (``CMU_MOSI_TimestampedWords.csd``); gives words and, joined, ``texts``.
    label_column
        Which label feature column to use (MOSEI's labels have 7: sentiment then six emotions).
    label_kind
        ``"regression"`` or ``"classification"``.
    kinds
        Modality name -> kind; guessed from the name otherwise (``audio``/``covarep`` -> audio ...).
    splits
        Split name -> video ids (e.g. the SDK's standard folds); instances of other videos get split ``"none"``.
    missing
        A video absent from some sequence: ``"error"`` names it; ``"drop"`` leaves it out with a warning (the SDK
        does the same when aligning).
    silence
        Word tokens to drop.
    weighting
        ``"overlap"`` (default) weighs each frame by the length of its overlap with the word; ``"uniform"`` takes
        the plain mean of every frame that overlaps the word, as the SDK's usual ``avg`` collapse function does.
        Either way a frame overlaps a word only by more than ``OVERLAP_EPSILON`` seconds (the SDK's tolerance).
    nonfinite
        ``"error"`` or ``"zero"`` for NaN/inf in features.
    name
        Dataset name.
    limits
        Size limits for the whole load, all files together (:class:`~modalens.data.limits.Limits`; default from
        ``MODALENS_MAX_BYTES`` / ``MODALENS_MAX_ARRAY_BYTES`` or 8 GiB per dataset, 16 GiB in all).

    Returns
    -------
    MultimodalDataset
        Instances per segment (or video), ids ``<video>[<k>]`` (or the video id), ``meta`` with ``video``,
        ``start`` and ``end`` seconds.
    """
    import pandas as pd  # noqa: PLC0415

    if not paths:
        raise DatasetError("load_csd needs at least one modality sequence in paths")
    if weighting not in ("overlap", "uniform"):
        raise DatasetError(f"weighting must be 'overlap' or 'uniform', got {weighting!r}")
    if align_to not in ("words", None):
        raise DatasetError(f"align_to must be 'words' or None, got {align_to!r}")
    if align_to == "words" and words_csd is None:
        raise DatasetError("align_to='words' needs words_csd (the timestamped words sequence)")
    budget = resolve(limits).budget(", ".join(str(p) for p in paths.values()))
    seqs = {m: read_csd(p, nonfinite=nonfinite, budget=budget) for m, p in paths.items()}
    words = read_csd(words_csd, text=True, budget=budget) if words_csd is not None else None
    labels = read_csd(labels_csd, nonfinite="error", budget=budget) if labels_csd is not None else None
    if labels is not None:
        if not labels.features:
            raise DatasetError(f"{labels.path}: the labels sequence holds no videos")
        columns = next(iter(labels.features.values())).shape[1]
        if not 0 <= label_column < columns:
            raise DatasetError(
                f"{labels.path}: label_column {label_column} out of range (the labels have {columns} columns)"
            )
    for seq in seqs.values():
        if not seq.features:
            raise DatasetError(f"{seq.path}: the sequence holds no videos")

    videos = _common_videos(list(seqs.values()) + [s for s in (words, labels) if s is not None], missing)
    spans = list(seqs.values()) + ([words] if words is not None else [])
    instances = _instances(videos, labels, spans, label_column)
    split_of = {vid: s for s, vids in (splits or {}).items() for vid in vids}

    # a whole-video instance takes every word; a segment takes the words whose midpoint lies inside it
    whole = (-np.inf, np.inf)
    tokens = None
    if words is not None:
        tokens = [_words_in(words, vid, *((a, b) if labels else whole), silence) for vid, _, a, b, _ in instances]
    kinds = dict(kinds or {})
    mods = []
    for m, seq in seqs.items():
        kind = kinds.get(m) or (guess_kind(m) if guess_kind(m) != "tabular" else guess_kind(seq.root))
        if align_to == "words":
            rows = [
                _align(seq, vid, ivals, uniform=weighting == "uniform")
                for (vid, *_), (_, ivals) in zip(instances, tokens, strict=True)
            ]
        elif labels is None:  # a whole video keeps every frame, point frames at its ends included
            rows = [(seq.features[vid], np.ones(len(seq.features[vid]), bool)) for vid, *_ in instances]
        else:
            rows = [_frames(seq, vid, a, b) for vid, _, a, b, _ in instances]
        values, mask = _pad(rows, seq.features[next(iter(seq.features))].shape[1])
        step_words = None
        if align_to == "words":
            step_words = [list(w) for w, _ in tokens]
        mods.append(
            Modality(
                name=m,
                kind=kind,
                values=values,
                mask=mask,
                feature_names=feature_names_for(m, kind, values.shape[2], seq.dimension_names),
                words=step_words,
            )
        )
    meta = pd.DataFrame(
        {"video": [i[0] for i in instances], "start": [i[2] for i in instances], "end": [i[3] for i in instances]}
    )
    try:
        return MultimodalDataset(
            mods,
            None if labels is None else np.array([i[4] for i in instances]),
            label_kind=None if labels is None else label_kind,
            ids=[i[1] for i in instances],
            splits=None if splits is None else [split_of.get(i[0], "none") for i in instances],
            texts=None if tokens is None else [" ".join(w) for w, _ in tokens],
            meta=meta,
            name=name,
        )
    except DatasetError as exc:
        where = labels.path if labels is not None else ", ".join(str(s.path) for s in seqs.values())
        raise DatasetError(f"{where}: {exc}") from exc


def _common_videos(seqs: list[ComputationalSequence], missing: str) -> list[str]:
    """Videos present in every sequence, in the first sequence's order."""
    order = list(seqs[0].features)
    common = set(order).intersection(*(s.features for s in seqs[1:]))
    absent = [(v, s.path) for s in seqs for v in s.features if v not in common]
    if absent:
        if missing == "error":
            vid, path = absent[0]
            lacking = [str(s.path) for s in seqs if vid not in s.features]
            raise DatasetError(
                f"video {vid!r} of {path} is missing from {lacking} ({len(absent)} such entries); "
                "pass missing='drop' to leave such videos out"
            )
        warnings.warn(f"dropping {len({v for v, _ in absent})} videos not present in every sequence", stacklevel=3)
    if not common:
        raise DatasetError("no video is present in every sequence: " + ", ".join(str(s.path) for s in seqs))
    return [v for v in order if v in common]


def _instances(
    videos: list[str], labels: ComputationalSequence | None, seqs: list[ComputationalSequence], column: int
) -> list[tuple[str, str, float, float, float | None]]:
    """(video, id, start, end, label) per instance: labelled segments, or whole videos spanning every sequence."""
    out = []
    for vid in videos:
        if labels is None:
            starts = [s.intervals[vid][:, 0].min() for s in seqs if len(s.intervals[vid])]
            ends = [s.intervals[vid][:, 1].max() for s in seqs if len(s.intervals[vid])]
            out.append((vid, vid, float(min(starts, default=0.0)), float(max(ends, default=0.0)), None))
            continue
        ivals, feats = labels.intervals[vid], labels.features[vid]
        for k in range(len(ivals)):
            out.append((vid, f"{vid}[{k}]", float(ivals[k, 0]), float(ivals[k, 1]), float(feats[k, column])))
    return out


def _words_in(
    words: ComputationalSequence, vid: str, start: float, end: float, silence: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """Words of a video whose midpoint lies in [start, end), silence dropped, and their intervals."""
    ivals, toks = words.intervals[vid], words.features[vid][:, 0]
    mid = ivals.mean(axis=1)
    keep = (mid >= start) & (mid < end) & ~np.isin(toks, list(silence))
    return [str(t) for t in toks[keep]], ivals[keep]


def _align(
    seq: ComputationalSequence, vid: str, word_ivals: np.ndarray, *, uniform: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Overlap-weighted mean of a modality's frames over each word interval; mask False where nothing overlaps."""
    feats, ivals = seq.features[vid], seq.intervals[vid]
    if not len(word_ivals):
        return np.zeros((0, feats.shape[1]), np.float32), np.zeros(0, bool)
    # Only frames near the segment enter the [W, F] weights. Starts are sorted (read_csd), and the running maximum
    # of ends is sorted too, so both bounds are found by bisection.
    lo, hi = word_ivals[:, 0].min(), word_ivals[:, 1].max()
    first = np.searchsorted(seq.running_end(vid), lo, side="left")
    last = np.searchsorted(ivals[:, 0], hi, side="right")
    feats, ivals = feats[first:last], ivals[first:last]
    weights = np.minimum(ivals[None, :, 1], word_ivals[:, None, 1]) - np.maximum(
        ivals[None, :, 0], word_ivals[:, None, 0]
    )
    # the SDK's rule: a frame counts for a word only when their overlap exceeds OVERLAP_EPSILON (float noise does not)
    weights = np.where(weights > OVERLAP_EPSILON, weights, 0.0)
    if uniform:
        weights = (weights > 0).astype(np.float64)
    # point frames (start == end) inside a word count with unit weight when no frame has positive overlap
    point = (
        (ivals[None, :, 0] == ivals[None, :, 1])
        & (ivals[None, :, 0] >= word_ivals[:, None, 0])
        & (ivals[None, :, 0] < word_ivals[:, None, 1])
    )
    total = weights.sum(axis=1)
    weights = np.where((total == 0)[:, None], point.astype(np.float64), weights)
    total = weights.sum(axis=1)
    found = total > 0
    values = np.zeros((len(word_ivals), feats.shape[1]), np.float64)
    # einsum without optimize stays in numpy's own loops: BLAS threads on these tiny products cost more than they save
    values[found] = np.einsum("wf,fd->wd", weights[found], feats.astype(np.float64)) / total[found, None]
    return values.astype(np.float32), found


def _frames(seq: ComputationalSequence, vid: str, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """A modality's frames overlapping [start, end), unaligned."""
    ivals = seq.intervals[vid]
    inside = (ivals[:, 1] > start) & (ivals[:, 0] < end)
    return seq.features[vid][inside], np.ones(int(inside.sum()), bool)


def _pad(rows: list[tuple[np.ndarray, np.ndarray]], d: int) -> tuple[np.ndarray, np.ndarray]:
    t = max([len(v) for v, _ in rows] + [1])
    values = np.zeros((len(rows), t, d), np.float32)
    mask = np.zeros((len(rows), t), bool)
    for i, (v, m) in enumerate(rows):
        values[i, : len(v)] = v
        mask[i, : len(m)] = m
    return values, mask
