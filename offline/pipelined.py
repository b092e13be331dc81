"""Pipelined offline mode: decoding and detection in a process of their own, the stages
after detection in the caller's, so both cores work at once.

Detection (MediaPipe) costs most of a frame; the stages after it (lift, markers, augment,
angles) and the recorder cost the rest. Run one after the other, their times add up; here
the detection process works on frame n+1 while the caller finishes frame n, so a video
costs about what MediaPipe alone costs. The two are joined by the live mode's lossless
link (``transports.queues``: credits, nothing dropped, order kept) and the same stage
objects run on the same packets, so the files are byte-identical to the sequential run.

The detection process is started once (``spawn``: a fresh interpreter, safe inside any
host process, e.g. a Ray worker with threads) and serves one video after another; jobs and
errors travel on a ``multiprocessing`` pipe, packets on the ZeroMQ link. It ends when its
parent does (the pipe closes), and the parent kills it when a video is abandoned
mid-stream (an error after detection, Ctrl-C), so none outlives the run.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from core.packet import Packet
from stages.capture import VideoSource
from stream.native_stderr import filter_child_chatter
from stream.pipeline import StageError, build_stages, run_inline
from transports.codec import EndOfStream
from transports.queues import PacketReceiver, PacketSender

READ_AHEAD = 4  # frames decoded ahead of detection
QUEUE = 8  # detected packets in flight: evens out frames that take longer on either side
POLL_S = 0.2  # how often a waiting side checks that the other is still there
LOOPBACK = "tcp://127.0.0.1:*"  # any free port; ipc:// does not exist on Windows


class DetectionProcess:
    """The first stage of ``[pipeline] stages`` in a child process; see the module doc."""

    def __init__(self, config: Mapping[str, Any], quiet: bool = True) -> None:
        """Start the child now: its imports and model loading overlap the caller's.
        ``quiet``: the child drops MediaPipe's native log lines (not with --verbose)."""
        self.config = config
        self.quiet = quiet
        self._process: Any = None
        self._conn: Connection | None = None
        self._receiver: PacketReceiver | None = None
        self._ready = False  # the child's stage is set up
        self._idle = True  # the child waits for a video (no packets of an earlier one left)
        self._start()

    def _start(self) -> None:
        """Bind the link and start the child (its "ready" is read with the first video)."""
        context = multiprocessing.get_context("spawn")
        self._receiver = PacketReceiver(LOOPBACK, capacity=QUEUE)
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_detect_main,
            args=(dict(self.config), self._receiver.endpoint, child, os.getpid(), self.quiet),
            name="mm-detect",
            daemon=True,
        )
        self._process.start()
        child.close()
        self._ready = False

    def _answer(self) -> tuple[Any, ...]:
        """The child's next message; its error re-raised here."""
        assert self._conn is not None
        try:
            message = self._conn.recv()
        except EOFError:
            raise self._died() from None
        if message[0] == "error":
            self._idle = True  # it failed and reset its stage: ready for the next video
            raise message[1]
        return message

    def _died(self) -> StageError:
        self._process.join(timeout=5)
        return StageError(
            f"the detection process ended unexpectedly (exit status {self._process.exitcode}); "
            "run again with --sequential --verbose to see why"
        )

    def frames(self, video: Path, tolerance: float) -> Iterator[Any]:
        """Open ``video`` in the child; yield the source's (id, announced frame count), then
        every detected packet in order. Abandoned before its end, the child is stopped."""
        if self._process is None:
            self._start()
        assert self._conn is not None and self._receiver is not None
        if not self._ready:
            try:
                self._answer()  # "ready", or the setup's error (the child has ended)
            except BaseException:
                self.close()
                raise
            self._ready = True
        self._conn.send((str(video), tolerance))
        self._idle = done = False
        try:
            _, source_id, frame_count = self._answer()
            yield source_id, frame_count
            while True:
                item = self._receiver.recv(timeout_s=POLL_S)
                if isinstance(item, EndOfStream):
                    break
                if item is not None:
                    yield item
                elif self._conn.poll():  # an error, or "done" overtaking the end marker
                    done = self._answer()[0] == "done"
                elif not self._process.is_alive():
                    raise self._died()
            if not done:
                self._answer()  # "done": the child has reset its stage for the next video
            self._idle = True
        finally:
            if not self._idle:
                self.close()  # abandoned mid-stream: a fresh child for the next video

    def close(self) -> None:
        """Stop the child and close the link. Killed: it holds nothing worth saving, and an
        orderly exit would spend half a second tearing down MediaPipe."""
        if self._process is not None:
            self._process.kill()
            self._process.join()
            self._process = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._receiver is not None:
            self._receiver.close()
            self._receiver = None

    def __enter__(self) -> DetectionProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _detect_main(
    config: dict[str, Any], endpoint: str, conn: Connection, parent: int, quiet: bool
) -> None:
    """The child: for each video path received, decode, detect and send every packet."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if quiet:
        filter_child_chatter()
    try:
        (stage,) = build_stages(config, stop=1)
    except Exception as exc:
        _send_error(conn, exc)
        return
    conn.send(("ready",))
    sender = PacketSender(endpoint, lossless=True)
    try:
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return  # the parent is gone
            _one_video(stage, sender, conn, parent, *job)
    finally:
        sender.close()
        stage.close()


def _one_video(
    stage: Any, sender: PacketSender, conn: Connection, parent: int, video: str, tolerance: float
) -> None:
    source_id = None
    try:
        source = VideoSource(video, realtime=False, truncation_tolerance=tolerance)
        source_id = source.source_id
        conn.send(("source", source_id, source.frame_count))
        reader = ReadAhead(source, stage.prepare)
        try:
            for packet in reader:
                packet = run_inline([stage], packet)
                if packet is None:
                    continue
                while not sender.send(packet, timeout_s=POLL_S):
                    if os.getppid() != parent:
                        os._exit(1)  # orphaned: nobody reads
        finally:
            reader.close()
            source.close()
        sender.send_end(source_id, timeout_s=0)  # no wait for its receipt: "done" follows
        conn.send(("done",))
    except Exception as exc:
        _send_error(conn, exc)
    finally:
        stage.reset(source_id)


class ReadAhead:
    """The source's packets, decoded by a thread a few frames ahead of the caller, so that
    decoding overlaps detection (OpenCV and MediaPipe release the GIL). Without it this
    process would cost decoding + detection per frame, more than MediaPipe alone on the
    same decoded frames, and it sets the whole pipeline's pace. The thread also runs the
    detect stage's ``prepare`` (the colour conversion). An error of the source (a
    truncated file) comes out in its place, after the frames before it."""

    _END = object()

    def __init__(
        self,
        source: VideoSource,
        prepare: Callable[[Packet], None],
        depth: int = READ_AHEAD,
    ) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(source, prepare), daemon=True)
        self._thread.start()

    def _read(self, source: VideoSource, prepare: Callable[[Packet], None]) -> None:
        try:
            for packet in source:
                prepare(packet)
                if not self._put(packet):
                    return
            self._put(self._END)
        except Exception as exc:
            self._put(exc)

    def _put(self, item: Any) -> bool:
        """Queue ``item`` unless told to stop first."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                pass
        return False

    def __iter__(self) -> Iterator[Any]:
        while (item := self._queue.get()) is not self._END:
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        """Stop and join the thread (before the source is closed under it)."""
        self._stop.set()
        self._thread.join()


def _send_error(conn: Connection, exc: Exception) -> None:
    """The exception itself, so the parent raises what the sequential run would; its text
    in a ``StageError`` if it cannot be pickled."""
    try:
        conn.send(("error", exc))
    except Exception:
        conn.send(("error", StageError(f"{type(exc).__name__}: {exc}")))
