"""The `sandbox` fixture: a client of the real bubblewrap sandbox for a few lines of code."""
import pytest

from runner.sandbox.backends import LaunchSpec, LocalBackend
from runner.sandbox.pool import checkout

LIMITS = {"time_s": 8, "total_s": 60, "cpu_s": 30, "memory_mb": 1024, "processes": 32, "file_size_mb": 16,
          "tmp_mb": 64, "open_files": 256, "check_s": 30}


@pytest.fixture
def sandbox():
    """sandbox(code, cuda=False, **limits) -> a client whose submission is `code`, defining `probe(*args)`."""
    clients = []

    def make(code: str, cuda: bool = False, **limits):
        spec = LaunchSpec(None, {**LIMITS, **limits}, cuda=cuda)
        client = checkout(None, LocalBackend(), spec, [{"name": "probe"}], {}, code)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.dispose()
