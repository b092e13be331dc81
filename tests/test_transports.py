"""Transport layer: codec round trips, zero copy, malformed input, and real socket links."""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq

from core.packet import Packet
from transports.codec import (
    CodecError,
    EndOfStream,
    decode,
    decode_message,
    encode,
    encode_end,
    encode_message,
    pack,
)
from transports.queues import (
    IPC_FOLDER_PREFIX,
    PacketReceiver,
    PacketSender,
    Publisher,
    Subscriber,
)

SPAWN = mp.get_context("spawn")


def ipc_endpoint(name: str = "link") -> str:
    """A fresh ``ipc://`` endpoint in its own folder; the binding side removes both."""
    return f"ipc://{tempfile.mkdtemp(prefix=IPC_FOLDER_PREFIX)}/{name}.sock"


def make_packet(index: int = 7, image: np.ndarray | None = None) -> Packet:
    """A packet with the kinds of arrays stages add (several dtypes, 0-d, empty, a view)."""
    rng = np.random.default_rng(index)
    world = rng.normal(size=(33, 3))
    return Packet(
        source_id="cam01",
        frame_index=index,
        timestamp_ns=time.monotonic_ns(),
        media_time_s=index / 60,
        image_size=(1920, 1080),
        image=image,
        data={
            "landmarks_2d": rng.random((33, 2), dtype=np.float32),
            "world_3d": world,
            "visible": rng.random(33) > 0.5,
            "ids": np.arange(33, dtype=np.int16),
            "counts": np.array([1, 2**32 - 1], dtype=np.uint32),
            "height": np.array(1.7),
            "empty": np.zeros((0, 3), dtype=np.float32),
            "x_only": world[:, 0],  # non-contiguous view
        },
        meta={"person": True, "score": np.float32(0.5), "model": {"name": "full", "ver": [0, 10]}},
        timings=[("capture", 1, 2), ("detect", 3, 40)],
    )


def assert_same(a: Packet, b: Packet) -> None:
    fields = ("source_id", "frame_index", "timestamp_ns", "media_time_s", "image_size", "timings")
    assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
    assert a.meta == b.meta and type(a.meta["score"]) is float  # numpy scalars become plain
    assert (a.image is None) == (b.image is None)
    if a.image is not None:
        assert a.image.dtype == b.image.dtype and np.array_equal(a.image, b.image)
    assert list(a.data) == list(b.data)
    for name, array in a.data.items():
        assert array.dtype == b.data[name].dtype and array.shape == b.data[name].shape, name
        assert np.array_equal(array, b.data[name]), name


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "endpoint", [ipc_endpoint, lambda: "tcp://127.0.0.1:*"], ids=["ipc", "tcp"]
)
def test_packet_round_trip_over_a_link(image: np.ndarray, endpoint: Callable[[], str]) -> None:
    sent, acked = make_packet(image=image), []

    def upstream() -> None:  # a sender needs a running receiver: give it its own thread
        with PacketSender(receiver.endpoint) as sender:
            acked.append(sender.send(sent, timeout_s=5) and sender.send_end("cam01", timeout_s=5))

    with PacketReceiver(endpoint()) as receiver:
        thread = threading.Thread(target=upstream)
        thread.start()
        received = receiver.recv(timeout_s=5)
        assert receiver.recv(timeout_s=5) == EndOfStream("cam01")
        thread.join()
    assert acked == [True]
    assert isinstance(received, Packet)
    assert_same(received, sent)
    assert received.image.shape == (1080, 1920, 3)


def test_decoded_arrays_are_read_only_views_of_the_frames(image: np.ndarray) -> None:
    context = zmq.Context.instance()
    with context.socket(zmq.PAIR) as a, context.socket(zmq.PAIR) as b:
        a.bind("tcp://127.0.0.1:*")
        b.connect(a.getsockopt_string(zmq.LAST_ENDPOINT))
        a.send_multipart(encode(make_packet(image=image)), copy=False)
        frames = b.recv_multipart(copy=False)
    packet = decode(frames)
    assert np.shares_memory(packet.image, np.frombuffer(frames[1].buffer, np.uint8))
    world = packet.data["world_3d"]
    assert any(np.shares_memory(world, np.frombuffer(f.buffer, np.uint8)) for f in frames[2:])
    assert not packet.image.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        world[0, 0] = 1.0


@pytest.mark.parametrize(
    "array",
    [np.array([None, 1], dtype=object), np.zeros(2, dtype=[("a", "f4")]), np.zeros(2, "U3")],
    ids=["object", "structured", "unicode"],
)
def test_unsafe_dtypes_are_refused(array: np.ndarray) -> None:
    with pytest.raises(CodecError, match=r"data\['bad'\]: dtype .* cannot travel"):
        encode(Packet("s", 0, 0, 0.0, (1, 1), data={"bad": array}))
    with pytest.raises(CodecError, match="cannot travel"):
        pack({"bad": array})


def _with_header(frames: list, **changes: object) -> list:
    header = msgpack.unpackb(frames[0])
    header.update(changes)
    return [msgpack.packb(header), *frames[1:]]


def _malformed_inputs() -> dict[str, list]:
    frames = encode(make_packet())
    descs = msgpack.unpackb(frames[0])["data"]
    return {
        "no frames": [],
        "garbage header": [b"\xc1\xff garbage", *frames[1:]],
        "header not a map": [msgpack.packb([1, 2]), *frames[1:]],
        "wrong version": _with_header(frames, v=99),
        "unknown kind": _with_header(frames, kind="pickle"),
        "missing frame": frames[:-1],
        "extra frame": [*frames, b"\x00"],
        "truncated buffer": [frames[0], frames[1].tobytes()[:-3], *frames[2:]],
        "object dtype in header": _with_header(frames, data={**descs, "ids": ["|O", [33]]}),
        "unknown dtype": _with_header(frames, data={**descs, "ids": ["<q9", [33]]}),
        "negative shape": _with_header(frames, data={**descs, "ids": ["<i2", [-33]]}),
        "bad timings": _with_header(frames, timings=[["detect", 1]]),
        "bad image size": _with_header(frames, image_size=[1920]),
        "end with extra frame": [*encode_end("s"), b"x"],
    }


@pytest.mark.parametrize("case", list(_malformed_inputs()))
def test_malformed_frames_raise_codec_error(case: str) -> None:
    with pytest.raises(CodecError) as error:
        decode(_malformed_inputs()[case])
    assert "\n" not in str(error.value)


def test_message_round_trip_with_arrays() -> None:
    markers = np.arange(66, dtype=np.float32).reshape(22, 3)
    topic, payload = decode_message(
        encode_message("pose.markers", {"frame": 3, "markers": markers, "names": ["RASI"]})
    )
    assert topic == "pose.markers" and payload["frame"] == 3 and payload["names"] == ["RASI"]
    assert payload["markers"].dtype == np.float32 and np.array_equal(payload["markers"], markers)
    with pytest.raises(CodecError):
        decode_message([b"pose.markers"])


def _send_packets(
    endpoint: str, count: int, lossless: bool, period_s: float, sent: Any, out: mp.Queue
) -> None:
    """Child process: send ``count`` packets (every ``period_s``), then the end marker.

    ``sent`` (shared int) shows the parent how far the sender got at any moment.
    """
    image = np.zeros((480, 640, 3), np.uint8)
    with PacketSender(endpoint, lossless=lossless) as sender:
        for index in range(count):
            packet = make_packet(index, image)
            packet.timestamp_ns = time.monotonic_ns()
            sender.send(packet, timeout_s=20)
            sent.value = sender.sent
            time.sleep(period_s)
        acked = sender.send_end("cam01", timeout_s=20)
        out.put({"acked": acked, "sent": sender.sent, "dropped": sender.dropped})


def _consume(receiver: PacketReceiver, work_s: float, sent: Any) -> tuple[list[int], list[float]]:
    """Receive until the end marker, working ``work_s`` per packet; indices and ages (ms)."""
    indices, ages = [], []
    while not isinstance(item := receiver.recv(timeout_s=20), EndOfStream):
        assert item is not None, "timed out"
        # holding its n-th packet, the receiver has granted capacity + n - 1 credits
        assert sent.value <= receiver.capacity + len(indices), "the queue is not bounded"
        ages.append((time.monotonic_ns() - item.timestamp_ns) / 1e6)
        indices.append(item.frame_index)
        time.sleep(work_s)
    return indices, ages


def _run_link(
    count: int, lossless: bool, period_s: float, capacity: int, work_s: float
) -> tuple[list[int], list[float], dict[str, Any]]:
    """A sender in a spawned process, this process receiving; what arrived and the stats."""
    out, sent = SPAWN.Queue(), SPAWN.Value("i", 0)
    with PacketReceiver(ipc_endpoint(), capacity=capacity) as receiver:
        args = (receiver.endpoint, count, lossless, period_s, sent, out)
        child = SPAWN.Process(target=_send_packets, args=args)
        child.start()
        indices, ages = _consume(receiver, work_s, sent)
        stats = out.get(timeout=20)
        child.join(timeout=20)
    assert child.exitcode == 0
    return indices, ages, stats


@pytest.mark.parametrize("capacity", [2, 8])  # 8: credits come back in batches of 4
def test_lossless_link_delivers_everything_in_order_across_processes(capacity: int) -> None:
    indices, _, stats = _run_link(
        count=40, lossless=True, period_s=0, capacity=capacity, work_s=0.01
    )
    assert indices == list(range(40))
    assert stats == {"acked": True, "sent": 40, "dropped": 0}


def test_dropping_link_keeps_the_newest_frames() -> None:
    # capture at 200 fps into a stage that needs 40 ms per frame
    indices, ages, stats = _run_link(
        count=60, lossless=False, period_s=0.005, capacity=1, work_s=0.04
    )
    assert stats["acked"] and stats["dropped"] > 0
    assert stats["sent"] + stats["dropped"] == 60 and len(indices) == stats["sent"]
    assert all(a < b for a, b in zip(indices, indices[1:], strict=False))
    assert indices[-1] == 59  # the newest frame arrives
    # frames are fresh: a queued frame would have waited a whole 40 ms work period
    assert np.median(ages) < 40, ages


def test_timeouts_let_a_stage_notice_shutdown(tmp_path: Path) -> None:
    with PacketReceiver(ipc_endpoint()) as receiver:
        start = time.monotonic()
        assert receiver.recv(timeout_s=0.1) is None
        assert time.monotonic() - start < 1
    with PacketSender(f"ipc://{tmp_path}/nobody.sock") as sender:  # no credit ever comes
        assert sender.send(make_packet(), timeout_s=0.1) is False


def _send_and_end(endpoint: str, count: int, results: list[bool], source_id: str = "cam01") -> None:
    with PacketSender(endpoint) as sender:
        packets = [make_packet(index) for index in range(count)]
        for packet in packets:
            packet.source_id = source_id
        sent = all(sender.send(packet, timeout_s=5) for packet in packets)
        results.append(sent and sender.send_end(source_id, timeout_s=5))


def test_several_upstreams_feed_one_receiver() -> None:
    results: list[bool] = []
    with PacketReceiver(ipc_endpoint(), capacity=1) as receiver:
        threads = [
            threading.Thread(target=_send_and_end, args=(receiver.endpoint, 10, results, name))
            for name in ("cam01", "cam02")
        ]
        for thread in threads:
            thread.start()
        items = [receiver.recv(timeout_s=5) for _ in range(22)]
        for thread in threads:
            thread.join()
    assert results == [True, True]
    for name in ("cam01", "cam02"):
        assert [i.frame_index for i in items if isinstance(i, Packet) and i.source_id == name] == (
            list(range(10))
        )
        assert EndOfStream(name) in items


def test_a_restarted_upstream_gets_a_fresh_window(tmp_path: Path) -> None:
    endpoint, results = f"ipc://{tmp_path}/link.sock", []
    with PacketReceiver(endpoint, capacity=2) as receiver:
        for _ in range(3):  # the upstream stage ends (or dies) and a new one connects
            thread = threading.Thread(target=_send_and_end, args=(endpoint, 5, results))
            thread.start()
            items = [receiver.recv(timeout_s=5) for _ in range(6)]
            thread.join()
            assert [i.frame_index for i in items[:5]] == list(range(5))
            assert items[5] == EndOfStream("cam01")
    assert results == [True] * 3


def test_a_restarted_downstream_gets_packets_again(tmp_path: Path) -> None:
    endpoint, stop = f"ipc://{tmp_path}/link.sock", threading.Event()

    def upstream() -> None:  # keeps sending while its downstream stage restarts
        with PacketSender(endpoint) as sender:
            while not stop.is_set():
                sender.send(make_packet(sender.sent), timeout_s=0.05)

    thread = threading.Thread(target=upstream)
    thread.start()
    try:
        for _ in range(3):  # the same endpoint is bound again by the restarted stage
            with PacketReceiver(endpoint) as receiver:
                assert all(isinstance(receiver.recv(timeout_s=5), Packet) for _ in range(3))
    finally:
        stop.set()
        thread.join()


def test_pub_sub_two_subscribers_in_order() -> None:
    with Publisher(hwm=1000) as publisher:  # the default hwm=100 would drop in this burst
        assert publisher.endpoint.startswith("tcp://127.0.0.1:")
        subscribers = [Subscriber(publisher.endpoint, ["pose."]) for _ in range(2)]
        for subscriber in subscribers:  # wait until the subscription reached the publisher
            for _ in range(100):
                publisher.send("pose.sync", {})
                if subscriber.recv(timeout_s=0.05) is not None:
                    break
            else:
                pytest.fail("the subscription never reached the publisher")
        for index in range(200):
            publisher.send("other.topic", {"i": -1})
            publisher.send("pose.angles", {"i": index, "angles": np.full(3, index, np.float32)})
        for subscriber in subscribers:
            received = []
            while (message := subscriber.recv(timeout_s=2)) is not None:
                topic, payload = message
                if topic == "pose.angles":
                    received.append(payload["i"])
                    assert payload["angles"][0] == payload["i"]
                else:
                    assert topic == "pose.sync"
                if received and received[-1] == 199:
                    break
            assert received == list(range(200))
            subscriber.close()


def test_ipc_socket_files_are_removed_on_close() -> None:
    for make in (PacketReceiver, Publisher):
        endpoint = ipc_endpoint()
        path = Path(endpoint.removeprefix("ipc://"))
        link = make(endpoint)
        assert path.exists()
        link.close()
        assert not path.exists() and not path.parent.exists()
