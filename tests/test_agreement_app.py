"""The annotation app in a real browser: headless Chromium drives ``marimo run notebooks/04_annotate.py``,
answers three questions, reloads, and finds the three answers on disk and the app at the fourth question."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from test_agreement_fixtures import make_run

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_annotate.py"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

# marimo renders its widgets in shadow DOM: find elements through every shadow root
DEEP = """
const sel = arguments[0];
function deepAll(root) {
  let out = [...root.querySelectorAll(sel)];
  for (const el of root.querySelectorAll('*')) if (el.shadowRoot) out = out.concat(deepAll(el.shadowRoot));
  return out;
}
return deepAll(document);
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn, what: str, timeout: float = 60.0):  # noqa: ANN001, ANN201
    end = time.time() + timeout
    while time.time() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Page:
    def __init__(self, driver) -> None:  # noqa: ANN001
        self.d = driver

    def find(self, selector: str) -> list:
        return self.d.execute_script(DEEP, selector)

    def click(self, element) -> None:  # noqa: ANN001
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def button(self, label: str):  # noqa: ANN201
        return wait_for(
            lambda: [b for b in self.find("button") if b.text.strip() == label], f"button {label!r}"
        )[0]

    def progress(self) -> str:
        shown = [e.text for e in self.find("#progress")]
        return shown[0] if shown else ""

    def start(self, annotator: str) -> None:
        box = wait_for(lambda: self.find("input[type=text], input:not([type])"), "the id box")[0]
        box.send_keys(annotator)
        self.click(self.button("Start"))

    def answer(self, which: int, why: str) -> None:
        before = self.progress()
        radios = wait_for(lambda: self.find("[role=radio]"), "the two answers")
        self.click(radios[which])
        self.find("textarea")[0].send_keys(why)
        self.click(self.button("Save and continue"))
        wait_for(lambda: self.progress() not in ("", before), "the next question")


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them with apt-get)",
)
def test_annotate_three_reload_resume_at_the_fourth(tmp_path, shared) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    run = make_run(tmp_path, shared, n_personas=2, n_prompts=5, agreement={"n_personas": 2, "n_questions": 5})
    port = free_port()
    marimo = Path(sys.executable).with_name("marimo")
    env = {**os.environ, "MARIMO_SKIP_UPDATE_CHECK": "1"}
    log = open(tmp_path / "marimo.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [str(marimo), "run", str(NOTEBOOK), "--headless", "--port", str(port), "--", "--run-dir", str(run)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}",
        "--window-size=1280,2400",
    ):
        options.add_argument(arg)
    driver = None
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return urllib.request.urlopen(url, timeout=2).status == 200
            except OSError:
                return False

        wait_for(up, "marimo run to serve the app")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        page = Page(driver)
        driver.get(url)
        page.start("annotator-7")
        assert wait_for(page.progress, "the first question") == "Question 1 of 5"
        whys = ["Short and to the point, like me.", "I want the whole picture.", "It respects my time."]
        for which, why in zip((0, 1, 0), whys, strict=True):
            page.answer(which, why)
        assert page.progress() == "Question 4 of 5"

        stored = json.loads((run / "annotations" / "annotator-7.json").read_text())
        answers = stored["answers"]
        assert [a["prompt_id"] for a in answers] == [q["prompt_id"] for q in stored["questions"][:3]]
        # "Answer 1" is the first answer shown: the label of order[0]
        expected = [stored["questions"][k]["order"][which] for k, which in enumerate((0, 1, 0))]
        assert [a["choice"] for a in answers] == expected
        assert [a["rationale"] for a in answers] == whys
        assert [a["order_shown"] for a in answers] == [",".join(q["order"]) for q in stored["questions"][:3]]

        driver.refresh()  # closing and reopening: the same id resumes at the fourth question
        page.start("annotator-7")
        assert wait_for(page.progress, "the resumed question") == "Question 4 of 5"
        assert len(json.loads((run / "annotations" / "annotator-7.json").read_text())["answers"]) == 3
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
