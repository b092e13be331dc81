"""Where the tests' own inputs live: the clone, and its motion-capture fixture.

The suite carries its own small CMU fixture (``tests/data/mocap``, made by
``tests/make_mocap_fixture.py``); the full set (``../shared/data/mocap``) is read only by the
few tests marked ``full_mocap``, which run with ``pytest --full-mocap``.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MOCAP_FIXTURE_DIR = REPO / "tests" / "data" / "mocap"
