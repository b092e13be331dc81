"""Run one stage of the live graph on this host, for a pipeline supervised elsewhere.

On the remote host, with the same ``config.toml`` as the main host (where ``[live.remote]``
names this stage and its listening endpoint, and ``[live] transport = "tcp"``)::

    uv run python -m stream.remote_stage detect --config config.toml

It listens where ``[live.remote]`` says and sends to the next stage's tcp input. It runs
until the source ends or Ctrl-C; restarting it is up to the remote host (e.g. systemd).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from stream.config import ConfigError, load_config
from stream.graph import add_live_stages, plan_graph
from stream.native_stderr import filter_native_chatter
from stream.processes import stage_main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", help="stage name, e.g. detect")
    parser.add_argument("--config", type=Path, help="configuration file (default config.toml)")
    parser.add_argument("--lossless", action="store_true", help="as run_live.py --lossless")
    parser.add_argument("--verbose", action="store_true", help="as run_live.py --verbose")
    args = parser.parse_args(argv)
    if not args.verbose:
        filter_native_chatter()
    try:
        config = load_config(args.config)
        add_live_stages(config)  # [opensim] enabled: the ik stage, as run_live --ik
        graph = plan_graph(config, Path("."))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    nodes = [n for n in graph.stages if n.name == args.stage]
    if not nodes or not nodes[0].remote:
        print(f"error: stage {args.stage!r} is not listed in [live.remote]", file=sys.stderr)
        return 2
    first = graph.stages[0] is nodes[0]
    stage_main(nodes[0], config, args.lossless, first, threading.Event())
    return 0


if __name__ == "__main__":
    sys.exit(main())
