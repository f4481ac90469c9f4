"""The load test's short form (``python -m bench.load --short``) keeps its invariants.

Timings are reported by the benchmark, never asserted here.
"""

from __future__ import annotations

import pytest

from bench.load import LoadConfig, run_load

from .support.real_services import require_services

pytestmark = pytest.mark.services


def test_concurrent_posts_under_gunicorn_keep_the_invariants() -> None:
    require_services()
    config = LoadConfig.short()
    report = run_load(config)

    assert report.errors == []
    assert report.server_errors == 0
    assert set(report.statuses) <= {302, 429}
    expected = {config.address(i): config.limit for i in range(config.addresses)}
    assert report.admitted_per_address == expected
    assert report.received_per_address == expected
    assert {email: o.get("sent", 0) for email, o in report.audit.items()} == expected
    assert report.audit_rows == config.posts
    assert sum(report.statuses.values()) == config.posts
    assert report.problems() == []
