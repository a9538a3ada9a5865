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


def test_every_named_test_a_page_cites_exists() -> None:
    # Given every `test_module.py::test_name` a page names as the proof of what it says
    import re

    modules = {path.name: path for path in (REPO / "tests").rglob("test_*.py")}
    cited = [
        (page.name, module, name)
        for page in PAGES
        for module, name in re.findall(r"(test_\w+\.py)::(test_\w+)", page.read_text("utf-8"))
    ]
    assert cited, "no page cites a test: the pattern no longer matches the pages"
    # Then each one is a test function of that module (a renamed or removed test leaves the
    # page citing a proof that no longer runs)
    missing = [
        f"{page}: {module}::{name}"
        for page, module, name in cited
        if module not in modules
        or not re.search(rf"^def {name}\b", modules[module].read_text("utf-8"), re.M)
    ]
    assert missing == []
