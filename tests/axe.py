"""axe-core (vendored: tests/vendor/axe-core, version and licence beside it) run in a
Playwright page: the accessibility violations a page has, by impact.

The page's Content-Security-Policy forbids injected scripts; contexts that run axe are
opened with ``bypass_csp=True`` (the CSP itself is tested elsewhere).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


@cache
def _source() -> str:
    return AXE.read_text(encoding="utf-8")


def violations(page, impacts=BLOCKING) -> list[dict]:
    """axe's WCAG 2.x A/AA violations of the page as it is now, of the given impacts:
    ``[{"id", "impact", "help", "targets"}]``."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_source())
    found = page.evaluate(
        """async () => {
          const result = await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
            resultTypes: ["violations"],
          });
          return result.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
          }));
        }"""
    )
    return [v for v in found if v["impact"] in impacts]
