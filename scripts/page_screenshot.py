"""Render docs/images/web_page.png: the web page at ``/`` driven as a user would, with the shipped models.

The whole server runs in this process on free ports (tests/webpage.py's harness) with ``models/``; Debian's
chromium (Playwright) picks the cat sample, paints the cat in a blend of two styles of the multi-style
net with the photo kept around it (mask=saliency), explains the photo with Grad-CAM and runs a short
DeepDream job, then takes one full-page screenshot.

    .venv/bin/python scripts/page_screenshot.py --out docs/images/web_page.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.webpage import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, PageServer, page_settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "web_page.png")
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--first", default="multi/starry_night", help="the blend's first style (its key)")
    p.add_argument("--second", default="the_scream", help="the style it is blended with")
    args = p.parse_args(argv)
    server = PageServer(page_settings(args.models))
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.goto(server.url + "/")
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            page.get_by_role("button", name="Cat", exact=True).click()
            page.get_by_label("A blend of two styles").check()
            page.select_option("#style-select", args.first)
            page.select_option("#blend-second", args.second)
            page.get_by_label("Only the subject").check()
            page.get_by_role("button", name="Stylise").click()
            expect(page.locator("#stylize-status")).to_have_attribute("data-kind", "ok")
            page.get_by_role("button", name="Explain").click()
            expect(page.locator("#saliency-status")).to_have_attribute("data-kind", "ok")
            page.fill("#job-steps", "6")
            page.fill("#job-size", "256")
            page.get_by_role("button", name="Start").click()
            expect(page.locator("#job-status")).to_contain_text("Done")
            page.wait_for_timeout(500)  # the result image decodes
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        server.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
