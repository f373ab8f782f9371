"""The documents and configs speak of the project, and every file they cite is in it."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The pages and configs a user reads.
DOCUMENTS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "configs").glob("*.flags")]
)

# Words about how the project was built rather than about what it is.
HISTORY = re.compile(
    r"\bsessions?\b|\bissues? ?#?\d+|(?<![\w/])#\d{2,}\b|\bno GPU was lent\b|\.\./shared\b"
    r"|(?<![\w/])(?-i:METHOD|ENV)\.md\b",
    re.IGNORECASE,
)

# Markdown links `[text](target)`, and paths to files of the repository's own folders.
LINK = re.compile(r"\]\(([^)\s]+)\)")
TOP_LEVEL = "benchmarks|configs|data_pipelines|docs|examples|export|fgbg_keras|tests|tools"
REPO_PATH = re.compile(
    rf"(?<![\w/.-])((?:{TOP_LEVEL})/[\w./-]*\.(?:md|py|flags|sh|png|gif|json|toml|html|js))\b"
)


def _name(path):
    return str(path.relative_to(ROOT))


def cited_files(path, text):
    """The repository files that `text` (the content of `path`) links to or names."""
    cited = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        cited.append((path.parent / target.split("#")[0]).resolve())
    cited.extend(ROOT / name for name in REPO_PATH.findall(text))
    return cited


def test_the_checks_catch_history_and_missing_files(tmp_path):
    page = tmp_path / "page.md"
    assert HISTORY.search("measured in session 12")
    assert HISTORY.search("as issue 31 asks")
    assert HISTORY.search("see #27")
    assert HISTORY.search("`METHOD.md` in the shared notes")
    assert not HISTORY.search("a `--session_dir` flag and the mask's #3 channel")
    assert not HISTORY.search("the method: docs/method.md")
    cited = cited_files(page, "[a](missing.md) [b](https://x.org/a.md) `docs/none.md` [c](#top)")
    assert cited == [(tmp_path / "missing.md").resolve(), ROOT / "docs/none.md"]


def test_documents_exist():
    names = {_name(path) for path in DOCUMENTS}
    assert {"README.md", "docs/method.md", "configs/real.flags"} <= names


@pytest.mark.parametrize("path", DOCUMENTS, ids=_name)
def test_document_speaks_of_the_project(path):
    text = path.read_text()
    found = sorted({match.group(0) for match in HISTORY.finditer(text)})
    assert not found, f"{_name(path)} speaks of how the project was built: {found}"


@pytest.mark.parametrize("path", DOCUMENTS, ids=_name)
def test_document_cites_only_files_the_repository_holds(path):
    text = path.read_text()
    missing = sorted({str(p) for p in cited_files(path, text) if not p.exists()})
    assert not missing, f"{_name(path)} cites files the repository does not hold: {missing}"
