"""The documents stay documents: a page a person reads, not the output of a bad edit.

A past edit repeated one paragraph between every character of docs/data-quality.md (415,502
lines); the documented-commands test still found its commands and passed. Each page is bounded
in size, and no paragraph of it appears twice.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", REPO / "README_OPERATIONS.md", *sorted((REPO / "docs").glob("*.md"))]
MAX_BYTES = 150_000  # the longest page is about 60 KB


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_a_page_is_bounded_and_repeats_no_paragraph(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert len(text.encode()) <= MAX_BYTES, f"{page.name}: {len(text.encode())} bytes"
    paragraphs = [
        " ".join(block.split())
        for block in text.split("\n\n")
        if len(block.strip()) >= 200 and not block.lstrip().startswith(("|", "```"))
    ]
    repeated = [p[:80] for p, n in Counter(paragraphs).items() if n > 1]
    assert repeated == [], f"{page.name}: paragraphs repeated: {repeated}"
