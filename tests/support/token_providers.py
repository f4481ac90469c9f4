"""Token providers referenced by dotted path in tests."""

from typing import Any


def static_provider(request: Any) -> str:
    return "from-dotted-provider"
