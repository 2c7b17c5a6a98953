"""Browser tests of the web console: Playwright (Python) driving Debian's Chromium headless."""
