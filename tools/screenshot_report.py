"""A PNG of the report site's index.html, taken with the system's chromium, for the README.

    python -m conformance report reports          # builds reports/index.html
    python tools/screenshot_report.py             # writes docs/report-matrix.png

Playwright drives the chromium found on PATH (it never downloads a browser). The README
tool can call ``screenshot()`` directly.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def screenshot(index: Path, png: Path, *, width: int = 1280, height: int = 900,
               full_page: bool = False, chromium: str | None = None) -> Path:
    """Write a PNG of ``index`` as a ``width`` x ``height`` window shows it (the whole page
    with ``full_page``), at twice the pixel density so it stays sharp; returns ``png``.
    Raises RuntimeError when chromium or playwright is missing."""
    chromium = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise RuntimeError("chromium is not on PATH (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError("playwright is not installed (pip install playwright; "
                           "no browser download is needed)") from None
    png.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(java_script_enabled=False, device_scale_factor=2,
                                    viewport={"width": width, "height": height})
            page.goto(index.resolve().as_uri())
            page.screenshot(path=str(png), full_page=full_page)
        finally:
            browser.close()
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("index", nargs="?", default=str(REPO / "reports" / "index.html"),
                        help="the site's index.html (default: reports/index.html)")
    parser.add_argument("--out", default=str(REPO / "docs" / "report-matrix.png"),
                        help="the PNG to write (default: docs/report-matrix.png)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--full-page", action="store_true", help="the whole page, not a window")
    options = parser.parse_args(argv)
    index = Path(options.index)
    if not index.is_file():
        print(f"{index}: no such file; build it with: python -m conformance report",
              file=sys.stderr)
        return 2
    try:
        png = screenshot(index, Path(options.out), width=options.width,
                         height=options.height, full_page=options.full_page)
    except RuntimeError as exc:
        print(f"screenshot_report: {exc}", file=sys.stderr)
        return 1
    print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
