"""The HTTP API: answers, limits, bad input, temp-file hygiene; in-process and over a real socket."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import torch
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from conftest import CLASSES
from videos import moving_square, write_video

from vidcls.serve.app import create_app
from vidcls.serve.batching import ForwardBatcher
from vidcls.serve.memory import limit_malloc_arenas
from vidcls.serve.uploads import FORM_OVERHEAD_BYTES, LOCK_FILE, PROCESS_DIR_PREFIX, process_upload_dir, remove_abandoned_upload_dirs

BOUNDARY = "vidcls-test-boundary"


@contextmanager
def running_server(app: FastAPI) -> Iterator[str]:
    """uvicorn on 127.0.0.1, on a free port, in a background thread; yields the base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("upload") / "clip.avi", moving_square("MoveRight", seed=3))


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def client(trained_model, uploads) -> Iterator[TestClient]:
    with TestClient(create_app(trained_model, tmp_dir=uploads), raise_server_exceptions=False) as client:
        yield client


def upload_files(uploads: Path) -> list[Path]:
    """Uploads left under ``uploads``: every file but the lock of a running server's folder."""
    return [path for path in uploads.rglob("*") if path.is_file() and path.name != LOCK_FILE]


@pytest.fixture(autouse=True)
def no_leftovers(request) -> Iterator[None]:
    """Every test in this file leaves no upload behind, success or error."""
    yield
    if "uploads" in request.fixturenames:
        assert upload_files(request.getfixturevalue("uploads")) == []


def post_video(client: TestClient, path: Path, **params):
    return client.post("/predict", params=params, files={"file": (path.name, path.read_bytes(), "video/x-msvideo")})


def test_predict_returns_probabilities_model_and_timing(client, video):
    response = post_video(client, video, top_k=2)
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "tiny"
    assert len(body["top_k"]) == 2 and {entry["label"] for entry in body["top_k"]} <= set(CLASSES)
    scores = [entry["score"] for entry in body["top_k"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
    assert body["duration"] == pytest.approx(1.6, abs=0.1)
    assert body["time_ms"] > 0 and body["windows"] == [] and body["frames"] == []


def test_all_labels_sum_to_one_and_form_fields_work(client, video):
    response = client.post("/predict", files={"file": ("clip.avi", video.read_bytes())}, data={"top_k": "10"})
    scores = [entry["score"] for entry in response.json()["top_k"]]
    assert len(scores) == 3 and sum(scores) == pytest.approx(1.0, abs=1e-4)


def test_frames_are_the_centre_clips_thumbnails(client, video):
    frames = post_video(client, video, frames="true").json()["frames"]
    assert len(frames) == 8  # the tiny model's clip length
    assert all(frame.startswith("data:image/jpeg;base64,") for frame in frames)


def test_window_returns_a_timeline(client, video):
    windows = post_video(client, video, window=0.5, top_k=1).json()["windows"]
    assert len(windows) >= 3
    assert windows[0]["start"] == 0 and windows[-1]["end"] == pytest.approx(1.6, abs=0.1)
    assert all(len(window["top_k"]) == 1 for window in windows)


def test_sampling_and_crops_can_be_asked_for(client, video):
    response = post_video(client, video, sampling="dense", crops=3, clips=1, frames="true")
    assert response.status_code == 200 and len(response.json()["frames"]) == 8


def test_timeline_windows_are_scored_through_the_forward_batcher(client, video, monkeypatch):
    batcher = client.app.state.predictor.batcher
    original, scored = batcher.score, []

    def counting(views):
        scored.append(views.shape[0])  # videos (jobs) in this forward
        return original(views)

    monkeypatch.setattr(batcher, "score", counting)
    windows = post_video(client, video, window=0.5, top_k=1).json()["windows"]
    assert sum(scored) == 1 + len(windows)  # the whole video, then one job per window
    assert max(scored) > 1  # windows that wait together share a forward


def test_window_too_short_for_the_video_is_422(client, video):
    response = post_video(client, video, window=0.001)
    assert response.status_code == 422 and "windows" in response.json()["detail"]


def test_concurrent_requests_get_the_same_answer_as_one_alone(client, video):
    alone = post_video(client, video, top_k=3).json()["top_k"]
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda k: post_video(client, video, top_k=k), [1, 2, 3, 1]))
    for top_k, response in zip([1, 2, 3, 1], responses):
        answer = response.json()["top_k"]
        assert [e["label"] for e in answer] == [e["label"] for e in alone[:top_k]]
        assert [e["score"] for e in answer] == pytest.approx([e["score"] for e in alone[:top_k]], abs=1e-5)


def run_batcher(score, views: list[torch.Tensor], **options) -> list:
    """Submit all views at once to a running ForwardBatcher; results or exceptions, in order."""

    async def main():
        async with ForwardBatcher(score, **options).running() as batcher:
            return await asyncio.gather(*(batcher.probabilities(v) for v in views), return_exceptions=True)

    return asyncio.run(main())


def test_batcher_scores_waiting_videos_in_one_forward_grouped_by_shape():
    calls = []

    def score(batch):
        calls.append(tuple(batch.shape))
        return batch.float().mean(dim=(1, 2, 3, 4, 5)).unsqueeze(1)  # one "probability" per video

    views = [torch.full((1, 2, 1, 1, 1, 1), i) for i in range(3)] + [torch.full((1, 1, 1, 1, 1, 1), 7)]
    results = run_batcher(score, views, max_batch=8, max_wait_ms=20)
    assert [float(r) for r in results] == [0, 1, 2, 7]
    assert sorted(calls) == [(1, 1, 1, 1, 1, 1), (3, 2, 1, 1, 1, 1)]
    calls.clear()
    run_batcher(score, views[:3], max_batch=1)
    assert len(calls) == 3


def test_batcher_hands_a_failed_forward_to_every_caller():
    def score(batch):
        raise RuntimeError("out of memory")

    results = run_batcher(score, [torch.zeros(1, 1, 1, 1, 1, 1)] * 2)
    assert all(isinstance(r, RuntimeError) for r in results)


def test_health_labels_docs_and_page(client):
    assert client.get("/health").json() == {
        "status": "ok", "model": "tiny", "device": "cpu", "labels": 3, "max_upload_mb": 200.0
    }
    assert client.get("/labels").json() == {"labels": ["MoveLeft", "MoveRight", "MoveUp"]}
    schema = client.get("/openapi.json").json()
    assert "multipart/form-data" in schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {p["name"] for p in schema["paths"]["/predict"]["post"]["parameters"]} >= {"top_k", "clips", "window"}
    docs = client.get("/docs").text
    assert "/static/swagger-ui-bundle.js" in docs and "cdn" not in docs  # works offline
    assert client.get("/static/swagger-ui-bundle.js").status_code == 200
    page = client.get("/")
    assert "Classify a video" in page.text and "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200


def test_junk_bytes_are_415_with_a_clear_message(client, uploads):
    response = client.post("/predict", files={"file": ("clip.mp4", b"definitely not a video" * 50)})
    assert response.status_code == 415
    detail = response.json()["detail"]
    assert "could not be read as a video" in detail and str(uploads) not in detail


@pytest.mark.parametrize(
    "request_kwargs, status",
    [
        (dict(files={"top_k": (None, "3")}), 422),  # multipart, but no file field
        (dict(data={"top_k": "3"}), 415),  # a urlencoded form
        (dict(files={"video": ("clip.avi", b"123")}), 422),  # wrong field name
        (dict(files={"file": ("clip.avi", b"")}), 422),  # empty file
        (dict(content=b"raw bytes", headers={"content-type": "video/mp4"}), 415),  # not multipart
        (dict(files={"file": ("clip.avi", b"123")}, params={"top_k": 0}), 422),
        (dict(files={"file": ("clip.avi", b"123")}, data={"clips": "many"}), 422),
        (dict(files={"file": ("clip.avi", b"123")}, params={"window": -1}), 422),
        (dict(files={"file": ("clip.avi", b"123")}, params={"sampling": "random"}), 422),
        (dict(files={"file": ("clip.avi", b"123")}, params={"crops": 2}), 422),
    ],
)
def test_bad_requests(client, request_kwargs, status):
    response = client.post("/predict", **request_kwargs)
    assert response.status_code == status
    assert response.json()["detail"]


def test_client_filename_never_becomes_a_path(client, video, uploads, monkeypatch):
    classifier = client.app.state.predictor.classifier
    original, seen = classifier.preprocess, []

    def recording(path, *args, **kwargs):
        seen.append(path)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(classifier, "preprocess", recording)
    evil = client.post("/predict", files={"file": ("../../evil name.avi", video.read_bytes())})
    odd = client.post("/predict", files={"file": ("clip.exe", video.read_bytes())})
    assert evil.status_code == odd.status_code == 200
    assert [path.parent for path in seen] == [client.app.state.upload_dir] * 2
    assert client.app.state.upload_dir.parent == uploads
    assert seen[0].suffix == ".avi" and seen[1].suffix == "" and "evil" not in seen[0].name


def test_unexpected_errors_are_a_short_500(client, video, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(client.app.state.predictor.classifier, "preprocess", explode)
    response = post_video(client, video)
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error; the server log has the details."}
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "secret internals" in caplog.text  # ...but the log has it


def test_cli_runs_uvicorn_on_localhost_with_the_settings(monkeypatch, trained_model):
    from typer.testing import CliRunner

    import uvicorn

    import vidcls.cli.serve  # noqa: F401  (registers the command)
    from vidcls.cli._app import app as cli
    from vidcls.serve.app import SETTINGS_ENV, create_app_from_env

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kwargs: calls.append((target, kwargs)))
    monkeypatch.setenv(SETTINGS_ENV, "{}")  # restored (unset) after the test; the command overwrites it
    result = CliRunner().invoke(cli, ["serve", str(trained_model), "--max-upload-mb", "5", "--processes", "2"])
    assert result.exit_code == 0, result.output
    target, kwargs = calls[0]
    assert target == "vidcls.serve.app:create_app_from_env" and kwargs["factory"] is True
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8000 and kwargs["workers"] == 2
    assert create_app_from_env().state.settings.max_upload_mb == 5


@pytest.fixture
def small_limit_app(trained_model, uploads) -> FastAPI:
    return create_app(trained_model, tmp_dir=uploads, max_upload_mb=1000 / 2**20)  # 1000 bytes


def test_upload_over_the_limit_is_413(small_limit_app, video):
    with TestClient(small_limit_app) as client:
        response = post_video(client, video)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_limit_counts_the_file_not_the_form(trained_model, uploads, video):
    size = video.stat().st_size
    with TestClient(create_app(trained_model, tmp_dir=uploads, max_upload_mb=size / 2**20)) as client:
        assert post_video(client, video).status_code == 200
        response = client.post("/predict", files={"file": ("clip.avi", video.read_bytes() + b"\0")})
        assert response.status_code == 413


def chunked_request_head(content_length: int | None = None) -> bytes:
    length = f"Content-Length: {content_length}" if content_length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"{length}\r\n\r\n"
    ).encode()


def file_part_head() -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.avi"\r\n\r\n'.encode()


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.settimeout(10)
    return sock


def read_status(sock: socket.socket) -> int:
    return int(sock.recv(4096).split(b" ")[1])


def test_declared_oversize_is_refused_before_the_body_is_sent(small_limit_app, uploads):
    with running_server(small_limit_app) as url, connect(url) as sock:
        sock.sendall(chunked_request_head(content_length=1000 + FORM_OVERHEAD_BYTES + 1))  # headers only
        assert read_status(sock) == 413


def test_streamed_oversize_is_refused_while_arriving(small_limit_app, uploads):
    """No Content-Length (chunked): the 413 comes while the client is still sending, not after."""
    total, sent = 64 * 2**20, 0
    with running_server(small_limit_app) as url, connect(url) as sock:
        sock.sendall(chunked_request_head())
        head = file_part_head()
        sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        chunk = b"%x\r\n%s\r\n" % (2**16, b"\0" * 2**16)
        while sent < total and not select.select([sock], [], [], 0)[0]:
            sock.sendall(chunk)
            sent += 2**16
        assert read_status(sock) == 413
    assert sent < total / 2


def test_only_folders_of_servers_no_longer_running_are_removed(tmp_path):
    never_locked_dead = tmp_path / f"{PROCESS_DIR_PREFIX}999999999-abc"
    never_locked_alive = tmp_path / f"{PROCESS_DIR_PREFIX}{os.getpid()}-abc"
    unlocked = tmp_path / f"{PROCESS_DIR_PREFIX}{os.getpid()}-def"  # pid alive (reused), lock free: owner gone
    for folder in (never_locked_dead, never_locked_alive, unlocked):
        folder.mkdir()
        (folder / "vidcls-upload-1.avi").write_bytes(b"x")
    (unlocked / LOCK_FILE).touch()
    with process_upload_dir(tmp_path) as live:
        assert not never_locked_dead.exists() and not unlocked.exists()  # removed when the server started
        assert remove_abandoned_upload_dirs(tmp_path) == [] and live.is_dir() and never_locked_alive.is_dir()
    assert not live.exists()


SERVER = """
import sys, uvicorn
from vidcls.serve.app import create_app
model, tmp_dir, port = sys.argv[1:]
uvicorn.run(create_app(model, tmp_dir=tmp_dir), host="127.0.0.1", port=int(port), log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(model: Path, tmp_dir: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(model), str(tmp_dir), str(port)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b" 200 " in sock.recv(100):
                    return server, port
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start")


@pytest.mark.slow
def test_server_killed_mid_upload_leaves_nothing_after_the_next_start(trained_model, video, tmp_path):
    first, port = _start_server(trained_model, tmp_path)
    try:
        head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.avi\"\r\n\r\n".encode()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(
            f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(head) + 10**6}\r\n\r\n".encode() + head + video.read_bytes()
        )
        deadline = time.monotonic() + 30
        while not upload_files(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        [partial] = upload_files(tmp_path)  # half an upload, on disk
        first.kill()  # SIGKILL: no request or lifespan cleanup runs
        first.wait(timeout=30)
        sock.close()
        assert partial.exists()
    finally:
        first.kill()
    second, _ = _start_server(trained_model, tmp_path)
    try:
        assert upload_files(tmp_path) == [] and not partial.parent.exists()
        [own] = tmp_path.iterdir()
        assert own.name.startswith(f"{PROCESS_DIR_PREFIX}{second.pid}-")
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert list(tmp_path.iterdir()) == []  # a server stopped normally removes its own folder


def test_server_limits_malloc_arenas_unless_the_environment_says(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # the user's setting, which glibc read at start, stands
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_malloc_arenas() is True  # glibc (Linux) accepted the limit
