"""Load on the app server: concurrent clients on the heaviest endpoints of one run, loopback only.

    python benchmarks/load_bench.py --run /tmp/demo-run                 # 50 clients, 60 s, gzip as browsers ask
    python benchmarks/load_bench.py --run /tmp/demo-run --no-gzip
    python benchmarks/load_bench.py --synthetic 600                      # a synthetic run of 600 instances
    python benchmarks/load_bench.py --run R --src /tmp/old/src --label before   # another checkout's server

The server runs in its own process (uvicorn, one worker, bound to 127.0.0.1 on a free port); the clients are
asyncio tasks in this process, each on its own keep-alive connection, each sending its next request as soon as the
last one's body has arrived (closed loop, no think time). By default each connection is HTTP/1.1 parsed by hand
(``--client raw``) rather than ``httpx.AsyncClient`` (``--client httpx``), and bodies are read as they come over
the wire (gzip is not decoded): the clients share the server's machine, so they should cost it as little as they
can. Each request picks an
endpoint by weight (:data:`MIX`). Recorded: requests per second, latency percentiles (p50, p95, p99, max) overall
and per endpoint, errors (any status but 200/304, any exception or timeout), bytes on the wire, and the server
process's resident memory (from ``/proc``, or psutil when installed) at start, after the first 10 s and at the end,
sampled each second. Nothing leaves the machine: every request goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# endpoint -> weight; the heaviest documents the app asks for, and the instance view's many small ones
MIX = {
    "instances": 20,  # every instance as columns (the largest document)
    "instance": 40,  # one instance's detail (words, tracks, media list): the most frequent request
    "templates": 15,
    "table_arrow": 10,  # feature_attributions as Arrow IPC (the largest table)
    "table_json": 10,  # feature_importance as JSON
    "manifest": 5,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss(pid: int) -> int | None:
    """Resident set size of a process in bytes."""
    try:
        import psutil  # type: ignore[import-not-found]

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - the process ended
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def start_server(run: Path, port: int, src: Path | None) -> subprocess.Popen:
    code = (
        "import uvicorn; from modalens.app.server import create_app; "
        f"uvicorn.run(create_app([{str(run)!r}]), host='127.0.0.1', port={port}, log_level='warning')"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if src is not None:
        env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL)


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 120) -> list[dict[str, Any]]:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            r = httpx.get(base + "/api/runs", timeout=5)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def paths_for(run_id: str, n: int) -> dict[str, Any]:
    base = f"/api/runs/{run_id}"
    return {
        "instances": lambda: f"{base}/instances",
        "instance": lambda: f"{base}/instances/{random.randrange(n)}",
        "templates": lambda: f"{base}/templates",
        "table_arrow": lambda: f"{base}/tables/feature_attributions?format=arrow",
        "table_json": lambda: f"{base}/tables/feature_importance",
        "manifest": lambda: base,
    }


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return {
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


class RawConnection:
    """One keep-alive HTTP/1.1 connection, parsed by hand: a client that costs the shared machine little CPU."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"127.0.0.1:{port}", **headers}.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, int]:
        """Status and body bytes of ``GET path`` (the body read whole, not decoded)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\n{self.head}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        size = 0
        if chunked:
            while True:
                n = int((await self.reader.readline()).split(b";")[0], 16)
                size += len(await self.reader.readexactly(n + 2)) - 2
                if n == 0:
                    break
        elif length:
            size = len(await self.reader.readexactly(length))
        elif status not in (204, 304) and length is None:
            size = len(await self.reader.read())
            close = True
        if close:
            await self.close()
        return status, size

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def load(
    base: str, run_id: str, n: int, clients: int, seconds: float, gzip: bool, seed: int, kind: str = "raw"
) -> dict:
    random.seed(seed)
    make = paths_for(run_id, n)
    names = list(MIX)
    weights = [MIX[k] for k in names]
    records: list[tuple[str, float, int, int]] = []  # endpoint, seconds, status (0 = exception), bytes
    errors: list[str] = []
    headers = {"Accept-Encoding": "gzip, deflate, br" if gzip else "identity", "Accept": "application/json"}
    stop = time.perf_counter() + seconds
    port = int(base.rsplit(":", 1)[1])

    async def run_client(get) -> None:  # noqa: ANN001 - path -> (status, bytes)
        while time.perf_counter() < stop:
            name = random.choices(names, weights)[0]
            path = make[name]()
            t0 = time.perf_counter()
            try:
                status, size = await asyncio.wait_for(get(path), timeout=60)
                if status not in (200, 304):
                    errors.append(f"{status} {path}")
            except Exception as exc:  # noqa: BLE001 - every failure counts as an error
                status, size = 0, 0
                errors.append(f"{type(exc).__name__} {path}: {exc}")
            records.append((name, time.perf_counter() - t0, status, size))

    started = time.perf_counter()
    if kind == "raw":
        conns = [RawConnection(port, headers) for _ in range(clients)]

        def getter(conn: RawConnection):  # noqa: ANN202
            async def get(path: str) -> tuple[int, int]:
                try:
                    return await conn.get(path)
                except BaseException:
                    await conn.close()  # a half-read response: start the next request on a new connection
                    raise

            return get

        await asyncio.gather(*(run_client(getter(c)) for c in conns))
        for c in conns:
            await c.close()
    else:
        import httpx

        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as client:

            async def get(path: str) -> tuple[int, int]:
                async with client.stream("GET", path) as resp:
                    size = 0
                    async for chunk in resp.aiter_raw():
                        size += len(chunk)
                return resp.status_code, size

            await asyncio.gather(*(run_client(get) for _ in range(clients)))
    wall = time.perf_counter() - started
    latencies = [r[1] for r in records]
    per_endpoint = {}
    for name in names:
        mine = [r for r in records if r[0] == name]
        per_endpoint[name] = {
            "requests": len(mine),
            "bytes_mean": (sum(r[3] for r in mine) / len(mine)) if mine else None,
            **percentiles([r[1] for r in mine]),
        }
    return {
        "requests": len(records),
        "wall_s": wall,
        "requests_per_s": len(records) / wall,
        "errors": len(errors),
        "error_samples": errors[:10],
        "bytes": sum(r[3] for r in records),
        "latency_s": percentiles(latencies),
        "per_endpoint": per_endpoint,
    }


def sample_rss(pid: int, stop: threading.Event, out: list[tuple[float, int | None]]) -> None:
    t0 = time.perf_counter()
    while not stop.is_set():
        out.append((round(time.perf_counter() - t0, 1), rss(pid)))
        stop.wait(1.0)


def synthetic_run(n: int, folder: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.app.fixtures import write_interaction_run

    return write_interaction_run(folder / "synthetic", n)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, help="run directory to serve (e.g. from modalens demo --no-serve)")
    ap.add_argument("--synthetic", type=int, default=600, help="instances of a synthetic run when --run is not given")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--no-gzip", action="store_true", help="clients ask for identity encoding")
    ap.add_argument("--src", type=Path, help="serve with the modalens package under this src folder (before/after)")
    ap.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="raw: hand-parsed keep-alive HTTP/1.1 (little CPU); httpx: httpx.AsyncClient",
    )
    ap.add_argument("--label", default="after")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="results JSON (default benchmarks/results/load-<label>[-nogzip].json)")
    args = ap.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        ap.error("--clients must be >= 1 and --seconds > 0")

    with tempfile.TemporaryDirectory(prefix="modalens-load-") as tmp:
        run = args.run.resolve() if args.run else synthetic_run(args.synthetic, Path(tmp))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(run, port, args.src)
        try:
            listed = wait_ready(base, proc)
            run_id, n = listed[0]["id"], int(listed[0]["n_instances"])
            rss_start = rss(proc.pid)
            cpu0, own0 = cpu_seconds(proc.pid), time.process_time()
            samples: list[tuple[float, int | None]] = []
            stop = threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(proc.pid, stop, samples), daemon=True)
            sampler.start()
            result = asyncio.run(
                load(base, run_id, n, args.clients, args.seconds, not args.no_gzip, args.seed, args.client)
            )
            stop.set()
            sampler.join()
            rss_end = rss(proc.pid)
            cpu1, own1 = cpu_seconds(proc.pid), time.process_time()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    after_10s = next((b for t, b in samples if t >= 10 and b), None)
    record = {
        "benchmark": "load",
        "label": args.label,
        "run": {"path": str(run) if args.run else f"synthetic ({args.synthetic} instances)", "id": run_id, "n": n},
        "clients": args.clients,
        "seconds": args.seconds,
        "gzip": not args.no_gzip,
        "client": args.client,
        "mix": MIX,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "note": "server and clients share this machine",
        },
        **result,
        "cpu_s": {
            "server": None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 1),
            "clients": round(own1 - own0, 1),
        },
        "server_rss_bytes": {
            "start": rss_start,
            "after_10s": after_10s,
            "end": rss_end,
            "max": max((b for _, b in samples if b), default=None),
        },
        "rss_samples": samples,
    }
    out = args.out or RESULTS / f"load-{args.label}{'-nogzip' if args.no_gzip else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    lat = result["latency_s"]
    mib = (rss_start or 0) / 2**20, (rss_end or 0) / 2**20
    print(
        f"{args.label}: {result['requests']} requests in {result['wall_s']:.1f} s = {result['requests_per_s']:.1f}/s, "
        f"p50 {lat['p50']:.3f} s, p95 {lat['p95']:.3f} s, p99 {lat['p99']:.3f} s, errors {result['errors']}, "
        f"server RSS {mib[0]:.0f} -> {mib[1]:.0f} MiB -> {out}"
    )
    return record


if __name__ == "__main__":
    main()
