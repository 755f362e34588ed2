"""report.html: written by every gen on every board, self-contained, and what headless Chromium shows of it."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from helpers import LazyBuilds, every_board_one_in_the_fast_tier

from hostgen.qcheck.conditions import CONDITIONS

SECTIONS = ["Memory map", "Model", "Quantization tax", "FIR filter and fallback thresholds", "Provenance"]
WITHOUT_FLOAT = "esp32 without a float model"


@pytest.fixture(scope="module")
def reports(gen_build, reference_tflite) -> dict[str, Path]:
    """name -> report.html of the reference build (quantization check included) on a board, or of one without a float model."""
    def report(name: str) -> Path:
        build = gen_build("esp32", "--model", reference_tflite) if name == WITHOUT_FLOAT else gen_build(name)
        return build / "report.html"

    return LazyBuilds(report)


REPORTS = [*every_board_one_in_the_fast_tier(), WITHOUT_FLOAT]


@pytest.mark.parametrize("name", REPORTS)
def test_report_has_every_section_and_only_embedded_images(reports, name):
    html = reports[name].read_text()
    assert html.startswith("<!--") and "Do not edit" in html.split("-->")[0]
    assert re.findall(r"<h2>(.*?)</h2>", html) == SECTIONS
    sources = re.findall(r'\ssrc="([^"]*)"', html)
    assert len(sources) == (4 if name == WITHOUT_FLOAT else 5)  # memory, FIR, thresholds, held-out figures (+ recall)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert all(link.startswith("#") for link in re.findall(r'\shref="([^"]*)"', html))
    assert "<link" not in html and "<script" not in html and "url(" not in html


def test_quantization_section_shows_the_check(reports):
    html = reports["stm32f4"].read_text()
    section = html.split('<section id="quantization">')[1].split("</section>")[0]
    assert "Gate: PASS" in section and "per-channel (shipped)" in section
    for condition in CONDITIONS:
        assert f"<td>{condition.label}</td>" in section, condition.label
    envelope = section.split('id="envelope"')[1].split("<h3>")[0]
    assert "Model envelope" in section and "noise 10 dB SNR" in envelope, "the float model's own failures, apart"
    without = reports[WITHOUT_FLOAT].read_text().split('<section id="quantization">')[1].split("</section>")[0]
    assert "Not measured" in without and "--float-model" in without


def test_manifest_lists_the_report_and_the_check(reports):
    build = reports["stm32f4"].parent
    manifest = json.loads((build / "build.json").read_text())
    assert manifest["files"]["report.html"] == hashlib.sha256((build / "report.html").read_bytes()).hexdigest()
    assert manifest["qcheck"]["gate"] == "pass" and manifest["inputs"]["float_model"]["path"] == "build/reference/faultline.keras"
    html = (build / "report.html").read_text()
    for role, record in manifest["inputs"].items():
        assert f"<td>{role}</td>" in html and record["sha256"] in html
    without = json.loads((reports[WITHOUT_FLOAT].parent / "build.json").read_text())
    assert "--float-model" in without["qcheck"]["not_run"] and "float_model" not in without["inputs"]


@pytest.fixture(scope="module")
def browser():
    if shutil.which("chromium") is None:
        pytest.skip("needs Debian's chromium: run 'make setup' (apt-get install chromium)")
    from headless_chromium import headless_chromium

    with headless_chromium() as running:
        yield running


@pytest.mark.parametrize("name", REPORTS)
def test_reports_render_in_headless_chromium(reports, browser, name):
    page = browser.load(reports[name])
    assert page["errors"] == [], page["errors"]
    assert all(url.startswith(("file:", "data:")) for url in page["requests"])
    assert page["images"] and all(image["complete"] and image["width"] > 0 for image in page["images"]), page["images"]
    assert page["headings"] == SECTIONS


def test_reference_model_is_shown_beside_the_fallback_and_the_board(reports):
    from hostgen.model.reference import reference_figures

    figures = reference_figures()
    base = figures["baselines"]
    html = reports["stm32f4"].read_text()
    table = html.split('<table id="reference-baselines">')[1].split("</table>")[0]
    rows = [re.findall(r'<td class="n">([0-9.]+)</td>', row) for row in table.split("<tr>")[2:]]
    expected = [(figures["heldout"]["int8_tflm"], figures["heldout_shifted"]["int8_tflm"]),
                (base["heldout"]["fallback"], base["heldout_shifted"]["fallback"]),
                (base["heldout"]["board"], base["heldout_shifted"]["board"])]
    assert rows == [[f"{part[key]:.4f}" for part in pair for key in ("false_alarm_rate", "fault_recall")] for pair in expected]
    verdict = html.split('id="reference-verdict"')[1].split("</p>")[0]
    assert ("<strong>better</strong>" if base["board_beats_fallback"] else "<strong>no better</strong>") in verdict
