"""kedro-viz as a user sees it: the static site ``kedro viz build`` writes, served over
HTTP and opened in a headless Chromium driven by Playwright.

``kedro run`` and ``kedro jupyter`` have tests of their own; without this one a
kedro-viz release that no longer reads the project (a pipeline gone from the
selector, an empty code panel) would pass CI. Debian's Chromium
(``apt-get install chromium``) stands in for Playwright's own browser download, so
nothing is fetched from the network. Without Chromium or Playwright the test is
skipped, except in CI (``CI=true``), where it fails: CI installs both.

The screenshot, taken whether the test passes or fails, is written to
``$CI_ARTIFACTS_DIR/kedro_viz.png`` when ``CI_ARTIFACTS_DIR`` is set, else to the
test's ``tmp_path``.
"""

import functools
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kedro.framework.project import configure_project

from rating_prediction.pipeline_registry import register_pipelines

CHROMIUM = Path("/usr/bin/chromium")
# Headless in a container; the background-networking flags stop Chromium's own
# connections to Google hosts, which fail (noisily) without internet access.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# kedro-viz keeps its settings in this localStorage entry; with feature hints off, no
# tour pop-up covers the flowchart.
VIZ_SETTINGS_SCRIPT = (
    'window.localStorage.setItem("KedroViz", JSON.stringify({showFeatureHints: false}))'
)
# Waits for the panels' slide and fade transitions, so the screenshot shows where they
# end (endless animations, such as a spinner, left out).
SETTLED_SCRIPT = """Promise.all(document.getAnimations()
    .filter((a) => a.effect.getComputedTiming().iterations !== Infinity)
    .map((a) => a.finished.catch(() => null)))"""
PIPELINE = "data_processing"
NODE = "split_ratings_node"
TIMEOUT_MS = 15_000


def _missing(reason: str) -> None:
    """Skips the test where a tool it needs is absent; fails it in CI, which must
    run it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: CI must run the kedro-viz browser test)")
    pytest.skip(reason)


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging every request to stderr."""

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def viz_site(project_copy) -> Iterator[str]:
    """The URL of the site ``kedro viz build`` writes (to ``build/``: the command has
    no option for the folder) in a copy of the project, served on a free local port."""
    build = subprocess.run(
        [sys.executable, "-m", "kedro", "viz", "build"],
        cwd=project_copy,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    handler = functools.partial(_QuietHandler, directory=str(project_copy / "build"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def playwright_api() -> Any:
    """Playwright's sync API, where Playwright and Debian's Chromium are installed."""
    if not CHROMIUM.is_file():
        _missing(f"{CHROMIUM} is absent (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        _missing("Playwright is absent (pip install -e '.[dev]')")
    return importlib.import_module("playwright.sync_api")


@pytest.fixture
def viz_page(playwright_api, viz_site, tmp_path) -> Iterator[Any]:
    """The served site open in headless Chromium, every request beyond it refused (the
    test needs no network); the screenshot is taken at the end, even on failure."""
    artifacts = Path(os.environ.get("CI_ARTIFACTS_DIR") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.route(lambda url: not url.startswith(viz_site), lambda r: r.abort())
            page.add_init_script(VIZ_SETTINGS_SCRIPT)
            page.goto(viz_site)
            yield page
            page.evaluate(SETTLED_SCRIPT)
            page.screenshot(path=artifacts / "kedro_viz.png")
        finally:
            browser.close()
    # An exception in the app's own code, even one the page survives, is a failure.
    assert errors == []


@pytest.mark.slow
def test_kedro_viz_lists_every_pipeline_and_shows_a_nodes_code(
    viz_page, playwright_api
):
    """Every registered pipeline is in the selector; clicking a node of one shows its
    metadata, and "Show Code" shows the node function's source, as inspect reads it."""
    expect = playwright_api.expect
    expect.set_options(timeout=TIMEOUT_MS)
    configure_project("rating_prediction")
    pipelines = register_pipelines()
    node = {node.name: node for node in pipelines[PIPELINE].nodes}[NODE]

    selector = viz_page.locator('[data-test="kedro-pipeline-selector"]')
    selector.locator("button.dropdown__label").click()
    options = selector.get_by_role("option")
    expect(options.first).to_be_visible()
    assert set(options.all_inner_texts()) == set(pipelines)
    assert all(option.is_visible() for option in options.all())

    options.filter(has_text=re.compile(f"^{PIPELINE}$")).click()
    expect(selector.locator("button.dropdown__label")).to_have_text(PIPELINE)
    viz_page.locator(f'g.pipeline-node[data-node-fullname="{NODE}"]').click()
    metadata = viz_page.locator(".pipeline-metadata")
    expect(metadata.locator(".pipeline-metadata__title")).to_have_text(NODE)

    # The code is in the page from the start, off screen until "Show Code" slides it in.
    code = viz_page.locator(".pipeline-metadata-code__code pre")
    expect(code).not_to_be_in_viewport()
    show_code = metadata.get_by_text("Show Code")
    expect(
        show_code, f"no 'Show Code' for {NODE}: kedro-viz has no code"
    ).to_be_visible()
    show_code.click()
    expect(code).to_be_in_viewport(ratio=1)
    assert code.inner_text().strip() == inspect.getsource(node.func).strip()
