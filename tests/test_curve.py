"""CURVE on the public stream and the control socket, with real keys and real sockets: a
client with the right keys gets poses and answers, any other client gets nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from tests.data import REPO
from tests.test_live import STARTUP_S, assert_no_orphans, free_port, pipeline_processes
from transports.client import ControlTimeout, PoseClient
from transports.control import ControlServer
from transports.keys import ClientKeys, CurveServer, ServerKeys, generate, is_loopback
from transports.queues import Publisher, Subscriber

SILENCE_S = 1.5  # how long a refused client is watched (after the allowed one got data)


def keys_command(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "transports.keys", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keys folder made by the documented commands, with one client, 'laptop'."""
    folder = tmp_path_factory.mktemp("curve") / "keys"
    assert keys_command("generate", folder).returncode == 0
    assert keys_command("add-client", folder, "laptop").returncode == 0
    return folder


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys of another engine: its server key is the wrong one for ``keys``."""
    folder = tmp_path_factory.mktemp("curve") / "other"
    generate(folder)
    return folder


def laptop(keys: Path) -> ClientKeys:
    return ClientKeys.load(keys / "server.key", keys / "clients" / "laptop.key_secret")


def strangers(keys: Path, other_keys: Path) -> dict[str, ClientKeys | None]:
    """Clients that must get nothing: no CURVE, the wrong server key, an unknown keypair."""
    public, secret = zmq.curve_keypair()
    return {
        "no keys": None,
        "wrong server key": ClientKeys.load(
            other_keys / "server.key", keys / "clients" / "laptop.key_secret"
        ),
        "unknown client key": ClientKeys(laptop(keys).server_public, public, secret),
    }


def test_keys_command_writes_the_documented_layout(keys: Path) -> None:
    names = sorted(str(p.relative_to(keys)) for p in keys.rglob("*") if p.is_file())
    assert names == [
        "clients/laptop.key",
        "clients/laptop.key_secret",
        "server.key",
        "server.key_secret",
    ]
    for secret in (keys / "server.key_secret", keys / "clients" / "laptop.key_secret"):
        assert secret.stat().st_mode & 0o077 == 0, f"{secret} is readable by others"
    again = keys_command("generate", keys)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    assert again.stderr.count("error:") == 1 and "Traceback" not in again.stderr


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("tcp://127.0.0.1:5555", True),
        ("tcp://127.8.9.10:5555", True),
        ("tcp://localhost:5555", True),
        ("tcp://[::1]:5555", True),
        ("ipc://pose.sock", True),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://*:5555", False),
        ("tcp://192.168.1.20:5555", False),
        ("tcp://[::]:5555", False),
        ("tcp://eth0:5555", False),
        ("tcp://myhost.local:5555", False),
    ],
)
def test_loopback_endpoints(endpoint: str, loopback: bool) -> None:
    assert is_loopback(endpoint) is loopback


@pytest.fixture
def curve_context(keys: Path) -> Iterator[tuple[zmq.Context, CurveServer]]:
    """A context of its own with the authenticator running, as in the live sink process."""
    context = zmq.Context()
    curve = CurveServer(context, keys)
    yield context, curve
    curve.close()
    context.term()


def test_only_the_known_client_receives_the_stream(
    keys: Path, other_keys: Path, curve_context: tuple[zmq.Context, CurveServer]
) -> None:
    context, curve = curve_context
    publisher = Publisher("tcp://127.0.0.1:*", context=context, security=curve.options)
    allowed = Subscriber(publisher.endpoint, security=laptop(keys).options())
    refused = {
        name: Subscriber(publisher.endpoint, security=client.options() if client else None)
        for name, client in strangers(keys, other_keys).items()
    }
    got: dict[str, list] = {"allowed": [], **{name: [] for name in refused}}
    deadline = time.monotonic() + 20.0
    quiet_until = None
    frame = 0
    try:
        while time.monotonic() < (quiet_until or deadline):
            publisher.send("pose.markers", {"frame_index": frame})
            frame += 1
            for name, subscriber in [("allowed", allowed), *refused.items()]:
                while (message := subscriber.recv(timeout_s=0)) is not None:
                    got[name].append(message)
            if quiet_until is None and len(got["allowed"]) >= 10:
                quiet_until = time.monotonic() + SILENCE_S  # keep publishing a while longer
            time.sleep(0.01)
    finally:
        for subscriber in [allowed, *refused.values()]:
            subscriber.close()
        publisher.close()
    assert len(got["allowed"]) >= 10, "the client with the right keys received nothing"
    assert got["allowed"][0][0] == "pose.markers"
    assert {name: len(got[name]) for name in refused} == {name: 0 for name in refused}


def test_only_the_known_client_gets_control_answers(
    keys: Path, other_keys: Path, curve_context: tuple[zmq.Context, CurveServer]
) -> None:
    context, curve = curve_context
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = ControlServer(context, endpoint, {}, dict, security=curve.options)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            if not server.poll_once():
                time.sleep(0.005)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        reply = PoseClient(publish="", control=endpoint, keys=laptop(keys)).request(
            "version", timeout_s=10
        )
        assert reply["ok"] and reply["version"]
        for name, client in strangers(keys, other_keys).items():
            with pytest.raises(ControlTimeout):
                PoseClient(publish="", control=endpoint, keys=client).request(
                    "version", timeout_s=SILENCE_S
                )
                pytest.fail(f"{name} got an answer")
    finally:
        stop.set()
        thread.join()
        server.close()


def run_live(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(REPO / "run_live.py"), "--no-viewer", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_network_address_needs_curve_keys_or_insecure(tmp_path: Path) -> None:
    exposed = f"tcp://0.0.0.0:{free_port()}"
    missing = tmp_path / "missing.mp4"  # the run stops at the source check, binding nothing
    refused = run_live("--source", missing, "--publish", exposed)
    _, err = refused.communicate(timeout=120)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert refused.returncode == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert exposed in errors[0] and "--curve-keys" in errors[0] and "--insecure" in errors[0]
    allowed = run_live("--source", missing, "--control", exposed, "--insecure")
    _, err = allowed.communicate(timeout=120)
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and exposed in warnings[0], err
    assert "video not found" in err, "past the endpoint check"


@pytest.mark.parametrize("case", ["no folder", "no server keys", "garbage client key"])
def test_a_bad_keys_folder_is_one_error_line(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "keys"
    if case == "no server keys":
        folder.mkdir()
    if case == "garbage client key":
        generate(folder)
        (folder / "clients" / "bob.key").write_text("public-key = not a key\n")
    result = run_live("--source", tmp_path / "missing.mp4", "--curve-keys", folder)
    _, err = result.communicate(timeout=120)
    assert result.returncode == 2 and "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    words = {
        "no folder": f"CURVE keys folder not found: {folder}",
        "no server keys": f"no server keys in: {folder}",
        "garbage client key": f"{folder / 'clients' / 'bob.key'} holds a malformed key",
    }[case]
    assert words in err, err
    if case != "garbage client key":
        assert f"`uv run python -m transports.keys generate {folder}`" in err


def test_live_run_with_curve_keys_serves_only_known_clients(
    keys: Path, other_keys: Path, pingpong_video: Path
) -> None:
    """The whole pipeline with --curve-keys: the example subscriber with the right keys
    prints poses, the control socket answers it, every other client gets nothing."""
    publish, control = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    process = run_live(
        "--source", pingpong_video, "--duration", "60", "--publish", publish,
        "--control", control, "--curve-keys", keys,
    )  # fmt: skip
    client = PoseClient(publish, control, laptop(keys))
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "live pipeline did not start"
            try:
                assert client.request("version", timeout_s=0.5)["ok"]
                break
            except ControlTimeout:
                pass
        seen = pipeline_processes(process.pid)
        refused = {
            name: Subscriber(publish, ("pose.",), security=stranger and stranger.options())
            for name, stranger in strangers(keys, other_keys).items()
        }
        # this client's first pose before the example runs, so that how long the example
        # takes on a slow machine cannot let the 20 s source end first
        known = Subscriber(publish, ("pose.markers",), security=laptop(keys).options())
        markers = known.recv(timeout_s=STARTUP_S)
        assert markers is not None and markers[0] == "pose.markers"
        assert len(markers[1]["markers"]) == 64
        example = subprocess.run(
            [sys.executable, "-m", "examples.subscriber", "--publish", publish,
             "--control", control, "--count", "5", "--server-key", keys / "server.key",
             "--client-key", keys / "clients" / "laptop.key_secret"],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert example.returncode == 0, example.stderr
        assert "64 markers" in example.stdout and "frame" in example.stdout
        got = {name: sub.recv(timeout_s=SILENCE_S) for name, sub in refused.items()}
        assert got == {name: None for name in refused}
        for subscriber in (known, *refused.values()):
            subscriber.close()
        for name, stranger in strangers(keys, other_keys).items():
            with pytest.raises(ControlTimeout):
                PoseClient(publish, control, stranger).request("version", timeout_s=SILENCE_S)
                pytest.fail(f"{name} got an answer")
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert_no_orphans(seen)


def test_the_engines_viewer_connects_with_the_server_keys(
    keys: Path, curve_context: tuple[zmq.Context, CurveServer]
) -> None:
    """The live window (viewer/feed.py) reads the CURVE stream and asks the control
    socket with the server's own keypair, so it needs no client key of its own."""
    from viewer.feed import StreamFeed

    context, curve = curve_context
    publisher = Publisher("tcp://127.0.0.1:*", context=context, security=curve.options)
    control = f"tcp://127.0.0.1:{free_port()}"
    server = ControlServer(context, control, {}, dict, security=curve.options)
    own = ServerKeys.load(keys).as_client()
    feed = StreamFeed(publisher.endpoint, control, security=own.options())
    markers: list[dict] = []
    deadline = time.monotonic() + 20.0
    try:
        while (feed.schema is None or not markers) and time.monotonic() < deadline:
            publisher.send("pose.markers", {"frame_index": len(markers)})
            server.poll_once()
            markers += feed.poll().markers
            time.sleep(0.01)
    finally:
        feed.close()
        server.close()
        publisher.close()
    assert feed.schema is not None and len(feed.schema["markers"]) == 64
    assert markers and markers[0]["frame_index"] >= 0
