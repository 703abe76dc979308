import pytest

from tests.support.canvas import FIXTURES


def pytest_report_header(config: pytest.Config) -> str:
    return f"ragflow fixtures: {FIXTURES} ({'found' if FIXTURES.exists() else 'MISSING'})"
