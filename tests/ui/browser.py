"""Headless Chromium (Debian's chromium and chromium-driver, `make browser`) driven by Selenium, and
the UI servers a test starts: each in its own session, stopped with its children."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Flags for a closed network: without the background-networking ones Chromium keeps calling out.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
)
SCREENSHOTS = Path(os.environ.get("DLAUTOML_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")) / "browser"


class Browser:
    """One headless Chromium window; every page it checks is saved as a screenshot under ``SCREENSHOTS``."""

    def __init__(self) -> None:
        if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
            raise RuntimeError(
                f"{CHROMIUM} or {CHROMEDRIVER} is missing: `make browser` installs Debian's chromium and chromium-driver"
            )
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def page(self, url: str, name: str, until: str, timeout: float = 60) -> str:
        """Opens ``url``, waits until the rendered text contains ``until`` (the single-page apps render
        after the load event), saves ``<name>.png`` and returns the page's visible text."""
        self.driver.get(url)
        deadline = time.time() + timeout
        text = ""
        while time.time() < deadline:
            text = self.driver.find_element("tag name", "body").text
            if until in text:
                break
            time.sleep(0.5)
        time.sleep(1)  # the last parts of the page (tables filled by a second request)
        text = self.driver.find_element("tag name", "body").text
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        assert until in text, f"{url} never showed {until!r}; it shows:\n{text[:3000]}"
        return text

    def close(self) -> None:
        self.driver.quit()


def shown_value(text: str, label: str) -> float:
    """The number a page shows right after ``label`` on its own line (a name/value table)."""
    found = re.search(rf"^{re.escape(label)}\n(-?[0-9.e+-]+)$", text, re.MULTILINE)
    assert found, f"no value shown for {label!r}:\n{text[:3000]}"
    return float(found[1])


@contextmanager
def servers(commands: dict[str, tuple[list[str], str]], cwd: Path, environment: dict[str, str]) -> Iterator[None]:
    """Starts each command (name: (argv, URL that answers when it is up)), waits for all, and stops
    each with its process group afterwards; a server that does not come up fails with its log."""
    started: dict[str, tuple[subprocess.Popen, Path]] = {}
    try:
        for name, (argv, _) in commands.items():
            log = cwd / f"{name}.log"
            started[name] = (
                subprocess.Popen(
                    argv, cwd=cwd, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
                ),
                log,
            )
        for name, (_, url) in commands.items():
            process, log = started[name]
            deadline = time.time() + 180
            while True:
                try:
                    if httpx.get(url, timeout=2).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None and time.time() < deadline, f"{name} did not come up:\n{log.read_text()[-3000:]}"
                time.sleep(1)
        yield
    finally:
        for process, _ in started.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for process, _ in started.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
