"""The capture process of a live run: reads the source and feeds the first stage.

Named in config.toml ``[pipeline] capture`` and started by the supervisor; live mode drops
frames here and nowhere further down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import cv2
import zmq

from stages.capture import SourceError, VideoSource, classify_source
from stream.graph import Graph
from stream.lifeline import Lifeline
from stream.processes import HEAVY_NICE, POLL_S, StopFlag, become_child
from transports.codec import pack
from transports.queues import PacketSender


def capture_main(
    source: str,
    graph: Graph,
    config: Mapping[str, Any],
    realtime: bool,
    lossless: bool,
    lifeline: Lifeline,
    progress: Any,
    origin_ns: int,
) -> None:
    """Read the source and feed the first stage; live drops here, never further down.

    ``progress`` (two shared integers) holds the index of the next frame to read and the
    frames dropped so far, so a capture restarted after a crash resumes a file there and
    keeps counting. Stream state changes
    (reconnecting, ok) go to the sink for ``pose.status``.
    """
    become_child("capture", lifeline)
    os.nice(HEAVY_NICE)
    if classify_source(source) == "url":  # a failed attempt to reconnect is no news
        os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"  # read at FFmpeg's first use
        cv2.setLogLevel(2)  # errors only
    flag = StopFlag()
    sender = PacketSender(graph.first_input, lossless=lossless)
    events = zmq.Context.instance().socket(zmq.PUSH)
    events.linger = 200
    events.connect(graph.events)
    options = config.get("capture", {})
    try:
        video = VideoSource(
            source,
            realtime=realtime,
            idle=sender.idle,
            reconnect_s=float(options["reconnect_s"]),
            read_timeout_s=float(options["read_timeout_s"]),
            start_frame=progress[0],
            origin_ns=origin_ns,
            on_state=lambda state: events.send(pack({"source": state})),
            truncation_tolerance=float(options["truncation_tolerance"]),
        )
    except SourceError as exc:
        sender.close()
        events.close()
        lifeline.fail(str(exc))
    dropped_before = progress[1]
    try:
        for packet in video:
            if flag.stop:
                break
            packet.meta["dropped"] = progress[1] = dropped_before + sender.dropped
            progress[0] = packet.frame_index + 1  # before sending: a restart never repeats it
            while not sender.send(packet, timeout_s=POLL_S) and lossless and not flag.stop:
                pass
    except SourceError as exc:
        sender.send_end(video.source_id, timeout_s=1.0)
        lifeline.fail(str(exc))
    finally:
        video.close()
        events.close()
    sender.send_end(video.source_id, timeout_s=2.0)
    sender.close()
