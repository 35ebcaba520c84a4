"""Documents of one run snapshot build under locks of their own: a slow one does not hold up another, and a shared
intermediate result is built once when requests ask at the same time. An instance's rows are found the same way
whatever the order of the table's rows."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from modalens.app.data import LiveRun, RunSource

from .fixtures import write_interaction_run


def test_a_slow_document_does_not_block_another(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "run", 40, media_count=0)
    live = LiveRun("r", run)
    started, release = threading.Event(), threading.Event()

    def slow(_: RunSource) -> bytes:
        started.set()
        assert release.wait(10)
        return b"slow"

    worker = threading.Thread(target=lambda: live.body("slow", slow))
    worker.start()
    assert started.wait(10)
    got: dict[str, object] = {}

    def others() -> None:  # another document, and the run list, while "slow" is still being built
        got["fast"] = live.body("fast", lambda s: b"fast").raw
        got["info"] = live.current().info()  # what GET /api/runs reads

    other = threading.Thread(target=others, daemon=True)
    other.start()
    other.join(5)
    answered = not other.is_alive()
    release.set()
    worker.join(10)
    other.join(10)
    assert answered, "a document waited for another one's build"
    assert got["fast"] == b"fast" and got["info"]["n_instances"] == 40  # type: ignore[index]
    assert live.body("slow", slow).raw == b"slow"  # cached: not built again


def test_once_builds_a_shared_result_once(tmp_path: Path) -> None:
    source = RunSource.open("r", write_interaction_run(tmp_path / "run", 30, media_count=0))
    calls: list[int] = []

    def build() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 7

    out: list[int] = []
    threads = [threading.Thread(target=lambda: out.append(source.once("x", build))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert out == [7, 7, 7, 7] and len(calls) == 1


def test_instance_rows_do_not_depend_on_the_table_order(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "run", 30, media_count=0)
    plain = RunSource.open("a", run)
    shuffled = RunSource.open("b", run)
    for name in ("feature_attributions", "coalitions"):
        frame = shuffled.run.table(name)
        perm = np.random.default_rng(0).permutation(len(frame))
        # a table written in another row order (instances interleaved): rows are grouped by instance on request
        shuffled.run._tables[name] = frame.iloc[perm].reset_index(drop=True)
        assert not pd.Index(shuffled.run.table(name)["instance"]).is_monotonic_increasing
    for i in (0, 13, 29):
        a, b = plain.instance_detail(i), shuffled.instance_detail(i)
        assert a["tracks"] == b["tracks"] and a["words"] == b["words"]
        key = ("coalition",)
        assert sorted(a["coalitions"], key=lambda r: [r[k] for k in key]) == sorted(
            b["coalitions"], key=lambda r: [r[k] for k in key]
        )
