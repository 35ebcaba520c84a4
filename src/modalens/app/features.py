"""Documents of the Features view, read from a feature run (``kind = "features"``, docs/features.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalens.app.data import NotFound, RunSource, _scalar, column
from modalens.runs import FeatureManifest

IMAGE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
LIST_COLUMNS = ("top_image", "top_text")


EVIDENCE_TABLES = ("comparison", "win_rates", "adversarial")


def features_document(source: RunSource) -> dict[str, Any]:
    """The feature table (list columns left out), the dominance summary, the extractor's metrics, the
    interventions, the evidence tables (comparison, win rates, attacked images) and the MDS replicates the browser
    recomputes categories from for any k."""
    frame = _features(source)
    cols = {c: column(frame[c]) for c in frame.columns if c not in LIST_COLUMNS}
    m = _manifest(source)
    iv = source.run.table("interventions")
    evidence = {
        name: {c: column(t[c]) for c in t.columns}
        for name in EVIDENCE_TABLES
        if (t := source.run.optional_table(name)) is not None and len(t)
    }
    return {
        "n": int(len(frame)),
        "columns": cols,
        "dominance": m.dominance.model_dump(mode="json"),
        "extractor": {"name": m.extractor.name, "metrics": m.extractor.metrics, "config": m.extractor.config},
        "model": m.model.model_dump(mode="json"),
        "interventions": {c: column(iv[c]) for c in iv.columns},
        "has_images": m.images.count > 0,
        "evidence": evidence,
        "replicates": _replicates(source),
        "has_codes": source.run.has_table("codes"),
        "config": {k: m.config.get(k) for k in ("n_pairs", "top_k", "n_random", "embsim_reference", "zero_shot")},
    }


def _replicates(source: RunSource) -> dict[str, list[list[float | None]]]:
    t = source.run.optional_table("replicates")
    out: dict[str, list[list[float | None]]] = {}
    if t is None:
        return out
    for kind, mds in zip(t["kind"].to_numpy(), t["mds"].to_numpy(), strict=True):
        # 4 decimals: the browser compares them with thresholds; full precision would triple the document
        out.setdefault(str(kind), []).append(_scalar(np.round(np.asarray(mds, dtype=np.float64), 4)))
    return out


def feature_card(source: RunSource, feature: int) -> dict[str, Any]:
    """One feature: its row and its top-activating samples (image rows with their stored image, if any)."""
    frame = _features(source)
    rows = frame.index[frame["feature"] == feature]
    if len(rows) == 0:
        raise NotFound(f"run {source.run_id!r} has no feature {feature}")
    row = {k: _scalar(v) for k, v in frame.loc[rows[0]].to_dict().items()}
    samples: list[dict[str, Any]] = []
    if source.run.has_table("top_samples"):
        top = _grouped_top(source)
        part = top[top["feature"] == feature].sort_values(["modality", "rank"], kind="stable")
        images = _sample_images(source)
        for rec in part.to_dict("records"):
            item = {k: _scalar(v) for k, v in rec.items()}
            item["image"] = images.get(int(rec["sample"])) if rec.get("modality") == "image" else None
            samples.append(item)
    return {"feature": feature, "row": row, "top_samples": samples, **_card_extras(source, feature, frame)}


def _rows_of(source: RunSource, name: str, feature: int) -> pd.DataFrame | None:
    """The rows of table ``name`` for one feature (grouped once per run snapshot)."""
    key = f"feature_groups:{name}"
    if key not in source._cache:
        t = source.run.optional_table(name)
        source._cache[key] = None if t is None else {int(f): g for f, g in t.groupby("feature", sort=False)}
    groups = source._cache[key]
    if groups is None:
        return None
    return groups.get(int(feature), pd.DataFrame())


def _card_extras(source: RunSource, feature: int, frame: pd.DataFrame) -> dict[str, Any]:
    """Examples by level (with caption, label, image), histograms, decoder neighbours, class effects."""
    samples = _samples(source)
    images = _sample_images(source)
    out: dict[str, Any] = {"examples": None, "histograms": None, "neighbours": None, "classes": None}
    ex = _rows_of(source, "examples", feature)
    if ex is not None:
        items = []
        for rec in ex.sort_values(["modality", "level", "rank"], kind="stable").to_dict("records"):
            item = {k: _scalar(v) for k, v in rec.items() if k != "feature"}
            sample = int(rec["sample"])
            info = samples.get(sample, {})
            item["text"], item["label"] = info.get("text"), info.get("label")
            item["image"] = images.get(sample) if rec["modality"] == "image" else None
            items.append(item)
        out["examples"] = items
    h = _rows_of(source, "histograms", feature)
    if h is not None:
        out["histograms"] = [
            {
                "modality": str(r["modality"]),
                "edges": _scalar(r["edges"]),
                "counts": _scalar(r["counts"]),
                "n_zero": int(r["n_zero"]),
                "n": int(r["n"]),
            }
            for r in h.to_dict("records")
        ]
    nb = _rows_of(source, "neighbours", feature)
    if nb is not None:
        by_feature = frame.set_index("feature")
        out["neighbours"] = [
            {
                "feature": int(r["neighbour"]),
                "cosine": float(r["cosine"]),
                "category": _scalar(by_feature.at[int(r["neighbour"]), "category"]),
                "label": _scalar(by_feature.at[int(r["neighbour"]), "label"]) if "label" in by_feature else None,
                "mds": _scalar(by_feature.at[int(r["neighbour"]), "mds"]),
            }
            for r in nb.sort_values("rank").to_dict("records")
        ]
    ce = _rows_of(source, "class_effects", feature)
    if ce is not None:
        out["classes"] = [
            {"class": str(r["class"]), "effect": float(r["effect"]), "rank": int(r["rank"])}
            for r in ce.sort_values("effect", ascending=False).to_dict("records")
        ]
    return out


def _json_ready(value: Any) -> Any:
    """Nested dicts and lists with NaN/inf as None and numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return _scalar(value)


def _samples(source: RunSource) -> dict[int, dict[str, Any]]:
    """sample -> {text, label} from the samples table (cached per snapshot)."""
    key = "feature_samples"
    if key not in source._cache:
        out: dict[int, dict[str, Any]] = {}
        s = source.run.optional_table("samples")
        if s is not None:
            texts = s["text"].to_numpy() if "text" in s else [None] * len(s)
            labels = s["label"].to_numpy() if "label" in s else [None] * len(s)
            for i, t, lab in zip(s["sample"].to_numpy(), texts, labels, strict=True):
                out[int(i)] = {"text": _scalar(t), "label": _scalar(lab)}
        source._cache[key] = out
    return source._cache[key]


# ------------------------------------------------------------------------------------------------ query
def query_document(
    source: RunSource,
    *,
    sample: int | None = None,
    modality: str = "text",
    text: str | None = None,
    model: Any | None = None,
    image: Any | None = None,
    limit: int = 40,
) -> dict[str, Any]:
    """The features that fire on one input, strongest first, with their category, MDS, stability and label.

    The input is a sample of the run (``sample`` and ``modality``, read from the run's ``codes`` table), a caption
    (``text``: a caption of the run is looked up in the run; any other caption needs ``model``), or an image
    (``image``: decoded pixels, needs ``model``). With a model the codes come from the run's extractor applied to
    the model's embedding of the input.
    """
    m = _manifest(source)
    frame = _features(source)
    source_note = ""
    if image is not None or (text is not None and sample is None):
        if text is not None and image is None:
            found = _caption_sample(source, text)
            if found is not None:
                sample, modality = found, "text"
        if sample is None:
            if model is None:
                raise NotFound(
                    "this caption is not one of the run's, and the server has no model to embed new inputs: start it "
                    "with modalens serve RUN --model two-tower (or the run's model)"
                )
            try:
                emb = model.encode_images([image]) if image is not None else model.encode_texts([text])
            except Exception as exc:  # the model's own error, whatever its type: one line, not a server error
                from modalens.features.errors import FeatureError

                raise FeatureError(f"the server's model could not embed this input: {exc}") from exc
            ext = _extractor(source)
            if emb.shape[1] != ext.d_in:
                raise NotFound(
                    f"the server's model embeds in {emb.shape[1]} dims; this run's extractor reads {ext.d_in}"
                )
            z = ext.encode_numpy(emb.astype("float32"))[0]
            idx = z.nonzero()[0]
            acts = {int(j): float(z[j]) for j in idx}
            modality = "image" if image is not None else "text"
            source_note = f"embedded by {getattr(model, 'name', 'the model')} and encoded by the run's extractor"
    if sample is not None:
        if not source.run.has_table("codes"):
            raise NotFound(f"run {source.run_id!r} stores no codes table (study with store_codes=True)")
        if modality not in m.dominance.modalities:
            raise NotFound(f"modality must be one of {m.dominance.modalities}, got {modality!r}")
        n = m.dominance.n_pairs
        if not 0 <= sample < n:
            raise NotFound(f"run {source.run_id!r} has samples 0..{n - 1}, not {sample}")
        rows = _codes_by_sample(source).get((int(sample), modality))
        acts = {} if rows is None else dict(zip(rows[0].tolist(), rows[1].tolist(), strict=True))
        source_note = f"sample {sample} ({modality}) of the run"
    by_feature = frame.set_index("feature")
    order = sorted(acts.items(), key=lambda kv: -kv[1])
    total = sum(acts.values()) or 1.0
    fired = [
        {
            "feature": j,
            "activation": a,
            "share": a / total,
            "category": _scalar(by_feature.at[j, "category"]),
            "stable": bool(by_feature.at[j, "stable"]),
            "mds": _scalar(by_feature.at[j, "mds"]),
            "label": _scalar(by_feature.at[j, "label"]) if "label" in by_feature else None,
        }
        for j, a in order[:limit]
    ]
    info = _samples(source).get(int(sample), {}) if sample is not None else {}
    return {
        "sample": sample,
        "modality": modality,
        "text": info.get("text") if sample is not None else text,
        "label": info.get("label"),
        "image": _sample_images(source).get(int(sample)) if sample is not None else None,
        "source": source_note,
        "n_active": len(acts),
        "features": fired,
        "category_mass": _category_mass(fired_all=order, by_feature=by_feature),
    }


def _category_mass(fired_all: list[tuple[int, float]], by_feature: pd.DataFrame) -> dict[str, float]:
    """Share of the input's total activation per category of the features that fire."""
    out: dict[str, float] = {}
    total = sum(a for _, a in fired_all) or 1.0
    for j, a in fired_all:
        c = str(by_feature.at[j, "category"])
        out[c] = out.get(c, 0.0) + a / total
    return out


def _caption_sample(source: RunSource, text: str) -> int | None:
    wanted = " ".join(text.lower().split())
    for i, info in _samples(source).items():
        t = info.get("text")
        if isinstance(t, str) and " ".join(t.lower().split()) == wanted:
            return i
    return None


def _codes_by_sample(source: RunSource) -> dict[tuple[int, str], tuple[Any, Any]]:
    key = "feature_codes_by_sample"
    if key not in source._cache:
        t = source.run.table("codes")
        out = {}
        for (s, mod), g in t.groupby(["sample", "modality"], sort=False):
            out[(int(s), str(mod))] = (g["feature"].to_numpy(), g["activation"].to_numpy())
        source._cache[key] = out
    return source._cache[key]


def _extractor(source: RunSource) -> Any:
    """The run's extractor (``extractor/``), loaded once per snapshot."""
    key = "feature_extractor"
    if key not in source._cache:
        from modalens.features.sae import load_extractor

        folder = source.run.path / "extractor"
        if not (folder / "cfg.json").is_file():
            raise NotFound(f"run {source.run_id!r} stores no extractor weights: new inputs cannot be encoded")
        source._cache[key] = load_extractor(folder)
    return source._cache[key]


# ------------------------------------------------------------------------------------------------ compare
def run_features(source: RunSource) -> Any:
    """The run as :class:`modalens.features.compare.RunFeatures` (cached per snapshot)."""
    key = "feature_run_features"
    if key not in source._cache:
        from modalens.features.compare import RunFeatures

        m = _manifest(source)
        w_dec = None
        if (source.run.path / "extractor" / "cfg.json").is_file():
            w_dec = _extractor(source).W_dec.detach().cpu().numpy()
        source._cache[key] = RunFeatures(
            name=source.run_id,
            model=m.model.name,
            features=_features(source).sort_values("feature").reset_index(drop=True),
            dominance=m.dominance.model_dump(mode="json", exclude_none=True),
            metrics=dict(m.extractor.metrics),
            extractor=m.extractor.name,
            codes=source.run.optional_table("codes"),
            samples=source.run.optional_table("samples"),
            n_pairs=int(m.dominance.n_pairs),
            d_in=m.model.dim,
            w_dec=w_dec,
        )
    return source._cache[key]


def feature_comparison(a: RunSource, b: RunSource, match: str = "auto", limit: int = 2000) -> dict[str, Any]:
    """Two feature runs side by side: each run's summary and A's features matched to B's (best first)."""
    from modalens.features.compare import match_features, run_summary
    from modalens.features.errors import FeatureError

    ra, rb = run_features(a), run_features(b)
    try:
        matches, summary = match_features(ra, rb, match)
    except FeatureError as exc:
        raise NotFound(str(exc)) from exc
    return {
        "a": _json_ready(run_summary(ra)),
        "b": _json_ready(run_summary(rb)),
        "summary": _json_ready(summary),
        "matches": {c: column(matches[c].head(limit)) for c in matches.columns},
        "n_matches": int(len(matches)),
    }


def image_path(source: RunSource, name: str) -> Path:
    """A stored sample image, only from the run's images folder."""
    folder = _manifest(source).images.dir
    if not IMAGE_NAME.match(name) or name in (".", ".."):
        raise NotFound(f"bad image name {name!r}")
    root = (source.run.path / folder).resolve()
    path = (root / name).resolve()
    if source.run.path.resolve() not in root.parents or path.parent != root or not path.is_file():
        raise NotFound(f"run {source.run_id!r} has no image {name}")
    return path


def feature_documents(source: RunSource, max_cards: int = 300) -> dict[str, Any]:
    """Everything the Features view asks for, keyed by API path (for the HTML export)."""
    import base64

    base = f"api/runs/{source.run_id}"
    doc = features_document(source)
    docs: dict[str, Any] = {f"{base}/features": doc}
    frame = _features(source)
    live = frame[frame.get("category", pd.Series(index=frame.index, dtype=object)) != "inactive"]
    order = live.sort_values("frequency", ascending=False) if "frequency" in live else live
    mime = image_mime(source)

    def embed(name: str | None) -> None:
        if name and f"{base}/images/{name}" not in docs:
            data = base64.b64encode(image_path(source, name).read_bytes()).decode()
            docs[f"{base}/images/{name}"] = f"data:{mime};base64,{data}"

    for f in order["feature"].head(max_cards):
        card = feature_card(source, int(f))
        docs[f"{base}/features/{int(f)}"] = card
        for s in [*card["top_samples"], *(card.get("examples") or [])]:
            embed(s["image"])
    adv = doc["evidence"].get("adversarial")
    if adv:
        for col in ("file_before", "file_after", "file_delta"):
            for name in adv.get(col, []):
                embed(name)
    return docs


def image_mime(source: RunSource) -> str:
    """The mime type of the run's stored sample images."""
    return _manifest(source).images.mime


def _manifest(source: RunSource) -> FeatureManifest:
    m = source.run.manifest
    if not isinstance(m, FeatureManifest):
        raise NotFound(f"run {source.run_id!r} is a {source.run.kind!r} run; the Features view needs a feature run")
    return m


def _features(source: RunSource) -> pd.DataFrame:
    _manifest(source)
    return source.run.table("features")


def _grouped_top(source: RunSource) -> pd.DataFrame:
    return source.run.table("top_samples")


def _sample_images(source: RunSource) -> dict[int, str]:
    """sample -> image file name (as served under /images/), from the samples table."""
    key = "feature_sample_images"
    if key not in source._cache:
        out: dict[int, str] = {}
        if source.run.has_table("samples"):
            s = source.run.table("samples")
            if "image" in s.columns:
                for sample, image in zip(s["sample"].to_numpy(), s["image"].to_numpy(), strict=True):
                    if isinstance(image, str) and image:
                        out[int(sample)] = Path(image).name
        source._cache[key] = out
    return source._cache[key]
