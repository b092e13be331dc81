"""The lab-streaming process of a live run (``--lsl``, ``--osc``): a subscriber of the
public stream that feeds the LSL outlets (stages/lsl_outlets.py) and the OSC sender
(stages/osc_bundles.py).

Its own process, like the viewer: the pipeline publishes as before and never waits for it,
so a slow or stuck LSL or OSC consumer costs the pipeline nothing (at worst this process
falls behind and the PUB socket drops its oldest messages for it alone), and a crash in
liblsl's native code takes down only this process, which the supervisor restarts. Marker
and angle names come from the control socket, as for any other client.

Named in config.toml ``[pipeline] lab`` and started by the supervisor when ``[lsl]
enabled`` or ``[osc] target`` asks for it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Protocol

from stages.osc_bundles import OscSender, OscTargetError, parse_target
from stream.config import ConfigError
from stream.graph import Graph
from stream.lifeline import Lifeline
from stream.processes import POLL_S, StopFlag, become_child
from transports.client import ControlTimeout, PoseClient, connectable
from transports.keys import ServerKeys
from transports.queues import Subscriber

CONTROL_TIMEOUT_S = 10.0  # the sink answers at once; this is for a saturated machine
DRAIN_S = 0.2  # after SIGTERM: read until the stream has been silent this long


class Bridge(Protocol):
    topics: frozenset[str]  # the public topics it reads

    def push(self, topic: str, payload: Mapping[str, Any]) -> None: ...
    def close(self) -> None: ...


def wanted(config: Mapping[str, Any]) -> bool:
    """Whether the run needs this process at all."""
    return bool(config["lsl"]["enabled"] or config["osc"]["target"])


def check(config: Mapping[str, Any]) -> None:
    """Fail before the run (``ConfigError``) on what would stop this process later: an OSC
    target that is no ``HOST:PORT`` or whose host is unknown, or a public endpoint bound to
    a port chosen at run time (``*``), which this process could not connect to."""
    if config["osc"]["target"]:
        try:
            parse_target(config["osc"]["target"])
        except OscTargetError as exc:
            raise ConfigError(str(exc)) from None
    if config["lsl"]["enabled"]:
        try:
            import pylsl  # noqa: F401  (loads liblsl)
        except RuntimeError as exc:
            raise ConfigError(
                f"--lsl: pylsl cannot load liblsl ({str(exc).splitlines()[0]}); pylsl's Linux "
                "wheel bundles it for glibc 2.35 or newer, elsewhere install liblsl and set "
                "PYLSL_LIB to it"
            ) from None
    for key in ("publish", "control"):
        if config["live"][key].endswith(":*"):
            raise ConfigError(
                f"--lsl/--osc read the public stream: give --{key} a fixed port, not "
                f"{config['live'][key]!r}"
            )


def open_bridges(config: Mapping[str, Any], names: Mapping[str, Any]) -> list[Bridge]:
    """The LSL outlets and the OSC sender the configuration asks for."""
    bridges: list[Bridge] = []
    if config["lsl"]["enabled"]:
        from stages.lsl_outlets import LslOutlets  # liblsl is loaded only for --lsl

        bridges.append(LslOutlets(names))
    if config["osc"]["target"]:
        bridges.append(OscSender(config["osc"]["target"], names, config["osc"]["max_rate"]))
    return bridges


def lab_main(graph: Graph, config: Mapping[str, Any], ready: Any, lifeline: Lifeline) -> None:
    """Subscribe to the public stream and pass every frame to LSL and OSC until SIGTERM."""
    become_child("lab", lifeline)
    flag = StopFlag()
    keys_dir = config["live"].get("curve_keys")  # with CURVE: the server's own keys, as the viewer
    keys = ServerKeys.load(keys_dir).as_client() if keys_dir else None
    publish = connectable(graph.publish)
    client = PoseClient(publish, connectable(graph.control), keys)
    try:
        names = client.request("schema", timeout_s=CONTROL_TIMEOUT_S)["schema"]
        bridges = open_bridges(config, names)
    except (ControlTimeout, OscTargetError) as exc:
        lifeline.fail(f"lab streaming: {exc}")
    topics = sorted(frozenset().union(*(bridge.topics for bridge in bridges)))
    security = keys.options() if keys is not None else None
    try:
        with Subscriber(publish, topics, security=security) as subscriber:
            ready.set()
            while True:
                message = subscriber.recv(timeout_s=DRAIN_S if flag.stop else POLL_S)
                if message is None:
                    if flag.stop:
                        break
                    continue
                for bridge in bridges:
                    bridge.push(*message)
    finally:
        for bridge in bridges:
            bridge.close()
    sys.exit(0)
