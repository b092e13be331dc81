"""The live process graph: which processes run and where each one listens.

``capture -> stage_1 -> ... -> stage_n -> sink``. Every stage and the sink bind their
input endpoint and connect to the next one's, so a restarted process simply binds again
and its neighbours reconnect on their own. ipc:// endpoints live in a private run folder
that the supervisor removes at exit, so no stale socket file is left behind.

A stage listed in ``[live.remote]`` (``name = "tcp://host:port"``) runs on another host,
started there with ``python -m stream.remote_stage NAME``: it listens on that endpoint and
connects to the next stage's tcp input, so ``transport = "tcp"`` and a ``tcp_host`` the
remote host can reach are required.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.config import ConfigError
from stream.pipeline import load_stage_class

IPC_PATH_MAX = 107  # bytes of a Unix socket path (sun_path, 108 with its NUL) on Linux


@dataclass(frozen=True)
class StageNode:
    """One stage process: its class spec and the endpoints it reads from and writes to."""

    name: str
    spec: str
    input: str
    output: str
    remote: bool = False  # started by hand on another host, not by the supervisor


@dataclass(frozen=True)
class Graph:
    """Endpoints of a whole live pipeline."""

    first_input: str  # where capture sends
    stages: tuple[StageNode, ...]
    sink_input: str
    events: str  # supervisor -> sink notifications (restarts, abort)
    publish: str
    control: str


def add_live_stages(config: dict[str, Any]) -> None:
    """Live only: with ``[opensim] enabled`` (``--ik``) the stage ``[pipeline] ik`` runs after
    the others (offline, the recorder solves the whole trial at its end instead). The main
    host and a remote stage's host call this alike, so both see the same graph."""
    pipeline = config["pipeline"]
    if config["opensim"]["enabled"] and pipeline["ik"] not in pipeline["stages"]:
        pipeline["stages"] = [*pipeline["stages"], pipeline["ik"]]


def check_live(config: Mapping[str, Any]) -> None:
    """What ``[pipeline]`` and ``[live]`` must hold that needs no stage module imported
    (raises ``ConfigError``): cheap enough to check before any process exists."""
    live = config["live"]
    if not list(config["pipeline"]["stages"]):
        raise ConfigError("config has no [pipeline] stages")
    transport = live["transport"]
    if transport not in ("ipc", "tcp"):
        raise ConfigError(f"[live] transport must be 'ipc' or 'tcp', got {transport!r}")
    if dict(live.get("remote", {})) and transport != "tcp":
        raise ConfigError('[live.remote] needs [live] transport = "tcp"')


def check_graph(config: Mapping[str, Any]) -> list[str]:
    """The stage names of ``[pipeline]``, once ``[live]`` is known to make a graph of them
    (raises ``ConfigError`` before anything is created)."""
    check_live(config)
    names = [load_stage_class(spec).name for spec in config["pipeline"]["stages"]]
    unknown = set(config["live"].get("remote", {})) - set(names)
    if unknown:
        raise ConfigError(f"[live.remote] names unknown stages {sorted(unknown)}; known: {names}")
    return names


def plan_graph(config: Mapping[str, Any], run_dir: Path, names: list[str] | None = None) -> Graph:
    """Endpoints for every process from ``[pipeline]`` and ``[live]`` (``names``: those
    ``check_graph`` gave, when it ran elsewhere)."""
    names = names if names is not None else check_graph(config)
    live = config["live"]
    specs = list(config["pipeline"]["stages"])
    transport = live["transport"]
    if transport == "ipc":  # short names: a socket path holds at most IPC_PATH_MAX bytes
        inputs = [f"ipc://{run_dir}/{i}.sock" for i in range(len(names))]
        inputs.append(f"ipc://{run_dir}/sink.sock")
        longest = max(len(os.fsencode(e.removeprefix("ipc://"))) for e in inputs)
        if longest > IPC_PATH_MAX:
            raise ConfigError(
                f"the temporary folder's path is too long for ipc sockets ({run_dir}): set "
                'TMPDIR to a shorter folder or use [live] transport = "tcp"'
            )
    elif transport == "tcp":
        host, base = live["tcp_host"], int(live["tcp_base_port"])
        inputs = [f"tcp://{host}:{base + i}" for i in range(len(names) + 1)]
    remote = dict(live.get("remote", {}))
    inputs = [remote.get(name, inputs[i]) for i, name in enumerate(names)] + inputs[-1:]
    nodes = tuple(
        StageNode(name, spec, inputs[i], inputs[i + 1], remote=name in remote)
        for i, (name, spec) in enumerate(zip(names, specs, strict=True))
    )
    return Graph(
        first_input=inputs[0],
        stages=nodes,
        sink_input=inputs[-1],
        events=f"ipc://{run_dir}/events.sock",
        publish=live["publish"],
        control=live["control"],
    )
