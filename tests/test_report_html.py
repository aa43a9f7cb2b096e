"""report.html opened in a real browser (Debian's chromium driven by selenium through chromedriver),
on a run whose catalog holds hostile titles and categories; `seglens report --format json|md`;
`seglens map`; the stratified map sample; missing and odd analysis data; plugin sections.

The browser tests skip (with the reason) when selenium, /usr/bin/chromium or /usr/bin/chromedriver is
missing: `apt-get install -y chromium chromium-driver` and `pip install selenium`.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import seglens

from seglens import hookimpl, plugins
from seglens.default_plugins.demo_data import generate_demo
from seglens.default_plugins.map_command import stratified_sample
from seglens.default_plugins.report_html import HtmlReporter, safe_json
from seglens.runfolder import RunFolder

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCRIPT = "<script>window.pwned=1</script>"
IMG = "<img src=x onerror=alert(1)>"
BREAKOUT = "</script><script>window.pwned=2</script><!--"
ATTR = "\"><svg onload=alert(2)>'"
CATEGORY = "<img src=x onerror=alert(3)>Romance"  # replaces Romance, which names a planted segment
USER = "<b onmouseover=alert(4)>u000001"
ANALYSES = ('["profile","quality","features","similarity","differences","growth","lifecycle","value",'
            '"prediction","preferences","recommendations","satisfaction"]')


def _payload(i: int) -> str:
    return (SCRIPT, IMG, BREAKOUT, ATTR, "$x^2$ & <!-- comment")[i % 5]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    """A small planted demo whose catalog and user ids carry HTML and script payloads, run through the
    real command line with every analysis, writing md, html and json reports."""
    root = tmp_path_factory.mktemp("hostile")
    files = generate_demo(root / "data", n_users=700, seed=5)
    items = pd.read_csv(files.items, dtype=str, keep_default_na=False)
    events = pd.read_csv(files.events, dtype=str, keep_default_na=False)
    popular = events["item_id"].value_counts().index.tolist()
    # the most consumed items of the catalog (so they are lifted, recommended and recent) get payloads
    chosen = set(popular[: len(popular) // 3])
    items["title"] = [f"{_payload(i)} {t}" if iid in chosen else t
                      for i, (iid, t) in enumerate(zip(items["item_id"], items["title"]))]
    items["categories"] = items["categories"].str.replace("Romance", CATEGORY, regex=False)
    items.to_csv(files.items, index=False)
    for path in (files.events, files.users):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame["user_id"] = frame["user_id"].replace({"u000001": USER})
        frame.to_csv(path, index=False)
    out = root / "run"
    r = seglens("run", files.events, "--items", files.items, "--users", files.users, "-o", out,
                "--describer", "keywords", "--set", "reduce.method=pca", "--set", "reduce.map_method=pca",
                "--set", f"analyses={ANALYSES}", "--set", 'report.formats=["md","html","json"]')
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def hostile_report(hostile_run) -> Path:
    """`seglens report RUN --format html` into the run folder (replacing the pipeline's copy)."""
    before = (hostile_run / "report.html").stat().st_mtime_ns
    r = seglens("report", hostile_run, "--format", "html")
    assert r.returncode == 0, r.stderr
    path = hostile_run / "report.html"
    assert path.stat().st_mtime_ns >= before
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def _wait(driver, script: str, timeout: float = 60.0):
    end = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value or time.monotonic() > end:
            return value
        time.sleep(0.2)


def _distinct_colours(png: bytes) -> int:
    from PIL import Image

    im = Image.open(io.BytesIO(png)).convert("RGB")
    return len(im.getcolors(maxcolors=1 << 24) or [])


def _figures(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="seglens-figures">(.*?)</script>', html, re.DOTALL)
    assert m, "no embedded figures"
    return json.loads(m.group(1))


# --- in a real browser ----------------------------------------------------------------------------------
def test_report_renders_in_chromium_and_executes_nothing_from_the_data(hostile_report, hostile_run, browser,
                                                                       tmp_path):
    from selenium.common.exceptions import NoAlertPresentException

    browser.get(hostile_report.resolve().as_uri())
    n_users = len(pd.read_parquet(hostile_run / "users.parquet"))
    drawn = _wait(browser, "return document.querySelectorAll('#map-plot .scatterlayer .point').length")
    assert drawn == n_users  # every user is a point (a small run is not sampled)
    n_data = browser.execute_script(
        "return document.getElementById('map-plot').data.reduce(function (a, t) { return a + t.x.length; }, 0)")
    assert n_data == n_users

    # draw every lazily drawn chart (growth per segment, similarity heatmap) and wait for them
    browser.execute_script("window.seglensDrawAll()")
    n_figs = browser.execute_script("return document.querySelectorAll('[data-fig]').length")
    assert n_figs >= 3  # the map, the similarity heatmap and growth charts
    assert _wait(browser, f"return document.querySelectorAll('.js-plotly-plot').length >= {n_figs}")

    # hover a user whose recent items carry payloads: shown as text, nothing created
    hit = browser.execute_script("""
        var gd = document.getElementById('map-plot');
        for (var c = 0; c < gd.data.length; c++) { var t = gd.data[c].text;
          for (var p = 0; p < t.length; p++) { if (t[p].indexOf('&lt;script&gt;window.pwned=1') >= 0) {
            Plotly.Fx.hover(gd, [{curveNumber: c, pointNumber: p}]); return [c, p]; } } }
        return null;""")
    assert hit is not None, "no sampled user has a hostile title among their recent items"
    hover = _wait(browser, "var h = document.querySelector('#map-plot .hoverlayer'); return h && h.textContent")
    assert SCRIPT in hover
    assert browser.execute_script("return document.querySelectorAll('#map-plot .hoverlayer img').length") == 0

    # payloads appear as literal text in the page, legend and heatmap labels, and did nothing
    text = browser.execute_script("return document.body.innerText")
    assert SCRIPT in text and IMG in text and CATEGORY in text
    legend = browser.execute_script("return document.querySelector('#map-plot .legend').textContent")
    assert "<img src=x onerror=alert(3)>" in legend.lower()  # keywords names a segment after the category
    assert browser.execute_script("return typeof window.pwned") == "undefined"
    assert browser.execute_script(
        "return document.querySelectorAll('img, svg [onload], [onerror], [onmouseover], b[onmouseover]').length") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018  (an alert would have interrupted every call above)

    errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == []

    png = browser.get_screenshot_as_png()
    (tmp_path / "report.png").write_bytes(png)
    assert _distinct_colours(png) > 200, "the screenshot looks blank"
    browser.execute_script("document.getElementById('map').scrollIntoView()")
    time.sleep(0.3)
    assert _distinct_colours(browser.get_screenshot_as_png()) > 200


def test_sampled_map_keeps_every_segment_and_says_so(hostile_run, browser, tmp_path):
    out = tmp_path / "sampled.html"
    r = seglens("report", hostile_run, "--format", "html", "--max-points", "150", "-o", out)
    assert r.returncode == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    assert "stratified sample of 150 of" in html
    traces = _figures(html)["map"]["data"]
    assert sum(len(t["x"]) for t in traces) == 150
    users = pd.read_parquet(hostile_run / "users.parquet")
    assert len(traces) == users["segment"].nunique()  # every segment (and the noise) is on the map
    browser.get(out.resolve().as_uri())
    assert _wait(browser, "return document.querySelectorAll('#map-plot .scatterlayer .point').length") == 150
    assert [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"] == []


# --- the files themselves -------------------------------------------------------------------------------
def test_html_is_self_contained_and_escaped(hostile_run, hostile_report):
    html = hostile_report.read_text(encoding="utf-8")
    assert (hostile_run / "report.html").stat().st_size > 3_000_000  # plotly.js is inside
    assert len(re.findall(r"<script\b", html)) == 3 and html.count("</script>") == 3  # the page's own three
    assert html.index("<script>") > html.index('id="appendix"')  # scripts last: the text paints first
    page = re.sub(r"<script>.*?</script>", "", html, count=1, flags=re.DOTALL)  # everything but plotly.js
    assert not re.search(r"<script[^>]+src=|<link[^>]+stylesheet|<(img|iframe|object)\b|https?://cdn|@import|"
                         r"@font-face|url\(", page)
    for raw in (SCRIPT, IMG, ATTR, CATEGORY, USER, "<svg", "<b onmouseover"):
        assert raw not in page, raw
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html  # escaped in the page text
    figures = _figures(html)  # and the embedded JSON still carries the text (for plotly, escaped once more)
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in json.dumps(figures)
    assert "user &lt;b onmouseover=alert(4)&gt;u000001" in json.dumps(figures)  # the hostile user id
    body = html.split('<script type="application/json" id="seglens-figures">', 1)[1].split("</script>", 1)[0]
    assert "<" not in body and ">" not in body
    # every section that has data is there
    for anchor in ('id="overview"', 'id="map"', 'id="segments"', 'id="similarity"', 'id="differences"',
                   'id="appendix"', "Lifecycle mix", "Value and CLV", "Active users with forecast", "Satisfaction",
                   "Top recommendations", "Representative users", "Seconds per stage", "sha256"):
        assert anchor in html, anchor


def test_pipeline_wrote_every_configured_report(hostile_run):
    for name in ("report.md", "report.html", "report.json"):
        assert (hostile_run / name).is_file(), name
    assert "<h1>run</h1>" in (hostile_run / "report.html").read_text(encoding="utf-8")  # not "run.partial"
    assert (hostile_run / "report_files" / "map.png").is_file()


def test_report_json_and_md_formats(hostile_run, tmp_path):
    out = tmp_path / "r.json"
    r = seglens("report", hostile_run, "--format", "json", "-o", out)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["segments"] == json.loads((hostile_run / "segments.json").read_text(encoding="utf-8"))
    manifest = json.loads((hostile_run / "manifest.json").read_text(encoding="utf-8"))
    assert data["summary"]["counts"] == manifest["counts"] and data["summary"]["seed"] == manifest["seed"]
    assert data["summary"]["period"]["first"] and "similarity" in data["analyses"]

    md = tmp_path / "wiki" / "seg.md"
    md.parent.mkdir()
    r = seglens("report", hostile_run, "--format", "md", "-o", md)
    assert r.returncode == 0, r.stderr
    text = md.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert "seg_files/map.png" in images and any(re.fullmatch(r"seg_files/segment-\d+-categories\.png", i)
                                                  for i in images)
    for rel in images:
        png = (md.parent / rel).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and _distinct_colours(png) > 20, rel
    assert SCRIPT not in text and IMG not in text  # Markdown escaping still holds

    r = seglens("report", hostile_run, "--format", "pdf")
    assert r.returncode == 2 and "no report format 'pdf'" in r.stderr


def test_map_png(hostile_run, tmp_path):
    out = tmp_path / "map.png"
    r = seglens("map", hostile_run, "-o", out)
    assert r.returncode == 0, r.stderr
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and _distinct_colours(png) > 50
    r = seglens("map", hostile_run, "-o", tmp_path / "small.png", "--max-points", "100")
    assert r.returncode == 0 and "stratified sample of 100 of 700 users" in r.stdout + r.stderr
    r = seglens("map", tmp_path / "nope", "-o", tmp_path / "x.png")
    assert r.returncode == 2 and "no such run folder" in r.stderr


# --- robustness: missing or odd data, plugin sections -----------------------------------------------------
def _copy_run(src: Path, dst: Path, keep: tuple[str, ...] = ()) -> Path:
    dst.mkdir()
    for name in ("manifest.json", "users.parquet", "segments.json", "embeddings.npy", "index.faiss", *keep):
        shutil.copy(src / name, dst / name)
    return dst


def test_report_without_analyses_or_odd_data(hostile_run, tmp_path):
    bare = _copy_run(hostile_run, tmp_path / "bare")
    segs = json.loads((bare / "segments.json").read_text(encoding="utf-8"))
    (bare / "segments.json").write_text(json.dumps([{k: s[k] for k in ("id", "size", "share")} for s in segs]))
    (bare / "manifest.json").write_text("{}")
    reporter = HtmlReporter({"seed": 1})
    html = reporter.write(RunFolder(bare), bare / "report.html").read_text(encoding="utf-8")
    assert 'id="map"' in html and 'id="segments"' in html
    for absent in ('id="similarity"', 'id="differences"', "Lifecycle mix", "Value and CLV", "Parts left out"):
        assert absent not in html, absent

    odd = _copy_run(hostile_run, tmp_path / "odd", keep=("analyses.json", "segment_centroids.npy"))
    segs = json.loads((odd / "segments.json").read_text(encoding="utf-8"))
    for s in segs:
        s.update({"value": "n/a", "lifecycle": {"stage_shares": [1, 2]}, "growth": [3], "satisfaction": None,
                  "ungrounded": ["a bare sentence"], "traits": "not a list", "similarity": {"nearest": [{"x": 1}]}})
        s.get("profile", {})["top_items"] = [{"title": "no lift"}, 7]
    (odd / "segments.json").write_text(json.dumps(segs))
    html = reporter.write(RunFolder(odd), odd / "report.html").read_text(encoding="utf-8")
    assert 'id="similarity"' in html  # computed from segment_centroids.npy without the analysis table
    assert "segment_centroids.npy" in html and "a bare sentence" in html


def test_plugin_sections(hostile_run, tmp_path):
    class Good:
        def __init__(self, options):
            pass

        def section(self, run):
            return "<Churn> watch", f"<p class='mine'>{len(run.segments())} segments</p>"

    class Bad:
        def __init__(self, options):
            pass

        def section(self, run):
            raise RuntimeError("<boom>")

    mod = types.ModuleType("seglens_test_sections")

    @hookimpl
    def register_reporters(register):
        register("html-section:good", Good)
        register("html-section:bad", Bad)

    mod.register_reporters = register_reporters
    plugins.load_plugins()
    plugins.pm.register(mod, name="test-sections")
    try:
        html = HtmlReporter({}).write(RunFolder(hostile_run), tmp_path / "r.html").read_text(encoding="utf-8")
    finally:
        plugins.pm.unregister(mod)
    assert "<h2>&lt;Churn&gt; watch</h2>" in html and "<p class='mine'>" in html
    assert "could not be drawn: RuntimeError: &lt;boom&gt;" in html


# --- units -------------------------------------------------------------------------------------------------
def test_stratified_sample_keeps_every_label_and_is_seeded():
    rng = np.random.default_rng(0)
    labels = np.concatenate([np.full(50_000, 0), np.full(3_000, 1), np.full(12, 2), np.full(1, 3),
                             np.full(900, -1)])
    rng.shuffle(labels)
    rows = stratified_sample(labels, 20_000, seed=7)
    assert len(rows) == 20_000 and len(np.unique(rows)) == 20_000
    assert set(np.unique(labels[rows])) == {-1, 0, 1, 2, 3}
    assert (labels[rows] == 2).sum() == 12 and (labels[rows] == 3).sum() == 1
    assert np.array_equal(rows, stratified_sample(labels, 20_000, seed=7))
    assert not np.array_equal(rows, stratified_sample(labels, 20_000, seed=8))
    assert np.array_equal(stratified_sample(labels[:100], 20_000), np.arange(100))


def test_safe_json_cannot_close_a_script():
    text = safe_json({"t": "</script><!-- & \u2028", "n": float("nan"), "a": np.arange(2)})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"t": "</script><!-- & \u2028", "n": None, "a": [0, 1]}
