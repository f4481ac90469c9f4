"""Rate limits and the audit trail on the real PostgreSQL and Redis, across processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .services import ROOT, in_django, require_services, scratch_database

pytestmark = pytest.mark.services

PROCESSES = 4
THREADS = 12
LIMIT = 5


def test_concurrent_processes_admit_exactly_the_limit(tmp_path: Path) -> None:
    require_services()
    start = tmp_path / "go"
    with scratch_database() as env:
        env = {
            **env,
            "BETATEL_IT_START": str(start),
            "BETATEL_IT_RATE_LIMIT_EMAIL": f"{LIMIT}/h",
        }
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.services_worker",
                    "target@example.com",
                    str(THREADS),
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        start.touch()
        totals = {"sent": 0, "limited": 0}
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            for key, value in json.loads(out).items():
                totals[key] += value

        assert totals == {"sent": LIMIT, "limited": PROCESSES * THREADS - LIMIT}
        rows = in_django(
            "from django.db.models import Count\n"
            "from betatel_reset.models import ResendAttempt as A\n"
            "print(json.dumps(dict(A.objects.values_list('outcome')"
            ".annotate(n=Count('id')).values_list('outcome', 'n'))))",
            env,
        )
        assert rows == {
            "sent": LIMIT,
            "rate_limited": PROCESSES * THREADS - LIMIT,
        }
