"""The Features views as a person uses them, in headless Debian Chromium: the feature card (levels, duplicates,
histograms, neighbours, classes, label), the k slider recomputing categories, the query (a run image, a run caption,
a new caption through the server's model), the evidence views, and two feature runs compared."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from .conftest import free_port

pytestmark = pytest.mark.browser

COLOURS = ["red", "green", "blue"]
ANIMALS = ["cat", "dog", "car"]
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`));
"""


class Server:
    """uvicorn serving create_app(run_dirs, model=...) on a free port in a background thread."""

    def __init__(self, run_dirs: list[Path], model=None) -> None:  # noqa: ANN001
        import uvicorn

        from modalens.app.server import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        app = create_app(run_dirs, model=model) if model is not None else create_app(run_dirs)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert time.time() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path) as r:  # noqa: S310 - local test server
            return json.loads(r.read())


def fake_model():  # noqa: ANN201
    from tests.features.conftest import FakeModel

    return FakeModel(["a", "photo", "of", *COLOURS, *ANIMALS], dim=16, seed=3)


def make_pairs(n: int = 240, seed: int = 0):  # noqa: ANN201
    """Pairs of a small image (3x8x8: the colour's channel lit, a pattern per object) and a caption naming them;
    nine captions in all, so captions repeat (the card collapses them)."""
    rng = np.random.default_rng(seed)
    colour, animal = rng.integers(0, 3, n), rng.integers(0, 3, n)
    images = np.zeros((n, 3, 8, 8), np.float32)
    for i in range(n):
        images[i, colour[i]] = 0.6
        images[i, :, animal[i] * 2 : animal[i] * 2 + 3, :] += 0.3
    images = np.clip(images + 0.08 * rng.random(images.shape), 0, 1).astype(np.float32)
    texts = [f"a photo of a {COLOURS[c]} {ANIMALS[a]}" for c, a in zip(colour, animal, strict=True)]
    return images, texts, animal


@pytest.fixture(scope="module")
def feature_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from modalens.features.study import run_feature_study

    model = fake_model()
    images, texts, animal = make_pairs()
    img, txt = model.encode_images(images), model.encode_texts(texts)
    classes = model.encode_texts([f"a photo of a {a}" for a in ANIMALS])
    root = tmp_path_factory.mktemp("feature-views")
    common = {
        "texts": texts,
        "labels": [ANIMALS[a] for a in animal],
        "images": list(images),
        "class_text_emb": classes,
        "class_labels": animal,
        "class_names": ANIMALS,
        "model": model,
        "model_info": {"name": "fake two-tower", "dim": 16},
        "d_sae": 48,
        "n_boot": 50,
        "n_null": 10,
        "top_k": 10,
        "attack_images": 3,
        "steer_features": 1,
        "n_random": 2,
        "seed": 0,
    }
    sae = run_feature_study(img, txt, extractor="topk", extractor_options={"k": 6, "epochs": 15}, **common)
    ncl = run_feature_study(img, txt, extractor="ncl", extractor_options={"k": 8, "epochs": 15}, **common)
    return {"sae": sae.save(root / "sae-run"), "ncl": ncl.save(root / "ncl-run")}


def open_page(browser, server: Server, errors: list[str]):  # noqa: ANN001, ANN201
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(CSP_WATCH)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server.url)
    page.wait_for_selector("[data-testid=mds-histogram]", timeout=30_000)
    return page


def pct_matches(text: str, share: float) -> bool:
    """The app's pct(): a share as a percentage with 1 decimal below 10 %, else none (half rounded either way)."""
    value = float(text.split("%")[0])
    return abs(value - 100 * share) <= (0.05 if share < 0.1 else 0.5) + 1e-9


def shown(page) -> int:  # noqa: ANN001
    note = page.locator("[data-view=features] .note", has_text="features shown").inner_text()
    return int(note.split(" features shown")[0].replace(",", ""))


def test_feature_card_and_k(browser, feature_runs: dict[str, Path], shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    with Server([feature_runs["sae"]]) as server:
        page = open_page(browser, server, errors)
        doc = server.api("api/runs/sae-run/features")
        cols = doc["columns"]
        mds = np.array([np.nan if v is None else v for v in cols["mds"]], dtype=float)
        live = np.isfinite(mds)
        # the shares shown at the run's k are the manifest's
        for c, share in doc["dominance"]["proportions"].items():
            text = page.get_by_test_id(f"share-{c}").inner_text()
            assert pct_matches(text, share), (c, text, share)
        # k = 2: the table's category filter counts what mean +- 2 sd gives, recomputed here
        page.get_by_test_id("k-slider").fill("2")
        mu, sd = mds[live].mean(), mds[live].std()
        page.get_by_test_id("feature-category").select_option("vision")
        assert shown(page) == int((mds[live] > mu + 2 * sd).sum())
        page.get_by_test_id("feature-category").select_option("language")
        assert shown(page) == int((mds[live] < mu - 2 * sd).sum())
        assert float(page.get_by_test_id("threshold-high").get_attribute("data-value")) == pytest.approx(mu + 2 * sd)
        page.get_by_test_id("feature-category").select_option("all")
        page.get_by_text("reset (1)").click()

        # open the feature that fires most on both sides (images and captions)
        target = max(range(len(mds)), key=lambda i: min(cols["frequency_image"][i], cols["frequency_text"][i]))
        f = int(cols["feature"][target])
        page.locator("input[aria-label='find feature by number or label']").fill(str(f))
        page.locator(f"[data-testid=feature-table] .feature-row[data-feature='{f}']").click()
        card = server.api(f"api/runs/sae-run/features/{f}")
        page.get_by_test_id("examples").wait_for()
        # duplicates collapsed: each caption once, with the count of pairs it fires on
        texts = [e for e in card["examples"] if e["modality"] == "text"]
        assert len({e["text"] for e in texts}) == len(texts)
        items = page.locator("[data-testid=examples] .top-texts li")
        assert items.count() == len(texts)
        counts = sorted(int(items.nth(i).get_attribute("data-count")) for i in range(items.count()))
        assert counts == sorted(e["count"] for e in texts) and max(counts) > 1
        # every level of the images is shown, with its stored image
        levels = {e["level"] for e in card["examples"] if e["modality"] == "image"}
        for level in levels:
            assert page.locator(f"[data-testid=examples] [data-level={level}] img").count() > 0
        img = page.locator("[data-testid=examples] img").first
        page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle())
        # histogram, classes, label, neighbours
        assert page.get_by_test_id("activation-histogram").locator("rect").count() > 0
        assert page.get_by_test_id("class-effects").locator(".bar-row").count() == len(card["classes"])
        if card["row"].get("label"):
            assert card["row"]["label"] in page.get_by_test_id("card-label").inner_text()
        assert page.get_by_test_id("card-mds").inner_text() == f"{card['row']['mds']:.3f}"
        page.screenshot(path=str(shots / "11-feature-card.png"), full_page=True)
        nb = card["neighbours"][0]["feature"]
        page.locator(f"[data-testid=neighbours] [data-neighbour='{nb}']").click()
        page.wait_for_function(
            f"() => document.querySelector('[data-testid=feature-card] h3')?.textContent === '#{nb}'"
        )
    assert not errors, errors


def test_query_sample_caption_and_new_caption(browser, feature_runs: dict[str, Path], shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    model = fake_model()
    with Server([feature_runs["sae"]], model=model) as server:
        page = open_page(browser, server, errors)
        codes = server.api("api/runs/sae-run/tables/codes")["columns"]
        samples = server.api("api/runs/sae-run/tables/samples")["columns"]

        def fired(sample: int, modality: str) -> set[int]:
            return {
                f
                for s, m, f in zip(codes["sample"], codes["modality"], codes["feature"], strict=True)
                if s == sample and m == modality
            }

        def rows() -> set[int]:
            page.get_by_test_id("query-answer").wait_for()
            loc = page.locator("[data-testid=query-features] tbody tr")
            return {int(loc.nth(i).get_attribute("data-feature")) for i in range(loc.count())}

        page.locator("[data-feature-tab=query]").click()
        page.locator("[data-testid=image-picker] button[data-sample='5']").click()
        page.wait_for_selector("[data-testid=query-answer] >> text=sample 5 (image)")
        assert rows() == fired(5, "image") and rows()
        # a caption of the run: the codes of a pair with that caption
        caption = samples["text"][7]
        page.get_by_test_id("query-text").fill(caption)
        page.get_by_test_id("query-go").click()
        page.wait_for_selector("[data-testid=query-answer] >> text=(text) of the run")
        sample = int(page.get_by_test_id("query-answer").inner_text().split("sample ")[1].split(" ")[0])
        assert samples["text"][sample] == caption and rows() == fired(sample, "text")
        page.screenshot(path=str(shots / "12-feature-query.png"), full_page=True)
        # a new caption: embedded by the server's model, encoded by the run's extractor
        from modalens.features.sae import load_extractor

        ext = load_extractor(feature_runs["sae"] / "extractor")
        z = ext.encode_numpy(model.encode_texts(["a photo of a blue dog dog"]))[0]
        page.get_by_test_id("query-text").fill("a photo of a blue dog dog")
        page.get_by_test_id("query-go").click()
        page.wait_for_selector("[data-testid=query-answer] >> text=embedded by fake")
        assert rows() == set(np.flatnonzero(z > 0).tolist())
        # a click on a result opens its card
        first = page.locator("[data-testid=query-features] tbody tr").first
        f = int(first.get_attribute("data-feature"))
        first.click()
        page.wait_for_function(f"() => document.querySelector('[data-testid=feature-card] h3')?.textContent === '#{f}'")
    assert not errors, errors


def test_query_without_a_model_says_how_to_get_one(browser, feature_runs: dict[str, Path]) -> None:  # noqa: ANN001
    errors: list[str] = []
    with Server([feature_runs["sae"]]) as server:
        page = open_page(browser, server, [])
        page.locator("[data-feature-tab=query]").click()
        page.get_by_test_id("query-text").fill("a caption nobody wrote")
        page.get_by_test_id("query-go").click()
        alert = page.locator("[data-view=query-result] .error")
        alert.wait_for()
        assert "--model" in alert.inner_text()
    assert not errors, errors


def test_evidence_views(browser, feature_runs: dict[str, Path], shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    with Server([feature_runs["sae"]]) as server:
        page = open_page(browser, server, errors)
        doc = server.api("api/runs/sae-run/features")
        page.locator("[data-feature-tab=evidence]").click()
        page.get_by_test_id("interventions-charts").wait_for()
        iv = doc["interventions"]
        informative = {
            (i, m) for i, m, n in zip(iv["intervention"], iv["metric"], iv["note"], strict=True) if n is None
        }
        blocks = page.locator("[data-testid=interventions-charts] .iv-block")
        assert blocks.count() == len(informative)
        # every ablation row is drawn with its control
        for i, m in informative:
            block = page.locator(f".iv-block[data-intervention={i}][data-metric='{m}']")
            assert block.count() == 1
        hidden = {m for m, n in zip(iv["metric"], iv["note"], strict=True) if n is not None}
        if hidden:
            text = page.get_by_test_id("hidden-metrics").inner_text()
            assert all(m in text for m in hidden)
        assert page.get_by_test_id("comparison-chart").locator("rect").count() > 0
        assert page.get_by_test_id("win-rates").locator("tr").count() > 0
        adv = doc["evidence"]["adversarial"]
        gallery = page.get_by_test_id("adversarial-gallery")
        assert gallery.locator("figure").count() == len(adv["image"]) == 3
        first = gallery.locator("img").first
        page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=first.element_handle())
        page.screenshot(path=str(shots / "13-feature-evidence.png"), full_page=True)
    assert not errors, errors


def test_two_feature_runs_compared(browser, feature_runs: dict[str, Path], shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    with Server([feature_runs["sae"], feature_runs["ncl"]]) as server:
        page = open_page(browser, server, errors)
        page.locator("[data-feature-tab=compare]").click()
        page.get_by_test_id("feature-comparison").wait_for(timeout=30_000)
        api = server.api("api/features-compare/sae-run/ncl-run?match=auto")
        for i, side in enumerate(("a", "b")):
            for c, share in api[side]["shares"].items():
                text = page.get_by_test_id(f"cmp-share-{i}-{c}").inner_text()
                assert pct_matches(text, share), (side, c, text)
        good = api["summary"]["share_good"]
        assert pct_matches(page.get_by_test_id("share-good").inner_text(), good)
        cells = page.get_by_test_id("agreement-matrix").locator("td")
        matrix = api["summary"]["agreement_matrix"]
        assert sum(int(cells.nth(i).inner_text()) for i in range(cells.count())) == sum(
            v for row in matrix.values() for v in row.values()
        )
        assert page.get_by_test_id("matches-table").locator("tbody tr").count() == min(300, api["n_matches"])
        assert page.get_by_test_id("mds-overlay").locator("path").count() == 1  # the second run's distribution
        page.get_by_test_id("compare-match").select_option("activation")
        page.wait_for_selector("[data-testid=match-summary] >> text=activation")
        page.screenshot(path=str(shots / "14-feature-compare.png"), full_page=True)
    assert not errors, errors
