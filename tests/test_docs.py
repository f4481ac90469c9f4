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
    ids = set(re.findall(r'id="(betatel_reset\.[EW]\d{3})"', source))
    assert ids
    for check_id in ids:
        assert f"`{check_id}`" in README, check_id
