"""The web page in a real headless Chromium: pick a video, see the bars; pick junk, see the words;
the API docs render from local files.

Set VIDCLS_SCREENSHOT=docs/serve-page.png to also save a screenshot of the page with a result.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
from conftest import CLASSES
from playwright.sync_api import expect, sync_playwright
from test_serve import running_server
from videos import moving_square, write_video

from vidcls.serve.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def server_url(trained_model, tmp_path_factory) -> Iterator[str]:
    with running_server(create_app(trained_model, tmp_dir=tmp_path_factory.mktemp("browser-uploads"))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server_url):
    """The page, failing the test on any script error or console error (CSP violations included)."""
    page = browser.new_page(viewport={"width": 1180, "height": 860})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(server_url)
    yield page
    page.close()
    # Failed responses (the junk upload's 415) are logged by Chromium; they are expected.
    assert [e for e in errors if "status of 415" not in e] == []


@pytest.fixture(scope="module")
def webm_video(tmp_path_factory) -> Path:
    """VP8 in WebM, so Chromium can also play the preview."""
    frames = moving_square("MoveRight", num_frames=50, width=320, height=180, seed=7)
    return write_video(tmp_path_factory.mktemp("browser-video") / "square.webm", frames, codec="libvpx")


def test_upload_shows_top_labels_and_frames(page, webm_video):
    expect(page.locator("#model-text")).to_contain_text("tiny")
    page.set_input_files("#file", str(webm_video))
    expect(page.locator("#answer")).to_be_visible(timeout=30_000)
    expect(page.locator(".bar")).to_have_count(len(CLASSES))  # top 5 of 3 labels
    assert set(page.locator(".bar-label").all_text_contents()) == set(CLASSES)
    assert all(value.endswith("%") for value in page.locator(".bar-value").all_text_contents())
    expect(page.locator("#frames img")).to_have_count(8)
    expect(page.locator("#file-name")).to_have_text("square.webm")
    screenshot = os.environ.get("VIDCLS_SCREENSHOT")
    if screenshot:
        page.wait_for_function("document.getElementById('video').readyState >= 2")
        page.wait_for_timeout(800)  # let the bars finish growing
        page.screenshot(path=screenshot, full_page=True)


def test_junk_upload_explains_the_problem(page):
    page.set_input_files("#file", files=[{"name": "notes.mp4", "mimeType": "video/mp4", "buffer": b"not a video" * 100}])
    expect(page.locator("#error-title")).to_have_text("We couldn't read this file as a video", timeout=30_000)
    expect(page.locator("#error-text")).to_contain_text("damaged")
    expect(page.locator("#answer")).to_be_hidden()


def test_api_docs_render_offline(page, server_url):
    page.goto(f"{server_url}/docs")
    expect(page.locator(".opblock-summary-path", has_text="/predict")).to_be_visible(timeout=30_000)
