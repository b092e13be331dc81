"""The live graph's endpoints: ipc socket paths that fit, one clear error when they cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.config import ConfigError, load_config
from stream.graph import IPC_PATH_MAX, plan_graph


def test_ipc_endpoints_are_short_and_in_the_run_folder(tmp_path: Path) -> None:
    graph = plan_graph(load_config(), tmp_path)
    endpoints = [graph.first_input, graph.sink_input] + [n.input for n in graph.stages]
    assert len(graph.stages) >= 5
    for endpoint in endpoints:
        path = Path(endpoint.removeprefix("ipc://"))
        assert path.parent == tmp_path
        assert len(path.name) <= len("sink.sock")  # stage names never lengthen the path


def test_a_run_folder_too_deep_for_ipc_sockets_is_one_config_error() -> None:
    deep = Path("/tmp") / ("d" * (IPC_PATH_MAX - 10))
    with pytest.raises(ConfigError, match="too long for ipc sockets.*TMPDIR"):
        plan_graph(load_config(), deep)
