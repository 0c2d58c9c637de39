"""Every relative link in README.md, CONTRIBUTING.md and docs/*.md points at a file and a heading that exist.

The README is the project's front door and links to the docs for every detail; a renamed file or heading
would otherwise leave a dead link that nobody notices. Anchors follow GitHub's rule for heading ids.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TOPICS = [ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]  # each one linked from the README
DOCS = [ROOT / "README.md", *TOPICS]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_HTML_ID = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)


def slug(heading: str) -> str:
    """GitHub's id of a heading: markup dropped, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and _ (also non-ASCII letters)
    return text.replace(" ", "-")


def prose(markdown: str) -> str:
    """The text outside fenced code blocks and code spans (a link in code is not a link)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", markdown))


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set(_HTML_ID.findall(markdown))
    for _, title in _HEADING.findall(_FENCE.sub("", markdown)):
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(doc: Path) -> list[str]:
    """``doc``'s relative links whose file or anchor does not exist, as 'target: why'."""
    problems = []
    for target in _LINK.findall(prose(doc.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / unquote(path_part)).resolve() if path_part else doc
        if not dest.exists():
            problems.append(f"{target}: no such file {_shown(dest)}")
            continue
        if (
            anchor
            and dest.is_file()
            and dest.suffix == ".md"
            and unquote(anchor) not in anchors(dest.read_text())
        ):
            problems.append(f"{target}: no heading with id #{anchor} in {_shown(dest)}")
    return problems


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_is_alive(doc: Path) -> None:
    problems = broken_links(doc)
    assert not problems, f"{doc.relative_to(ROOT)} has dead links:\n  " + "\n  ".join(problems)


def test_the_readme_links_to_every_topic_in_docs() -> None:
    readme = prose((ROOT / "README.md").read_text())
    linked = {Path(t.partition("#")[0]).name for t in _LINK.findall(readme)}
    missing = [p.name for p in TOPICS if p.name not in linked]
    assert not missing, f"README.md links to no {missing}"


def test_github_heading_ids() -> None:
    assert slug("Stitcher (`journeys stitcher`)") == "stitcher-journeys-stitcher"
    assert (
        slug("Evaluation against the simulator's ground truth")
        == "evaluation-against-the-simulators-ground-truth"
    )
    assert slug("Ops: Prometheus and Grafana") == "ops-prometheus-and-grafana"
    assert slug("Why no faust on the hot path?") == "why-no-faust-on-the-hot-path"
    assert slug("See [the docs](docs/x.md) — now") == "see-the-docs--now"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_a_dead_file_or_anchor_is_caught(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Real heading\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Top\n[ok](other.md#real-heading) [self](#top) [web](https://example.com/x)\n"
        "[gone](missing.md) [bad anchor](other.md#nope) [bad self](#nowhere)\n"
        "`[in code](missing-too.md)`\n```\n[in a fence](missing-three.md)\n```\n"
    )
    problems = broken_links(doc)
    assert [p.split(":")[0] for p in problems] == ["missing.md", "other.md#nope", "#nowhere"]
