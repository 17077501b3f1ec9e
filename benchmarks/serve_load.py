"""Load benchmark for `vidcls serve`: a bounded burst of uploads against a server it starts itself.

The server runs in its own process on 127.0.0.1 (a free port), so its memory can be read
apart from the client's. Prints JSON: p50/p95 latency, throughput, errors, the server's RSS
after warm-up and after each round of requests (it should level off; the server limits glibc's
per-thread malloc arenas, see `vidcls.serve.memory`), and how many upload temp files were left
behind (should be 0). Compare `--max-batch 1` with the default to see what request batching
buys on this machine.

`--soak N` instead sends N uploads that mix good videos, junk bytes, oversize and empty files
(as a public server gets them) and samples the server's RSS every `--sample-every` requests:
the curve should go flat. Results of a run are in benchmarks/serve_soak.md.

    python benchmarks/serve_load.py MODEL_DIR VIDEO [--requests 200] [--concurrency 8] [--rounds 1] [--max-batch 8]
    python benchmarks/serve_load.py MODEL_DIR VIDEO --soak 3000 [--concurrency 16] [--sample-every 200]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

SERVER = """
import sys, uvicorn
from vidcls.serve.app import create_app
model, port, tmp_dir, max_batch, wait_ms, max_mb = sys.argv[1:]
app = create_app(model, tmp_dir=tmp_dir, max_batch=int(max_batch), batch_wait_ms=float(wait_ms), max_upload_mb=float(max_mb))
uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")
"""
WARMUP_REQUESTS = 10
SOAK_MAX_UPLOAD_MB = 1  # the soak's server limit, so an oversize upload costs the client little


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    model: str, port: int, tmp_dir: str, max_batch: int, wait_ms: float, log, max_upload_mb: float = 200
) -> subprocess.Popen:
    """Start the server and wait until /health answers (model loaded)."""
    command = [sys.executable, "-c", SERVER, model, str(port), tmp_dir, str(max_batch), str(wait_ms), str(max_upload_mb)]
    server = subprocess.Popen(command, stdout=log, stderr=log, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"the server did not start; see {log.name}")


async def send_all(
    url: str, uploads: list[tuple[str, bytes]], concurrency: int
) -> tuple[list[tuple[str, int, float]], float]:
    """Post every (name, bytes) upload, ``concurrency`` at a time: (name, status or 0 for a transport
    error, latency ms) per upload, and the wall time."""
    results: list[tuple[str, int, float]] = []
    remaining = iter(uploads)  # shared: each upload is taken by exactly one worker

    async def worker(client: httpx.AsyncClient) -> None:
        for name, data in remaining:
            started = time.perf_counter()
            try:
                status = (await client.post("/predict", files={"file": (name, data)})).status_code
            except httpx.HTTPError:
                status = 0
            results.append((name, status, (time.perf_counter() - started) * 1000))

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return results, time.perf_counter() - started


async def load(url: str, video: Path, requests: int, concurrency: int) -> tuple[list[float], int, float]:
    """Send ``requests`` uploads of ``video``; latencies (ms) of successes, errors, wall time."""
    results, wall = await send_all(url, [(video.name, video.read_bytes())] * requests, concurrency)
    latencies = [ms for _, status, ms in results if status == 200]
    return latencies, len(results) - len(latencies), wall


def soak_uploads(video: Path, count: int) -> list[tuple[str, bytes]]:
    """``count`` uploads in a fixed rotation: half good videos, then junk, oversize and empty files."""
    good = (video.name, video.read_bytes())
    junk = ("junk.mp4", os.urandom(64 * 1024))
    oversize = ("big.mp4", os.urandom(SOAK_MAX_UPLOAD_MB * 2**20 + 4096))
    empty = ("empty.avi", b"")
    rotation = [good, junk, good, oversize, good, empty]
    return [rotation[i % len(rotation)] for i in range(count)]


def run_soak(url: str, process: psutil.Process, video: Path, count: int, concurrency: int, every: int) -> dict:
    """Send ``count`` mixed uploads, reading the server's RSS every ``every`` requests."""
    asyncio.run(load(url, video, WARMUP_REQUESTS, concurrency))
    curve = [(0, rss_mb(process))]
    statuses: collections.Counter = collections.Counter()
    uploads = soak_uploads(video, count)
    started = time.perf_counter()
    for start in range(0, count, every):
        results, _ = asyncio.run(send_all(url, uploads[start : start + every], concurrency))
        statuses.update(f"{name.split('.')[0]} {status}" for name, status, _ in results)
        curve.append((start + len(results), rss_mb(process)))
    return {
        "statuses": dict(sorted(statuses.items())),
        "requests_per_s": round(count / (time.perf_counter() - started), 1),
        "rss_mb_by_requests": curve,
    }


def rss_mb(process: psutil.Process) -> float:
    return round(process.memory_info().rss / 2**20, 1)


def percentile(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100)[q - 1], 1) if len(values) > 1 else float("nan")


def run_rounds(url: str, process: psutil.Process, video: Path, requests: int, concurrency: int, rounds: int) -> dict:
    """Warm up, then ``rounds`` bursts of ``requests`` uploads; latency, throughput and RSS figures."""
    rss = {"started": rss_mb(process)}
    asyncio.run(load(url, video, WARMUP_REQUESTS, concurrency))
    rss["after_warmup"] = rss_mb(process)
    latencies, errors, wall, rss["after_each_round"] = [], 0, 0.0, []
    for _ in range(rounds):
        round_latencies, round_errors, round_wall = asyncio.run(load(url, video, requests, concurrency))
        latencies += round_latencies
        errors += round_errors
        wall += round_wall
        rss["after_each_round"].append(rss_mb(process))
    return {
        "errors": errors,
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                       "max": round(max(latencies, default=float("nan")), 1)},
        "throughput_rps": round(len(latencies) / wall, 2),
        "server_rss_mb": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="trained model directory")
    parser.add_argument("video", type=Path, help="video to upload on every request")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the requests, reading RSS after each round")
    parser.add_argument("--max-batch", type=int, default=8, help="1 turns request batching off")
    parser.add_argument("--batch-wait-ms", type=float, default=2.0)
    parser.add_argument("--soak", type=int, metavar="N", help="send N mixed good/junk/oversize/empty uploads instead")
    parser.add_argument("--sample-every", type=int, default=200, help="soak: read the server's RSS every this many")
    args = parser.parse_args()

    port = free_port()
    names = ("soak", "sample_every") if args.soak else ("requests", "rounds")
    settings = {key: getattr(args, key) for key in (*names, "concurrency", "max_batch", "batch_wait_ms")}
    max_upload_mb = SOAK_MAX_UPLOAD_MB if args.soak else 200
    with tempfile.TemporaryDirectory() as tmp_dir, open(Path(tmp_dir) / "server.log", "w") as log:
        uploads = Path(tmp_dir) / "uploads"
        server = start_server(args.model, port, str(uploads), args.max_batch, args.batch_wait_ms, log, max_upload_mb)
        url, process = f"http://127.0.0.1:{port}", psutil.Process(server.pid)
        try:
            if args.soak:
                figures = run_soak(url, process, args.video, args.soak, args.concurrency, args.sample_every)
            else:
                figures = run_rounds(url, process, args.video, args.requests, args.concurrency, args.rounds)
            figures["upload_files_left"] = len([p for p in uploads.rglob("*") if p.is_file() and p.name != ".lock"])
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps({**settings, "video_bytes": args.video.stat().st_size, **figures}, indent=2))


if __name__ == "__main__":
    main()
