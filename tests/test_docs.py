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
