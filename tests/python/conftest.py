import pytest

import remotemedia as rm

RUNTIMES = ["native", "python"] if rm.native_available() else ["python"]


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    return request.param


def pytest_report_header(config):
    return f"remotemedia native library: {'loaded' if rm.native_available() else 'NOT loaded'}"
