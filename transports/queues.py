"""ZeroMQ links between stage processes and the public PUB stream, in one small module.

A link carries packets from upstream processes (``PacketSender``, a DEALER socket) to one
downstream process (``PacketReceiver``, a ROUTER socket). Flow is controlled by credits:
the receiver grants ``capacity`` credits when a sender says hello (on every connection,
see ``_HELLO``), then gives back the credit of each packet its stage has taken (``recv``);
the sender spends one credit per packet. At most ``capacity`` packets per sender are ever
in flight, exactly, wherever ZeroMQ or the kernel would buffer them, so ZeroMQ's own
high-water marks (left at their defaults) are never reached. A deep window (capacity 4 or
more: the offline detection link) gives credits back in batches of half the window: one
message wakes both processes' ZeroMQ threads, per packet that was a few percent of the
offline mode's CPU, and the other half of the window keeps packets coming meanwhile.

Why credits instead of ZeroMQ's own high-water marks or ``CONFLATE`` (they queue, or lose,
frames the HWMs do not count): measured in docs/measurements.md.

End of stream: the sender sends an :class:`EndOfStream` marker and waits for the receiver's
acknowledgement before it returns, so closing right after ``send_end`` loses nothing.

ROUTER/DEALER rather than PAIR: a bound PAIR socket refuses a new peer while it still
holds the old connection, so a restarted upstream stage could stall for good (seen in
tests); ROUTER keeps one credit window per connected sender, which also lets several
upstream processes feed one stage. Endpoints are ``ipc://`` by default
(a folder named ``IPC_FOLDER_PREFIX*`` is removed with its socket), ``tcp://`` works the
same way.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import zmq
from zmq.utils.monitor import recv_monitor_message

from core.packet import Packet
from transports import codec
from transports.codec import CodecError, EndOfStream

IPC_FOLDER_PREFIX = "mocap-ipc-"  # a folder made for one ipc socket, removed with it
_SENDER_LINGER_MS = 500  # a short grace on close; delivery itself is confirmed by acks
# Control messages. Hello and credit carry the sender's connection number ("epoch"), so
# credits granted to an earlier connection never count: the window stays exact across
# reconnections and restarts.
_HELLO = b"hello:"  # sender -> receiver, + epoch: new connection, grant me a full window
_CREDIT = b"credit:"  # receiver -> sender, + b"epoch:n": room for n more packets
_END_ACK = b"end-ack"  # receiver -> sender: end-of-stream marker read
_WAIT_SLICE_S = 0.05  # how often a waiting sender retries an unsent hello


def _remove_ipc(endpoint: str) -> None:
    """Delete a bound ipc socket file, and its folder if it was made for it alone."""
    if not endpoint.startswith("ipc://"):
        return
    path = Path(endpoint.removeprefix("ipc://"))
    path.unlink(missing_ok=True)
    if path.parent.name.startswith(IPC_FOLDER_PREFIX):
        try:
            path.parent.rmdir()
        except OSError:  # not empty: something else lives there, leave it
            pass


def _deadline(timeout_s: float | None) -> float | None:
    return None if timeout_s is None else time.monotonic() + timeout_s


def _remaining_s(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _remaining_ms(deadline: float | None, cap_s: float | None = None) -> int | None:
    """Milliseconds to wait in one poll (None: forever), never past ``deadline``."""
    left = _remaining_s(deadline)
    if cap_s is not None:
        left = cap_s if left is None else min(left, cap_s)
    return None if left is None else int(left * 1000)


class _Endpoint:
    """One socket, bound or connected; ``close`` never hangs and cleans up ipc files.

    With ``watch_peers`` a monitor socket (``peer_events``) reports every (re)connection,
    so a sender notices a restarted peer.
    """

    def __init__(
        self,
        socket_type: int,
        endpoint: str,
        bind: bool,
        options: Mapping[int, int | bytes],
        context: zmq.Context | None,
        watch_peers: bool = False,
    ) -> None:
        self.socket = (context or zmq.Context.instance()).socket(socket_type)
        self._bound = bind
        self.endpoint = endpoint
        self.peer_events = (
            self.socket.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_ACCEPTED)
            if watch_peers
            else None
        )
        try:
            for option, value in options.items():  # before bind/connect: HWMs apply per pipe
                self.socket.setsockopt(option, value)
            if bind:
                if endpoint.startswith("ipc://"):  # a restarted stage rebinds a removed path
                    Path(endpoint.removeprefix("ipc://")).parent.mkdir(parents=True, exist_ok=True)
                self.socket.bind(endpoint)
                self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)  # resolves :*
            else:
                self.socket.connect(endpoint)
        except zmq.ZMQError:
            self.close()
            raise

    def close(self) -> None:
        """Close the socket (waiting at most its linger) and remove a bound ipc file."""
        if self.socket.closed:
            return
        if self.peer_events is not None:
            self.socket.disable_monitor()
            self.peer_events.close(linger=0)
        self.socket.close()
        if self._bound:
            _remove_ipc(self.endpoint)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PacketSender(_Endpoint):
    """The upstream end of a link.

    ``lossless=True`` (offline, ``--lossless``, every link after capture): ``send`` waits
    for credit, so a slow stage slows its upstream down and nothing is lost.
    ``lossless=False`` (the capture end of a live graph): ``send`` never waits; without
    credit the packet is parked and the previously parked (older) one is dropped and
    counted in ``dropped``. The parked packet goes out only at ``send_end``, so the last
    frame of a source always arrives.

    A sender feeds exactly one receiver. Arrays are sent without copies: do not modify
    them after ``send``.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        lossless: bool = True,
        bind: bool = False,
        context: zmq.Context | None = None,
    ) -> None:
        options = {zmq.LINGER: _SENDER_LINGER_MS}
        super().__init__(zmq.DEALER, endpoint, bind, options, context, watch_peers=True)
        self.lossless = lossless
        self.sent = 0
        self.dropped = 0
        self._credits = 0
        self._epoch = random.getrandbits(48)  # distinct from any earlier sender's numbers
        self._acks = 0
        self._ends = 0
        self._parked: Packet | None = None
        self._hello_pending = False
        self._poller = zmq.Poller()
        self._poller.register(self.socket, zmq.POLLIN)
        self._poller.register(self.peer_events, zmq.POLLIN)

    def _say_hello(self) -> None:
        """Ask the peer for a fresh window; a bound socket may have no pipe yet: retry."""
        try:
            self.socket.send(_HELLO + b"%d" % self._epoch, zmq.NOBLOCK)
            self._hello_pending = False
        except zmq.Again:
            pass

    def _read_control(self, timeout_ms: int | None) -> None:
        """Handle (re)connections, credits and acks, waiting up to ``timeout_ms`` for one."""
        ready = dict(self._poller.poll(timeout_ms))
        if self.peer_events in ready:
            while self.peer_events.poll(0):
                recv_monitor_message(self.peer_events)
                self._epoch += 1  # a new or restarted peer: earlier credits are void
                self._credits = 0
                self._hello_pending = True
        if self._hello_pending:
            self._say_hello()
        while self.socket.poll(0):
            message = self.socket.recv()
            if message.startswith(_CREDIT):
                epoch, _, count = message.removeprefix(_CREDIT).partition(b":")
                if epoch == b"%d" % self._epoch:
                    self._credits += int(count)
            elif message == _END_ACK:
                self._acks += 1

    def _wait(self, ready: Callable[[], bool], timeout_s: float | None) -> bool:
        """Read control messages until ``ready()`` holds; False when ``timeout_s`` ran out."""
        deadline = _deadline(timeout_s)
        self._read_control(0)
        while not ready():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            cap = _WAIT_SLICE_S if self._hello_pending else None
            self._read_control(_remaining_ms(deadline, cap))
        return True

    def _transmit(self, packet: Packet) -> bool:
        try:
            self.socket.send_multipart(codec.encode(packet), flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:  # the peer went away after granting credit
            return False
        self._credits -= 1
        self.sent += 1
        return True

    def send(self, packet: Packet, timeout_s: float | None = None) -> bool:
        """Hand ``packet`` on; True when it went out now.

        Lossless: waits for credit up to ``timeout_s`` (None: forever); False means it
        timed out and nothing was sent, so the caller can check for shutdown and retry.
        Dropping: never waits; False means the packet was parked (see the class doc).
        """
        if self.lossless:
            return self._wait(lambda: self._credits > 0, timeout_s) and self._transmit(packet)
        self._read_control(0)
        if self._credits > 0 and self._transmit(packet):
            if self._parked is not None:
                self.dropped += 1
                self._parked = None
            return True
        if self._parked is not None:
            self.dropped += 1
        self._parked = packet
        return False

    def idle(self, seconds: float) -> None:
        """Wait ``seconds`` (a paced source between two frames), but hand the parked frame
        on the moment credit arrives: fewer drops, and the frame is at most one period old."""
        deadline = time.monotonic() + seconds
        while self._parked is not None:
            if not self._wait(lambda: self._credits > 0, _remaining_s(deadline)):
                return
            if self._transmit(self._parked):
                self._parked = None
        time.sleep(max(0.0, deadline - time.monotonic()))

    def send_end(self, source_id: str, timeout_s: float | None = None) -> bool:
        """Send the parked packet (if any), then the end marker; wait for its receipt.

        True when the receiver acknowledged the marker within ``timeout_s`` (None: forever).
        """
        deadline = _deadline(timeout_s)
        if self._parked is not None:
            parked, self._parked = self._parked, None
            has_credit = self._wait(lambda: self._credits > 0, _remaining_s(deadline))
            if not (has_credit and self._transmit(parked)):
                self.dropped += 1
        try:
            self.socket.send_multipart(codec.encode_end(source_id), flags=zmq.NOBLOCK)
        except zmq.Again:
            return False
        self._ends += 1
        return self._wait(lambda: self._acks >= self._ends, _remaining_s(deadline))


@dataclass
class _Window:
    """A receiver's view of one sender: its connection number and the credits it is owed."""

    epoch: bytes
    owed: int


class PacketReceiver(_Endpoint):
    """The downstream end of a link: yields packets and end markers, with a timeout.

    ``capacity`` is how many packets may be on their way to this stage while it works on
    one. Use 1 at the capture end of a live graph (newest frame wins: the sender only sends
    a frame once this stage asks for it) and a few (default 2) on lossless links. Several
    senders may connect (fan-in); each gets its own window and sends its own end markers.

    Received arrays are read-only views of the zmq frames (see :mod:`transports.codec`).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        capacity: int = 2,
        bind: bool = True,
        context: zmq.Context | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        options = {zmq.LINGER: 0, zmq.ROUTER_MANDATORY: 1}  # learn when a sender is gone
        super().__init__(zmq.ROUTER, endpoint, bind, options, context)
        self.capacity = capacity
        self._batch = max(1, capacity // 2)  # credits given back together (module doc)
        self.received = 0
        self._windows: dict[bytes, _Window] = {}  # per connected sender

    def _grant(self) -> None:
        """Return owed credits once a batch is due; forget senders that are gone, retry the
        rest later. Held-back credits never stall a sender: fewer than ``_batch`` owed
        means more than half the window is still on its way here."""
        for peer, window in list(self._windows.items()):
            if window.owed < self._batch:
                continue
            credit = _CREDIT + window.epoch + b":%d" % window.owed
            try:
                self.socket.send_multipart([peer, credit], zmq.NOBLOCK)
            except zmq.Again:
                continue
            except zmq.ZMQError:  # EHOSTUNREACH: disconnected
                del self._windows[peer]
                continue
            window.owed = 0

    def recv(self, timeout_s: float | None = None) -> Packet | EndOfStream | None:
        """The next packet or end marker; None after ``timeout_s`` (None: wait forever).

        Calling ``recv`` is what tells the senders this stage is ready for more.
        """
        deadline = _deadline(timeout_s)
        while True:
            self._grant()
            if not self.socket.poll(_remaining_ms(deadline)):
                return None
            identity, *frames = self.socket.recv_multipart(copy=False)
            peer = identity.bytes
            if len(frames) == 1 and frames[0].bytes.startswith(_HELLO):
                epoch = frames[0].bytes.removeprefix(_HELLO)
                self._windows[peer] = _Window(epoch, owed=self.capacity)  # a full window
                continue
            # a packet queued before its sender's hello has no window and returns no credit
            window = self._windows.get(peer, _Window(b"", owed=0))
            try:
                item = codec.decode(frames)
            except CodecError:
                window.owed += 1  # it took a credit: give it back so the window stays whole
                raise
            if isinstance(item, EndOfStream):
                try:
                    self.socket.send_multipart([peer, _END_ACK], zmq.NOBLOCK)
                except zmq.ZMQError:  # the sender is gone already: nobody waits for the ack
                    pass
            else:
                self.received += 1
                window.owed += 1
            return item


class Publisher(_Endpoint):
    """The public stream: PUB socket sending ``[topic, msgpack payload]``.

    Binds 127.0.0.1 on a free port by default (see ``endpoint``); binding anything else is
    an explicit choice. ``send`` never blocks: a subscriber that falls ``hwm`` messages
    behind loses messages, the engine never waits for it.
    """

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:*",
        *,
        hwm: int = 100,
        context: zmq.Context | None = None,
        security: Mapping[int, int | bytes] | None = None,
    ) -> None:
        """``security``: socket options such as ``CurveServer.options`` (transports/keys.py)."""
        options = {zmq.LINGER: _SENDER_LINGER_MS, zmq.SNDHWM: hwm, **(security or {})}
        super().__init__(zmq.PUB, endpoint, True, options, context)

    def send(self, topic: str, payload: Any) -> None:
        """Publish ``payload`` (msgpack-able, numpy arrays allowed) under ``topic``."""
        self.socket.send_multipart(codec.encode_message(topic, payload))


class Subscriber(_Endpoint):
    """A client of the public stream, subscribed to topic prefixes (all by default)."""

    def __init__(
        self,
        endpoint: str,
        topics: Iterable[str] = ("",),
        *,
        context: zmq.Context | None = None,
        security: Mapping[int, int | bytes] | None = None,
    ) -> None:
        """``security``: socket options such as ``ClientKeys.options()`` (transports/keys.py)."""
        options = {zmq.LINGER: 0, **(security or {})}
        super().__init__(zmq.SUB, endpoint, False, options, context)
        for topic in topics:
            self.socket.subscribe(topic.encode())

    def recv(self, timeout_s: float | None = None) -> tuple[str, Any] | None:
        """``(topic, payload)`` of the next message, or None after ``timeout_s``."""
        if not self.socket.poll(None if timeout_s is None else int(timeout_s * 1000)):
            return None
        return codec.decode_message(self.socket.recv_multipart(copy=False))
