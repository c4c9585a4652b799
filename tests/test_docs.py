"""The docs site: a strict build, no broken local links, and (with chromium) a look in a real browser.

The browser part serves the built site on 127.0.0.1, loads every page with Debian's headless
``chromium`` at 1280 px (``--dump-dom`` for the rendered DOM, ``--screenshot`` for a picture). The
server adds a small script to each page that, once the page has loaded, writes the page's
scroll width, the window's width and the images that failed to load into an attribute of the
DOM, which the dump then carries. Every page must: show no raw Sphinx role (``:class:``,
``:meth:``, ``:func:``...), no ``Sentinel.`` default, no RST grid-table line, no literal ``::``
paragraph; be no wider than the window (no page-level horizontal scroll: wide tables and code
scroll inside their own box); load every image. A few pages are also checked for their title and
rendered math (the vendored KaTeX, no CDN) and photographed. Screenshots go to a temporary
folder (printed; ``pytest -s`` shows it) and are copied to ``docs-screenshots/`` when
``ST_GLOSS_DOCS_SCREENSHOTS=1``.
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
    ("quickstart/", "Quickstart", "quickstart"),
    ("tutorials/model_fit/", "1. Fine-tune with model.fit", "tutorial"),
    ("api/losses/", "Losses", "api"),
    ("api/classifier/", "Classifier", "api-classifier"),
    ("cli/", "Command line", "cli"),
    ("benchmarks/", "Cost and baselines", "benchmarks"),
    ("benchmark_cpu/", "Losses compared", "benchmark-cpu"),
    ("concepts/", "Concepts", None),
    ("guide/scale/", "Training at scale", "scale-guide"),
    ("guide/inference/", "Inference", None),
]
WIDTH = 1280
# Written into the DOM by the script the test server adds to every page (see _CheckingHandler).
CHECK_SCRIPT = b"""<script>
window.addEventListener("load", function () {
  var root = document.documentElement;
  var broken = Array.from(document.images).filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
    .map(function (i) { return i.getAttribute("src"); });
  root.setAttribute("data-st-check", JSON.stringify({scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
    images: document.images.length, brokenImages: broken}));
});
</script>"""
RAW_MARKUP = {
    "a raw Sphinx role": re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj|math):`?"),
    "a click Sentinel default": re.compile(r"Sentinel\."),
    "an RST grid-table line": re.compile(r"\+[-=]{3,}\+"),
    "a literal :: paragraph": re.compile(r"<p>\s*::\s*</p>|::</p>"),
}


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
                   ("model_fit", "trainer", "eval_cli", "mteb_own_csv", "choosing_options", "benchmark",
                    "multi_gpu", "classify")),
                 "quickstart/index.html", "guide/inference/index.html", "api/classifier/index.html",
                 "api/integrations/index.html"):
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

    def send_head(self):
        # Pages get the check script before </body>; everything else is served as it is.
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if path.suffix != ".html" or not path.is_file():
            return super().send_head()
        body = path.read_bytes().replace(b"</body>", CHECK_SCRIPT + b"</body>", 1)
        self.send_response(200)
        self.send_header("Content-type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        import io

        return io.BytesIO(body)


def _chromium(*arguments: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
            capture_output=True, text=True, timeout=120,
        )


needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no {CHROMIUM} for the browser check (apt-get install chromium)"
)


def page_problems(base_url: str, path: str) -> list[str]:
    """What is wrong with one page at 1280 px (see the module docstring); empty when nothing is."""
    import html as html_lib
    import json

    dom = _chromium("--dump-dom", f"--window-size={WIDTH},1000", base_url + path)
    assert dom.returncode == 0, dom.stderr[-3000:]
    match = re.search(r'data-st-check="([^"]*)"', dom.stdout)
    if not match:
        return [f"/{path}: the check script did not run"]
    problems = []
    check = json.loads(html_lib.unescape(match.group(1)))
    if check["scrollWidth"] > check["clientWidth"] + 1:
        problems.append(f"/{path}: {check['scrollWidth']} px wide in a {check['clientWidth']} px window")
    if check["brokenImages"]:
        problems.append(f"/{path}: images that do not load: {check['brokenImages']}")
    body = re.sub(r"<(pre|code|script|style)\b.*?</\1>", "", dom.stdout, flags=re.S)
    for what, pattern in RAW_MARKUP.items():
        found = pattern.search(body)
        if found:
            problems.append(f"/{path}: {what}: ...{body[max(0, found.start() - 60):found.end() + 20]!r}")
    return problems


def _serve(folder: Path):
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@needs_chromium
def test_the_page_check_catches_raw_markup_wide_pages_and_missing_images(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "index.html").write_text(
        "<html><body><p>see :class:`Foo`</p><p>default: Sentinel.UNSET</p><p>+-----+------+</p><p>::</p>"
        '<div style="width:3000px">wide</div><img src="missing.png"></body></html>', encoding="utf-8")
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "index.html").write_text(
        "<html><body><p>fine</p><pre>a :class:`b` in code is fine</pre></body></html>", encoding="utf-8")
    server, url = _serve(tmp_path)
    try:
        bad = page_problems(url, "bad/")
        assert page_problems(url, "good/") == []
    finally:
        server.shutdown()
        server.server_close()
    found = " ".join(bad)
    for what in (*RAW_MARKUP, "px wide in a", "images that do not load"):
        assert what in found, (what, bad)


@needs_chromium
def test_every_page_reads_right_at_1280_px(served, site):
    """No raw markup, no page-level horizontal scroll, every image loads: on every page of the site."""
    started = time.perf_counter()
    pages = sorted(p.relative_to(site).parent.as_posix() for p in site.rglob("index.html"))
    problems = []
    for page in pages:
        problems += page_problems(served, "" if page == "." else page + "/")
    print(f"{len(pages)} pages checked at {WIDTH} px in {time.perf_counter() - started:.1f} s")
    assert len(pages) > 30
    assert not problems, "\n".join(problems)


@needs_chromium
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
            done = _chromium(f"--screenshot={picture}", f"--window-size={WIDTH},1600", "--hide-scrollbars", url)
            assert done.returncode == 0 and picture.stat().st_size > 10_000, done.stderr[-3000:]
    print(f"screenshots: {shots}")
    if os.environ.get("ST_GLOSS_DOCS_SCREENSHOTS"):
        target = REPOSITORY / "docs-screenshots"
        shutil.copytree(shots, target, dirs_exist_ok=True)
        print(f"copied to {target}")
