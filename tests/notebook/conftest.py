"""The notebook tests drive Chromium with the browser tier's fixtures."""

from browser.conftest import browser, page, screenshot  # noqa: F401  (tests/ is on sys.path)
