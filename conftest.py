"""Repository-level pytest setup: notebooks (collected by nbval) run in smoke mode, each test
session starting from empty smoke run directories."""

import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["MGM_SMOKE"] = "1"


def pytest_sessionstart(session):
    shutil.rmtree(Path(__file__).parent / "notebooks" / "runs" / "smoke", ignore_errors=True)
