"""The server's protections: Host allow-list, security headers, remote access only with a token, JSON errors without
server paths, size limits before allocation, ETags, fast gzip, and runs replaced on disk reloaded whole."""

from __future__ import annotations

import gzip
import json
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modalens._core.errors import ConfigurationError
from modalens.app.server import create_app, serve
from modalens.runs import RunError, RunLimits, read_run

from .fixtures import write_interaction_run

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_interaction_run(tmp_path_factory.mktemp("hardening") / "model-a", 120)


@pytest.fixture(scope="module")
def client(run: Path) -> TestClient:
    return TestClient(create_app([run]), base_url=BASE)


def no_paths(response, *paths: Path) -> None:  # noqa: ANN001
    text = response.text
    for p in paths:
        assert str(p) not in text and str(p.resolve()) not in text, text
    assert "/tmp/" not in text and "/root/" not in text and "site-packages" not in text, text


# -- Host allow-list ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "127.0.0.1:9999", "",
                                  "localhost@evil.example", "[::1"])  # fmt: skip
def test_foreign_host_headers_are_refused(client: TestClient, host: str) -> None:
    r = client.get("/api/runs", headers={"host": host})
    assert r.status_code == 421
    assert "does not answer to host" in r.json()["error"]
    assert r.headers["x-content-type-options"] == "nosniff"  # refusals carry the headers too


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:80", "localhost", "LOCALHOST.", "[::1]", "[::1]:80"])
def test_loopback_host_names_are_served(client: TestClient, host: str) -> None:
    assert client.get("/api/runs", headers={"host": host}).status_code == 200


def test_allowed_hosts_extend_the_list(run: Path) -> None:
    c = TestClient(create_app([run], allowed_hosts=["lab-box"]), base_url="http://lab-box")
    assert c.get("/api/runs").status_code == 200
    assert c.get("/api/runs", headers={"host": "other-box"}).status_code == 421


# -- security headers -------------------------------------------------------------------------------------------------
def test_security_headers_on_every_response(client: TestClient, run: Path) -> None:
    detail = client.get("/api/runs/model-a/instances/0").json()
    face = next(m for m in detail["media"] if m["key"] == "face")
    index = client.get("/")
    asset = next(part.split('"')[1] for part in index.text.split("src=")[1:] if "assets/" in part)
    for path in ["/", asset.lstrip("."), "/api/runs", "/api/runs/model-a/instances", "/api/docs",
                 f"/api/runs/model-a/media/face/{face['file']}", "/api/nope", "/nope", "/api/runs/x"]:  # fmt: skip
        r = client.get(path)
        h = r.headers
        csp = h["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp, path
        assert "frame-ancestors 'self' http://127.0.0.1:* http://localhost:*" in csp
        assert "http" not in csp.split("frame-ancestors")[0], "nothing loaded from another origin"
        assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "no-referrer", path
        assert "x-frame-options" not in h  # the notebook embeds the app: frame-ancestors decides
    assert client.post("/").headers["referrer-policy"] == "no-referrer"


def test_frame_ancestors_are_configurable(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODALENS_FRAME_ANCESTORS", "https://hub.example:8443")
    c = TestClient(create_app([run], frame_ancestors_extra=["https://lab.example"]), base_url=BASE)
    csp = c.get("/").headers["content-security-policy"]
    assert "https://lab.example" in csp and "https://hub.example:8443" in csp
    with pytest.raises(ConfigurationError, match="not an origin"):
        create_app([run], frame_ancestors_extra=["evil; script-src *"])


# -- remote access ----------------------------------------------------------------------------------------------------
def test_binding_beyond_loopback_needs_the_flag(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(k))
    for host in ("0.0.0.0", "::", "192.0.2.7"):
        with pytest.raises(ConfigurationError, match="--allow-remote"):
            serve([run], host=host, open_browser=False)
    serve([run], host="127.0.0.1", open_browser=False)
    serve([run], host="::1", open_browser=False)
    assert started == [{"host": "127.0.0.1", "port": 8765, "log_level": "warning"},
                       {"host": "::1", "port": 8765, "log_level": "warning"}]  # fmt: skip


def test_remote_serving_prints_a_warning_and_a_url_with_the_token(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import uvicorn

    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **k: apps.append(app))
    serve([run], host="0.0.0.0", port=9123, open_browser=False, allow_remote=True)
    out = capsys.readouterr()
    assert "WARNING" in out.err and "token" in out.err
    url = next(w for w in out.out.split() if w.startswith("http://"))
    token = url.split("?token=")[1]
    assert len(token) >= 30
    c = TestClient(apps[0], base_url="http://127.0.0.1:9123")
    assert c.get("/api/runs").status_code == 401
    assert c.get("/api/runs", headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_the_cli_refuses_a_remote_bind_without_the_flag(run: Path) -> None:
    from typer.testing import CliRunner

    from modalens.cli.main import app

    result = CliRunner().invoke(app, ["serve", str(run), "--host", "0.0.0.0", "--no-open"])
    assert result.exit_code != 0 and "--allow-remote" in " ".join(str(result.exception).split())


def test_token_is_needed_on_every_request(run: Path) -> None:
    c = TestClient(create_app([run], token="s3cret-token"), base_url=BASE)
    for path in ["/", "/api/runs", "/api/runs/model-a/instances", "/api/docs", "/api/openapi.json", "/nope"]:
        r = c.get(path)
        assert r.status_code == 401 and "token" in r.json()["error"], path
        assert r.headers["content-security-policy"]
    assert c.get("/api/runs", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/runs?token=wrong").status_code == 401
    assert c.get("/api/runs", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
    # the printed URL: ?token= once, a navigation is sent on without the token, with a cookie that does the rest
    first = c.get("/?token=s3cret-token", headers={"accept": "text/html"}, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert c.get("/api/runs/model-a/instances").status_code == 200  # the client kept the cookie
    c.cookies.clear()
    api = c.get("/api/runs?token=s3cret-token")  # not a navigation: answered directly, cookie set
    assert api.status_code == 200 and "set-cookie" in api.headers


# -- errors -----------------------------------------------------------------------------------------------------------
def test_errors_are_json_without_server_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = write_interaction_run(tmp_path / "broken", 30)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / manifest["tables"]["templates"]["file"]).write_bytes(b"not parquet")
    c = TestClient(create_app([run]), base_url=BASE, raise_server_exceptions=False)
    r = c.get("/api/runs/broken/templates")
    assert r.status_code == 422 and "cannot be read" in r.json()["error"] and "broken" in r.json()["error"]
    no_paths(r, tmp_path)
    for path, status in [("/api/runs/nope", 404), ("/api/runs/broken/instances/99", 404),
                         ("/api/runs/broken/instances/abc", 422), ("/api/nothing", 404), ("/nothing", 404),
                         ("/api/runs/broken/tables/nope", 404)]:  # fmt: skip
        r = c.get(path)
        assert r.status_code == status and r.headers["content-type"] == "application/json", path
        assert r.json()["error"], path
        no_paths(r, tmp_path)
    r = c.post("/")
    assert r.status_code == 405 and r.json()["error"]
    # a bug (any exception) is a 500 with a JSON message, never an empty body, and no paths
    from modalens.app.data import RunSource

    def bug(self: RunSource) -> bytes:
        raise KeyError(f"{tmp_path}/deep/secret.parquet")

    monkeypatch.setattr(RunSource, "instances", bug)
    r = c.get("/api/runs/broken/instances")
    assert r.status_code == 500 and "KeyError" in r.json()["error"] and "secret.parquet" in r.json()["error"]
    no_paths(r, tmp_path)


def test_inconsistent_tables_are_named_not_a_500(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "odd", 30)
    manifest = json.loads((run / "manifest.json").read_text())
    ms = read_run(run).table("modality_shapley")
    ms.loc[0, "instance"] = 5000  # refers to an instance the run does not have
    ms.to_parquet(run / manifest["tables"]["modality_shapley"]["file"], index=False)
    r = TestClient(create_app([run]), base_url=BASE).get("/api/runs/odd/instances")
    assert r.status_code == 422
    assert "'modality_shapley' refers to instance 5000" in r.json()["error"]
    no_paths(r, tmp_path)


# -- limits -----------------------------------------------------------------------------------------------------------
def test_a_manifest_claiming_a_billion_rows_is_refused_quickly(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "huge", 30)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["tables"]["instances"]["rows"] = 10**9
    manifest["tables"]["modality_shapley"]["rows"] = 3 * 10**9
    (run / "manifest.json").write_text(json.dumps(manifest))
    tracemalloc.start()
    clock = time.perf_counter()
    with pytest.raises(RunError, match="limit"):
        create_app([run])
    with pytest.raises(RunError, match="limit"):
        create_app([run], limits=RunLimits(max_rows=2 * 10**9), max_instances=10**6)
    elapsed = time.perf_counter() - clock
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 5 and peak < 64 << 20


def test_a_served_run_replaced_by_an_absurd_one_is_refused_per_request(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "r", 30)
    c = TestClient(create_app([run]), base_url=BASE)
    assert c.get("/api/runs/r/instances").status_code == 200
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["tables"]["instances"]["rows"] = 10**12
    (run / "manifest.json").write_text(json.dumps(manifest))
    r = c.get("/api/runs/r/instances")
    assert r.status_code == 422 and "limit" in r.json()["error"]
    no_paths(r, tmp_path)


def test_limits_are_configurable(run: Path) -> None:
    with pytest.raises(RunError, match=r"holds 120 rows; the limit is 0\.\.50"):
        create_app([run], limits=RunLimits(max_rows=50))
    with pytest.raises(RunError, match="over this server's limit of 100"):
        create_app([run], max_instances=100)


# -- ETags, gzip ------------------------------------------------------------------------------------------------------
def test_etags_and_304(client: TestClient) -> None:
    for path in ["/api/runs/model-a/instances", "/api/runs/model-a/instances/3", "/api/runs/model-a/templates",
                 "/api/runs/model-a/tables/outputs", "/api/runs/model-a/tables/outputs?format=arrow",
                 "/api/runs/model-a", "/"]:  # fmt: skip
        first = client.get(path, headers={"accept-encoding": "identity"})
        tag = first.headers["etag"]
        assert tag.startswith('"') and not tag.startswith("W/"), path
        again = client.get(path, headers={"if-none-match": tag, "accept-encoding": "identity"})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag, path
        zipped = client.get(path, headers={"accept-encoding": "gzip"})
        if len(first.content) >= 1024:
            assert zipped.headers["etag"] != tag, f"{path}: the gzip form is another representation"
        assert client.get(path, headers={"if-none-match": zipped.headers["etag"]}).status_code == 304
    tags = {client.get(p).headers["etag"] for p in ["/api/runs/model-a/instances/3", "/api/runs/model-a/instances/4"]}
    assert len(tags) == 2


def test_gzip_at_a_fast_level_above_a_size_threshold(client: TestClient) -> None:
    import http.client
    import socket

    raw = client.get("/api/runs/model-a/instances", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in raw.headers
    # the test client decodes gzip itself; read the bytes on the wire through a real server
    import uvicorn

    app = client.app
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/runs/model-a/instances", headers={"Accept-Encoding": "gzip, deflate, br"})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.getheader("Content-Encoding") == "gzip" and resp.getheader("Vary") == "Accept-Encoding"
        assert body[:2] == b"\x1f\x8b" and body[8] == 4  # gzip header XFL = 4: the fastest level
        assert gzip.decompress(body) == raw.content and len(body) < len(raw.content) / 2
        conn.request("GET", "/api/runs", headers={"Accept-Encoding": "gzip"})  # under 1 KiB: sent as it is
        small = conn.getresponse()
        assert small.getheader("Content-Encoding") is None and json.loads(small.read())
        conn.request("GET", "/api/runs/model-a/instances", headers={"Accept-Encoding": "gzip;q=0"})
        refused = conn.getresponse()
        assert refused.getheader("Content-Encoding") is None and refused.read() == raw.content
        conn.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- runs replaced on disk --------------------------------------------------------------------------------------------
def efficient(doc: dict) -> bool:
    """The glass-box fixture's known answer: base + sum of Shapley values = prediction. A document mixing the
    instances table of one run with the Shapley table of another breaks it."""
    total = np.array(doc["columns"]["base_value"]) + sum(np.array(doc["shapley"][m]) for m in doc["modalities"])
    return bool(np.allclose(total, doc["columns"]["prediction"], atol=1e-9))


def test_a_run_replaced_on_disk_is_reloaded_whole(tmp_path: Path) -> None:
    path = write_interaction_run(tmp_path / "r", 60, model_seed=0, model_name="old")
    app = create_app([path])
    c = TestClient(app, base_url=BASE)
    before = c.get("/api/runs/r/instances")
    detail = c.get("/api/runs/r/instances/7").json()
    assert c.get("/api/runs").json()[0]["model"] == "old"
    write_interaction_run(path, 60, model_seed=1, model_name="new", overwrite=True)
    after = c.get("/api/runs/r/instances", headers={"if-none-match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    new = read_run(path).table("instances")
    np.testing.assert_allclose(after.json()["columns"]["prediction"], new["prediction"])
    assert efficient(after.json())
    assert c.get("/api/runs").json()[0]["model"] == "new"
    assert c.get("/api/runs/r/instances/7").json()["row"]["prediction"] == pytest.approx(new["prediction"][7])
    assert c.get("/api/runs/r/instances/7").json() != detail
    assert app.state.runs["r"].reloads == 1


def test_a_table_rewritten_in_place_also_reloads_the_snapshot(tmp_path: Path) -> None:
    path = write_interaction_run(tmp_path / "r", 40)
    c = TestClient(create_app([path]), base_url=BASE)
    assert c.get("/api/runs/r/tables/outputs").json()["rows"] == 40 * 1
    manifest = json.loads((path / "manifest.json").read_text())
    inst = read_run(path).table("instances")
    inst["prediction"] = inst["prediction"] + 100.0
    time.sleep(0.01)
    inst.to_parquet(path / manifest["tables"]["instances"]["file"], index=False)
    doc = c.get("/api/runs/r/instances").json()
    np.testing.assert_allclose(doc["columns"]["prediction"], inst["prediction"])


def test_documents_never_mix_two_states_of_a_run(tmp_path: Path) -> None:
    """A writer replaces the run again and again while clients read it: every document is one state, whole."""
    path = write_interaction_run(tmp_path / "r", 50, model_seed=0)
    c = TestClient(create_app([path]), base_url=BASE)
    stop = time.time() + 4
    writes = []

    def writer() -> None:
        seed = 1
        while time.time() < stop:
            write_interaction_run(path, 50, model_seed=seed % 3, model_name=f"m{seed % 3}", overwrite=True)
            writes.append(seed)
            seed += 1

    thread = threading.Thread(target=writer)
    thread.start()
    checked = 0
    try:
        while time.time() < stop:
            r = c.get("/api/runs/r/instances")
            if r.status_code == 503:  # kept changing through every retry: said so, never mixed
                assert "being replaced" in r.json()["error"]
                continue
            assert r.status_code == 200, r.text
            assert efficient(r.json())
            checked += 1
    finally:
        thread.join()
    assert checked >= 3 and len(writes) >= 2


# -- API docs ---------------------------------------------------------------------------------------------------------
def test_api_docs_work_offline(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "/api/runs/{run_id}/instances/{index}" in html and "InstanceDetail" in html
    assert "<script" not in html and "cdn" not in html.lower() and "http://" not in html and "https://" not in html
    assert "style=" not in html and "<style" not in html  # the CSP allows no inline style
    css = client.get("/api/docs.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/api/openapi.json").json()["paths"]
