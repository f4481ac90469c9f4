"""The README documents what the code offers."""

from __future__ import annotations

import re
from pathlib import Path

from betatel_reset.conf import DEFAULTS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def settings_table() -> dict[str, str]:
    section = README.split("## Settings reference", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.+?) \|", section, flags=re.MULTILINE)
    return dict(rows)


def test_every_setting_is_in_the_readme_reference() -> None:
    documented = settings_table()
    assert sorted(set(DEFAULTS) - set(documented)) == []
    assert sorted(set(documented) - set(DEFAULTS)) == []


def test_documented_defaults_match_the_code() -> None:
    for key, shown in settings_table().items():
        default = DEFAULTS[key]
        expected = "`None`" if default is None else f"`{default!r}`".replace("'", '"')
        assert shown == expected, key


def test_every_check_id_is_documented() -> None:
    source = (Path(__file__).resolve().parent.parent / "betatel_reset" / "checks.py").read_text()
    ids = set(re.findall(r'"(betatel_reset\.[EW]\d{3})"', source))
    assert ids
    for check_id in ids:
        assert f"`{check_id}`" in README, check_id


def test_the_layout_section_matches_the_package() -> None:
    """Every module of the package is in the README's map, and nothing else."""
    section = README.split("### Layout", 1)[1].split("```", 2)[1]
    package = Path(__file__).resolve().parent.parent / "betatel_reset"
    on_disk = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.parent == package
        or ("migrations" not in path.parts and path.name != "__init__.py")
    }
    named = set(re.findall(r"[\w/]*?(\w+\.py)", section))
    for module in sorted(on_disk):
        assert Path(module).name in named, f"{module} is missing from the README's layout"
    names_on_disk = {Path(module).name for module in on_disk}
    assert named - names_on_disk == set(), "the README's layout names modules that do not exist"
    for folder in ("backends/", "admin/", "testing/", "management/commands/"):
        assert folder in section


#: The README's integration sections, whose every snippet a test site uses.
INTEGRATION_SECTIONS = [
    ("## Add it to your site\n", "## The pages\n"),
    ("### When a reset link fails\n", "### Templates\n"),
    ("### Templates\n", "### Wording\n"),
]
SITES = Path(__file__).resolve().parent / "sites"


def _snippet_lines() -> list[str]:
    lines = []
    for start, end in INTEGRATION_SECTIONS:
        section = README.split(start, 1)[1].split(end, 1)[0]
        for block in re.findall(r"```(?:python|django)\n(.*?)```", section, re.S):
            for line in block.splitlines():
                code = _code(line)
                if code and code not in {"...", "...,"}:
                    lines.append(code)
    return lines


def _code(line: str) -> str:
    """A line without its indentation and trailing comment."""
    code = line.strip()
    if code.startswith(("#", "{#")):
        return ""
    return re.split(r"\s{2,}#\s", code, maxsplit=1)[0].rstrip()


def test_every_integration_snippet_is_used_by_a_test_site() -> None:
    """tests/sites holds each line of the README's integration snippets (its
    example site, reset flows and layouts), so every snippet runs in a test."""
    corpus_lines = set()
    corpus = ""
    for path in SITES.rglob("*"):
        if path.suffix in {".py", ".html"}:
            text = path.read_text()
            corpus += text
            corpus_lines.update(_code(line) for line in text.splitlines())
    snippets = _snippet_lines()
    assert len(snippets) > 20
    for code in snippets:
        imported = re.fullmatch(r"from ([\w.]+) import (.+)", code)
        if imported:  # ruff may merge imports from one module
            module, names = imported.groups()
            assert f"from {module} import" in corpus, code
            for name in names.split(","):
                assert re.search(rf"\b{re.escape(name.strip())}\b", corpus), code
            continue
        assert code in corpus_lines, f"no test site uses this README line: {code}"
