"""The docs site: a strict build, no broken local links, and (with chromium) a look in a real browser.

The browser part serves the built site on 127.0.0.1, loads pages with Debian's headless
``chromium`` (``--dump-dom`` for the rendered DOM, ``--screenshot`` for a picture) and checks that
each page shows its title and that math is rendered by the vendored KaTeX (no CDN). Screenshots
go to a temporary folder (printed; ``pytest -s`` shows it) and are copied to ``docs-screenshots/``
when ``ST_GLOSS_DOCS_SCREENSHOTS=1``.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

# Every test here needs the built site (mkdocs build --strict, tens of seconds): slow.
pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=5000",
]
# (path, text its <title> and <h1> must show, screenshot name or None)
PAGES = [
    ("", "st-gloss", "home"),
    ("tutorials/model_fit/", "1. Fine-tune with model.fit", "tutorial"),
    ("api/losses/", "Losses", "api"),
    ("concepts/", "Concepts", None),
    ("guide/scale/", "Training at scale", "scale-guide"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built with ``mkdocs build --strict`` into a temporary folder."""
    folder = tmp_path_factory.mktemp("site")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-5000:]
    print(f"mkdocs build --strict: {time.perf_counter() - started:.1f} s")
    return folder


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and ((name == "href" and tag in ("a", "link")) or (name == "src" and tag in ("script", "img"))):
                self.links.append(value)


def _local_target(site: Path, page: Path, link: str) -> Path | None:
    """The file a local link points to, or None for external links and pure fragments."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    path = unquote(parts.path)
    target = (site / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
    return target / "index.html" if path.endswith("/") or target.is_dir() else target


def test_the_site_builds_strictly_with_every_page(site):
    for page in ("index.html", "concepts/index.html", "cli/index.html", "benchmarks/index.html",
                 "api/losses/index.html", "api/evaluation_metrics/index.html", "images/pipeline.svg",
                 *(f"tutorials/{name}/index.html" for name in
                   ("model_fit", "trainer", "eval_cli", "mteb_own_csv", "choosing_options", "benchmark"))):
        assert (site / page).is_file(), page


def test_no_broken_local_links(site):
    broken = []
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            target = _local_target(site, page, link)
            if target is not None and not target.resolve().is_file():
                broken.append(f"{page.relative_to(site)}: {link}")
    assert not broken, "broken local links:\n" + "\n".join(broken[:50])


def test_no_dollar_signs_left_around_math(site):
    # `$$...$$` inside a paragraph comes out as `$<span class="arithmatex">...</span>$`: put it on its own lines.
    stray = re.compile(r'\$<span class="arithmatex">|<span class="arithmatex">[^<]*</span>\$')
    bad = [str(p.relative_to(site)) for p in site.rglob("*.html") if stray.search(p.read_text(encoding="utf-8"))]
    assert not bad, f"display math inside a paragraph on: {bad}"


def test_math_needs_no_cdn(site):
    html = (site / "concepts" / "index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in html
    assert "vendor/katex/katex.min.js" in html and "vendor/katex/katex.min.css" in html
    assert "cdn.jsdelivr" not in html and "mathjax" not in html.lower()
    css = (site / "vendor" / "katex" / "katex.min.css").read_text(encoding="utf-8")
    fonts = {part.split(")")[0] for part in css.split("url(")[1:]}
    assert fonts and all((site / "vendor" / "katex" / font).is_file() for font in fonts)


@pytest.fixture(scope="module")
def served(site):
    """The built site on http://127.0.0.1:<free port>/."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _chromium(*arguments: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
            capture_output=True, text=True, timeout=120,
        )


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no {CHROMIUM} for the browser check (apt-get install chromium)"
)
def test_pages_render_in_a_real_browser(served, tmp_path):
    shots = tmp_path / "docs-screenshots"
    shots.mkdir()
    for path, title, shot in PAGES:
        url = served + path
        dom = _chromium("--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-3000:]
        html = dom.stdout
        assert f"<title>{title}" in html, f"{url}: <title> does not start with {title!r}"
        assert f">{title}" in html, f"{url}: the title {title!r} is not rendered"
        if path == "concepts/":
            # KaTeX turned every arithmatex element into rendered math; no raw TeX is left.
            assert html.count('class="katex"') >= html.count('class="arithmatex"') > 5
            assert 'class="katex-error"' not in html
        if shot:
            picture = shots / f"{shot}.png"
            done = _chromium(f"--screenshot={picture}", "--window-size=1280,1600", url)
            assert done.returncode == 0 and picture.stat().st_size > 10_000, done.stderr[-3000:]
    print(f"screenshots: {shots}")
    if os.environ.get("ST_GLOSS_DOCS_SCREENSHOTS"):
        target = REPOSITORY / "docs-screenshots"
        shutil.copytree(shots, target, dirs_exist_ok=True)
        print(f"copied to {target}")
