"""The documentation: every relative link resolves to a file in the repository, no link or path
points outside it."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("examples/**/*.md"), *ROOT.glob("bench/*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_inside_the_repository(doc):
    text = doc.read_text()
    for target in LINK.findall(text):
        assert not re.match(r"[a-z]+://", target), (doc.name, target)     # no links off the repository
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), (doc.name, target)
        assert path.exists(), (doc.name, target)
    # nor paths to the workspace around the checkout
    assert "shared/reference" not in text and "/work/" not in text, doc.name
