"""CURVE keys for the public stream and the control socket: create, load, apply.

With CURVE every message is encrypted and only clients whose public key the engine knows
can connect. A keys folder (``run_live.py --curve-keys DIR``) holds::

    DIR/server.key              the engine's public key: every client needs a copy
    DIR/server.key_secret       the engine's keypair: never leaves the engine's host
    DIR/clients/NAME.key        public key of each client allowed to connect
    DIR/clients/NAME.key_secret a client's keypair, as ``add-client`` writes it: move it
                                to that client (the engine reads only ``*.key`` there)

Create them with::

    uv run python -m transports.keys generate DIR
    uv run python -m transports.keys add-client DIR NAME

Any ZeroMQ certificate works as a client key (``zmq.auth.create_certificates``, czmq's
``zcert``): copy its public ``.key`` file into ``DIR/clients``. Keys are read when the
engine starts. The engine's own viewer connects with the server's keypair, which is
therefore always allowed.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

SERVER = "server"
CLIENTS = "clients"
SocketOptions = Mapping[int, int | bytes]


class KeysError(ValueError):
    """A keys folder or key file is missing or unreadable; the message says how to fix it."""


@dataclass(frozen=True)
class ServerKeys:
    """The engine's keypair and the public keys of the clients it lets in (z85 bytes)."""

    public: bytes
    secret: bytes
    clients: frozenset[bytes]

    @classmethod
    def load(cls, folder: str | Path) -> ServerKeys:
        folder = Path(folder)
        secret_file = folder / f"{SERVER}.key_secret"
        if not secret_file.is_file():
            what = "CURVE keys folder not found" if not folder.is_dir() else "no server keys in"
            raise KeysError(
                f"{what}: {folder} (create them with "
                f"`uv run python -m transports.keys generate {folder}`)"
            )
        public, secret = _load_pair(secret_file)
        clients_dir = folder / CLIENTS
        clients = []
        if clients_dir.is_dir():
            clients = [_load_public(path) for path in sorted(clients_dir.glob("*.key"))]
        return cls(public, secret, frozenset(clients))

    def options(self) -> dict[int, int | bytes]:
        """Socket options of a CURVE server socket (set before ``bind``)."""
        return {
            zmq.CURVE_SERVER: 1,
            zmq.CURVE_PUBLICKEY: self.public,
            zmq.CURVE_SECRETKEY: self.secret,
        }

    def as_client(self) -> ClientKeys:
        """Keys for the engine's own subscribers (the viewer) on the same host."""
        return ClientKeys(self.public, self.public, self.secret)


@dataclass(frozen=True)
class ClientKeys:
    """What a client needs: the server's public key and its own keypair (z85 bytes)."""

    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def load(cls, server_key: str | Path, client_secret: str | Path) -> ClientKeys:
        """From the engine's ``server.key`` and the client's own ``NAME.key_secret``."""
        return cls(_load_public(Path(server_key)), *_load_pair(Path(client_secret)))

    def options(self) -> dict[int, int | bytes]:
        """Socket options of a CURVE client socket (set before ``connect``)."""
        return {
            zmq.CURVE_SERVERKEY: self.server_public,
            zmq.CURVE_PUBLICKEY: self.public,
            zmq.CURVE_SECRETKEY: self.secret,
        }


class CurveServer:
    """Server-side CURVE for the sockets of one context: ``options`` for each socket, and
    the authenticator thread that admits only the known client keys. With no keys folder
    it does nothing (``options`` is empty): plain ZeroMQ, for loopback and trusted hosts."""

    def __init__(self, context: zmq.Context, folder: str | Path | None) -> None:
        self.options: dict[int, int | bytes] = {}
        self._authenticator: ThreadAuthenticator | None = None
        if not folder:
            return
        keys = ServerKeys.load(folder)
        self.options = keys.options()
        self._authenticator = ThreadAuthenticator(context)
        self._authenticator.start()
        allowed = _AllowedKeys(keys.clients | {keys.public})
        self._authenticator.configure_curve_callback("*", credentials_provider=allowed)

    def close(self) -> None:
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None


class _AllowedKeys:
    """ZAP credentials check of ``zmq.auth``: is this client's public key one we know?"""

    def __init__(self, keys: frozenset[bytes]) -> None:
        self._keys = keys

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self._keys


def is_loopback(endpoint: str) -> bool:
    """True when only this host can reach ``endpoint`` (ipc://, inproc://, tcp on
    127.0.0.0/8, ::1 or localhost); ``*``, 0.0.0.0, interface and host names are not."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = rest.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def generate(folder: Path) -> tuple[Path, Path]:
    """Create the server keypair and an empty ``clients`` folder; never overwrites keys."""
    _refuse_existing(folder / f"{SERVER}.key_secret")
    (folder / CLIENTS).mkdir(parents=True, exist_ok=True)
    return _create(folder, SERVER)


def add_client(folder: Path, name: str) -> tuple[Path, Path]:
    """Create a client keypair in ``folder/clients`` (its public key is then allowed)."""
    if not (folder / f"{SERVER}.key_secret").is_file():
        raise KeysError(f"no server keys in {folder}: run `generate {folder}` first")
    if not name or Path(name).name != name or name.startswith("."):
        raise KeysError(f"client name must be a plain file name, got {name!r}")
    _refuse_existing(folder / CLIENTS / f"{name}.key")
    (folder / CLIENTS).mkdir(exist_ok=True)
    return _create(folder / CLIENTS, name)


def _create(folder: Path, name: str) -> tuple[Path, Path]:
    public, secret = (Path(p) for p in zmq.auth.create_certificates(folder, name))
    secret.chmod(0o600)
    return public, secret


def _refuse_existing(path: Path) -> None:
    if path.exists():
        raise KeysError(f"{path} exists: keys are never overwritten (delete it first)")


def _load_public(path: Path) -> bytes:
    return _load(path)[0]


def _load_pair(path: Path) -> tuple[bytes, bytes]:
    public, secret = _load(path)
    if secret is None:
        raise KeysError(f"{path} holds no secret key: pass the .key_secret file")
    return public, secret


def _load(path: Path) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError):
        raise KeysError(f"cannot read a CURVE key from {path} (is it a zmq certificate?)") from None
    for key in (public, secret):
        if key is not None and not _valid(key):
            raise KeysError(f"{path} holds a malformed key (want 40 z85 characters)")
    return public, secret


def _valid(key: bytes) -> bool:
    try:
        return len(key) == 40 and len(z85.decode(key)) == 32
    except (ValueError, KeyError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("generate", help="server keypair + clients/ folder").add_argument(
        "folder", type=Path
    )
    client = commands.add_parser("add-client", help="a client keypair, allowed to connect")
    client.add_argument("folder", type=Path)
    client.add_argument("name")
    args = parser.parse_args(argv)
    os.umask(0o077)  # keys folders and files readable by their owner only
    try:
        if args.command == "generate":
            public, _ = generate(args.folder)
            print(f"server keys in {args.folder}; give {public} to every client")
        else:
            public, secret = add_client(args.folder, args.name)
            print(f"client {args.name!r} allowed ({public}); give {secret} and")
            print(f"{args.folder / (SERVER + '.key')} to that client, then delete {secret} here")
    except KeysError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
