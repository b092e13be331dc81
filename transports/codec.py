"""Packets and messages as ZeroMQ frames: msgpack headers, numpy buffers, never pickle.

A packet travels as ``[header, buffer_0, buffer_1, ...]``. The header is a msgpack map
with the packet's fields; every array (the image first, then ``data`` in order) is
described there as ``[dtype, shape]`` and its raw bytes follow as a frame of their own, so
a 6 MB image is handed to ZeroMQ with ``send_multipart(frames, copy=False)`` and never
copied by Python.

Decoded arrays are views over the received frames (``np.frombuffer``, no copy) and are
read-only: with ``inproc://`` the frame can be the sender's own array, so writing into it
would change data another stage still holds. A stage that needs to modify an array works
on a copy (``arr.copy()``) or puts a new array into ``packet.data``. On the sending side,
the same sharing applies the other way: an array must not be mutated after it was sent.

Only plain dtypes travel (bool, signed and unsigned ints, floats); object and structured
dtypes are refused because they cannot be described without pickle. Malformed input
(wrong frame count, truncated buffer, bad header) raises :class:`CodecError`.

``encode_message``/``decode_message`` carry the public stream's ``[topic, payload]``:
the payload is plain msgpack, with numpy arrays as maps
``{"__ndarray__": True, "dtype": "<f4", "shape": [22, 3], "data": <bytes>}`` so any
msgpack client (Unity, MATLAB, LabVIEW) can read it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import zmq

from core.packet import Packet

VERSION = 1
_SAFE_KINDS = "biuf"  # bool, signed int, unsigned int, float
_NDARRAY_KEY = "__ndarray__"

FrameLike = zmq.Frame | bytes | bytearray | memoryview | np.ndarray


class CodecError(ValueError):
    """Input that cannot be encoded or decoded; the message says which part is wrong."""


@dataclass(frozen=True)
class EndOfStream:
    """Marker sent after the last packet of a source, so receivers know it ended."""

    source_id: str


def _check_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.kind not in _SAFE_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise CodecError(f"{where}: dtype {dtype} cannot travel (only bool, int, uint, float)")


def _contiguous(array: Any, where: str) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise CodecError(f"{where}: expected a numpy array, got {type(array).__name__}")
    _check_dtype(array.dtype, where)
    return array if array.flags.c_contiguous else array.copy(order="C")


def _plain(obj: Any) -> Any:
    """msgpack fallback for numpy scalars in ``meta`` (e.g. a ``np.float32`` score)."""
    if isinstance(obj, np.generic) and obj.dtype.kind in _SAFE_KINDS:
        return obj.item()
    hint = " (arrays belong in Packet.data)" if isinstance(obj, np.ndarray) else ""
    raise TypeError(f"cannot serialize {type(obj).__name__}{hint}")


def _pack(obj: Any, where: str, default: Any = _plain) -> bytes:
    try:
        return msgpack.packb(obj, default=default, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"{where} is not msgpack-able: {exc}") from None


def _unpack(buffer: Any, where: str, object_hook: Any = None) -> Any:
    try:
        return msgpack.unpackb(buffer, raw=False, strict_map_key=False, object_hook=object_hook)
    except CodecError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types for bad bytes
        raise CodecError(f"{where}: not valid msgpack ({type(exc).__name__})") from None


def encode(packet: Packet) -> list[bytes | np.ndarray]:
    """Frames for ``packet``: a msgpack header, then one raw buffer per array.

    Send them with ``socket.send_multipart(frames, copy=False)`` to avoid copying arrays.
    """
    arrays: list[np.ndarray] = []

    def describe(array: Any, where: str) -> list[Any]:
        contiguous = _contiguous(array, where)
        arrays.append(contiguous)
        return [contiguous.dtype.str, list(contiguous.shape)]

    image = None if packet.image is None else describe(packet.image, "image")
    data = {}
    for name, array in packet.data.items():
        if not isinstance(name, str):
            raise CodecError(f"data key {name!r} is not a string")
        data[name] = describe(array, f"data[{name!r}]")
    header = {
        "v": VERSION,
        "kind": "packet",
        "source_id": packet.source_id,
        "frame_index": int(packet.frame_index),
        "timestamp_ns": int(packet.timestamp_ns),
        "media_time_s": float(packet.media_time_s),
        "image_size": [int(v) for v in packet.image_size],
        "image": image,
        "data": data,
        "meta": packet.meta,
        "timings": [[str(name), int(enter), int(leave)] for name, enter, leave in packet.timings],
    }
    return [_pack(header, "packet header"), *arrays]


def encode_end(source_id: str) -> list[bytes]:
    """Frames of the end-of-stream marker for ``source_id``."""
    return [_pack({"v": VERSION, "kind": "end", "source_id": source_id}, "end marker")]


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CodecError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _buffer(frame: FrameLike) -> memoryview:
    return frame.buffer if isinstance(frame, zmq.Frame) else memoryview(frame)


def _view(desc: Any, frame: FrameLike, where: str) -> np.ndarray:
    """A read-only array over ``frame`` as described by ``[dtype, shape]``, without copying."""
    _expect(isinstance(desc, list) and len(desc) == 2, f"{where}: descriptor is not [dtype, shape]")
    dtype_str, shape = desc
    _expect(isinstance(dtype_str, str), f"{where}: dtype is not a string")
    try:
        dtype = np.dtype(dtype_str)
    except TypeError:
        raise CodecError(f"{where}: unknown dtype {dtype_str!r}") from None
    _check_dtype(dtype, where)
    _expect(
        isinstance(shape, list) and all(_is_int(n) and n >= 0 for n in shape),
        f"{where}: shape {shape!r} is not a list of non-negative ints",
    )
    buffer = _buffer(frame)
    expected = math.prod(shape) * dtype.itemsize
    _expect(
        buffer.nbytes == expected,
        f"{where}: buffer has {buffer.nbytes} bytes, shape {shape} of {dtype} needs {expected}",
    )
    array = np.frombuffer(buffer, dtype=dtype).reshape(shape)
    array.flags.writeable = False
    return array


def _check_packet_header(header: dict[str, Any]) -> None:
    _expect(isinstance(header.get("source_id"), str), "header: source_id is not a string")
    for key in ("frame_index", "timestamp_ns"):
        _expect(_is_int(header.get(key)), f"header: {key} is not an int")
    media_time = header.get("media_time_s")
    _expect(
        isinstance(media_time, float | int) and not isinstance(media_time, bool),
        "header: media_time_s is not a number",
    )
    size = header.get("image_size")
    _expect(
        isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size),
        "header: image_size is not [width, height]",
    )
    data = header.get("data")
    _expect(
        isinstance(data, dict) and all(isinstance(name, str) for name in data),
        "header: data is not a map of names",
    )
    _expect(isinstance(header.get("meta"), dict), "header: meta is not a map")
    timings = header.get("timings")
    _expect(
        isinstance(timings, list)
        and all(
            isinstance(t, list)
            and len(t) == 3
            and isinstance(t[0], str)
            and _is_int(t[1])
            and _is_int(t[2])
            for t in timings
        ),
        "header: timings is not a list of [stage, enter_ns, leave_ns]",
    )


def decode(frames: Sequence[FrameLike]) -> Packet | EndOfStream:
    """The packet (or end marker) in ``frames``; arrays are read-only views, see the module doc.

    Receive with ``socket.recv_multipart(copy=False)`` so the arrays share the frames' memory.
    """
    _expect(len(frames) >= 1, "no frames")
    header = _unpack(_buffer(frames[0]), "header")
    _expect(isinstance(header, dict), "header: not a map")
    _expect(header.get("v") == VERSION, f"header: version {header.get('v')!r} != {VERSION}")
    kind = header.get("kind")
    if kind == "end":
        _expect(len(frames) == 1, f"end marker: expected 1 frame, got {len(frames)}")
        _expect(isinstance(header.get("source_id"), str), "end marker: source_id is not a string")
        return EndOfStream(header["source_id"])
    _expect(kind == "packet", f"header: unknown kind {kind!r}")
    _check_packet_header(header)
    descs = [] if header.get("image") is None else [("image", header["image"])]
    descs += [(f"data[{name!r}]", desc) for name, desc in header["data"].items()]
    _expect(
        len(frames) == 1 + len(descs),
        f"packet: expected {1 + len(descs)} frames, got {len(frames)}",
    )
    arrays = [
        _view(desc, frame, where) for (where, desc), frame in zip(descs, frames[1:], strict=True)
    ]
    image = arrays.pop(0) if header.get("image") is not None else None
    return Packet(
        source_id=header["source_id"],
        frame_index=header["frame_index"],
        timestamp_ns=header["timestamp_ns"],
        media_time_s=float(header["media_time_s"]),
        image_size=(header["image_size"][0], header["image_size"][1]),
        image=image,
        data=dict(zip(header["data"], arrays, strict=True)),
        meta=header["meta"],
        timings=[(name, enter, leave) for name, enter, leave in header["timings"]],
    )


def _array_to_map(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        array = _contiguous(obj, "message array")
        return {
            _NDARRAY_KEY: True,
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "data": array.tobytes(),
        }
    return _plain(obj)


def _map_to_array(obj: dict[str, Any]) -> Any:
    if obj.get(_NDARRAY_KEY) is not True:
        return obj
    _expect(isinstance(obj.get("data"), bytes), "message array: data is not bytes")
    return _view([obj.get("dtype"), obj.get("shape")], obj["data"], "message array")


def pack(payload: Any) -> bytes:
    """msgpack bytes of ``payload``; numpy arrays and scalars inside are allowed."""
    return _pack(payload, "message payload", default=_array_to_map)


def unpack(data: FrameLike) -> Any:
    """The object packed by :func:`pack`; arrays come back as read-only numpy arrays."""
    return _unpack(_buffer(data), "message payload", object_hook=_map_to_array)


def encode_message(topic: str, payload: Any) -> list[bytes]:
    """``[topic, payload]`` frames of the public stream (topic ``pose.markers`` etc.)."""
    return [topic.encode(), pack(payload)]


def decode_message(frames: Sequence[FrameLike]) -> tuple[str, Any]:
    """``(topic, payload)`` from the frames made by :func:`encode_message`."""
    _expect(len(frames) == 2, f"message: expected 2 frames [topic, payload], got {len(frames)}")
    try:
        topic = bytes(_buffer(frames[0])).decode()
    except UnicodeDecodeError:
        raise CodecError("message: topic is not UTF-8") from None
    return topic, unpack(frames[1])
