"""Print what the engine publishes: run it beside ``run_live.py``.

uv run python -m examples.subscriber [--publish ENDPOINT --control ENDPOINT]

Without flags it connects where ``config.toml`` says the engine publishes ([live]).

For an engine run with ``--curve-keys`` add ``--server-key DIR/server.key`` and
``--client-key NAME.key_secret`` (see ``transports/keys.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stream.config import load_config
from transports.client import ControlTimeout, PoseClient
from transports.keys import ClientKeys, KeysError
from transports.schema import ANGLES, IK, MARKERS, STATUS


def main() -> None:
    live = load_config()["live"]
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--publish", default=live["publish"], help="the engine's stream")
    parser.add_argument("--control", default=live["control"], help="its control socket")
    parser.add_argument("--count", type=int, default=0, help="stop after N messages (0: never)")
    parser.add_argument("--server-key", type=Path, help="the engine's server.key (CURVE)")
    parser.add_argument("--client-key", type=Path, help="this client's NAME.key_secret (CURVE)")
    args = parser.parse_args()
    if (args.server_key is None) != (args.client_key is None):
        raise SystemExit("error: CURVE needs both --server-key and --client-key")
    try:
        keys = ClientKeys.load(args.server_key, args.client_key) if args.server_key else None
    except KeysError as exc:
        raise SystemExit(f"error: {exc}") from None
    client = PoseClient(args.publish, args.control, keys)
    try:
        names = client.request("schema")["schema"]
        markers, angles = names["markers"], names["angles"]
        coordinates = names.get("ik_coordinates", [])  # run_live --ik: pose.ik
    except ControlTimeout as exc:
        hint = " and is this client's public key in its clients/ folder" if keys else ""
        raise SystemExit(f"error: {exc}: is run_live.py running{hint}?") from None
    print(f"{len(markers)} markers, {len(angles)} angles; waiting for frames (Ctrl-C to stop)")
    hip = markers.index("Hip")
    topics = (MARKERS, ANGLES, IK, STATUS)  # not the viewer's pose.preview
    for n, (topic, msg) in enumerate(client.messages(topics), start=1):
        if topic == MARKERS:
            position = np.round(msg["markers"][hip], 3)
            print(f"frame {msg['frame_index']:6d}  person={msg['person']!s:5}  Hip={position}")
        elif topic == ANGLES:
            knee = msg["angles"][angles.index("knee_r_flex_deg")]
            print(f"frame {msg['frame_index']:6d}  right knee flexion {knee:6.1f} deg")
        elif topic == IK:
            knee = msg["values"][coordinates.index("knee_angle_r")]
            print(
                f"frame {msg['frame_index']:6d}  OpenSim knee_angle_r {knee:6.1f} deg, "
                f"marker RMS {100 * msg['rms_m']:.1f} cm"
            )
        else:
            print(f"{topic}: {msg}")
        if args.count and n >= args.count:
            break


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
