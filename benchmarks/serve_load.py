"""Load benchmark for `vidcls serve`: a bounded burst of uploads against a server it starts itself.

The server runs in its own process on 127.0.0.1 (a free port), so its memory can be read
apart from the client's. Prints JSON: p50/p95 latency, throughput, errors, the server's RSS
after warm-up and after each round of requests (it should level off: glibc's per-thread malloc
arenas fill up over the first rounds, MALLOC_ARENA_MAX=2 lowers that plateau), and how many
upload temp files were left behind (should be 0). Compare `--max-batch 1` with the default to
see what request batching buys on this machine.

    python benchmarks/serve_load.py MODEL_DIR VIDEO [--requests 200] [--concurrency 8] [--rounds 1] [--max-batch 8]
"""

from __future__ import annotations

import argparse
import asyncio
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
from vidcls.serve import create_app
model, port, tmp_dir, max_batch, wait_ms = sys.argv[1:]
app = create_app(model, tmp_dir=tmp_dir, max_batch=int(max_batch), batch_wait_ms=float(wait_ms))
uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")
"""
WARMUP_REQUESTS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, port: int, tmp_dir: str, max_batch: int, wait_ms: float, log) -> subprocess.Popen:
    """Start the server and wait until /health answers (model loaded)."""
    command = [sys.executable, "-c", SERVER, model, str(port), tmp_dir, str(max_batch), str(wait_ms)]
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


async def load(url: str, video: Path, requests: int, concurrency: int) -> tuple[list[float], int, float]:
    """Send ``requests`` uploads, ``concurrency`` at a time; latencies (ms) of successes, errors, wall time."""
    data = video.read_bytes()
    latencies: list[float] = []
    errors = 0
    remaining = iter(range(requests))  # shared: each request is taken by exactly one worker

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for _ in remaining:
            started = time.perf_counter()
            try:
                response = await client.post("/predict", files={"file": (video.name, data)})
                response.raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
            except httpx.HTTPError:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - started


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
    args = parser.parse_args()

    port = free_port()
    settings = {key: getattr(args, key) for key in ("requests", "concurrency", "rounds", "max_batch", "batch_wait_ms")}
    with tempfile.TemporaryDirectory() as tmp_dir, open(Path(tmp_dir) / "server.log", "w") as log:
        uploads = Path(tmp_dir) / "uploads"
        server = start_server(args.model, port, str(uploads), args.max_batch, args.batch_wait_ms, log)
        try:
            figures = run_rounds(
                f"http://127.0.0.1:{port}", psutil.Process(server.pid), args.video, args.requests,
                args.concurrency, args.rounds,
            )
            figures["upload_files_left"] = len(list(uploads.iterdir()))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps({**settings, "video_bytes": args.video.stat().st_size, **figures}, indent=2))


if __name__ == "__main__":
    main()
