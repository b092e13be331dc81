"""The browser app: upload videos and get the offline files, or watch the live capture.

Examples:
    uv run run_web.py                                 # http://127.0.0.1:8000
    uv run run_web.py --data /srv/mocap --keep-uploads
    uv run run_web.py --host 0.0.0.0 --token "$(openssl rand -hex 16)" \\
        --tls-cert cert.pem --tls-key key.pem         # reachable from other hosts
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stream.cli import OneLineParser
from stream.config import ConfigError, load_config
from stream.config_schema import validate
from transports.keys import is_loopback
from web.app import Settings, create_app

GRACEFUL_S = 3  # open event streams and WebSockets get this long to end at shutdown


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1: this host only)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--data", type=Path, help="folder for jobs and recordings (default data/web)")
    p.add_argument("--token", help="secret every request must carry; required off loopback")
    p.add_argument("--tls-cert", type=Path, help="certificate (PEM) for HTTPS")
    p.add_argument("--tls-key", type=Path, help="private key (PEM) for HTTPS")
    p.add_argument(
        "--keep-uploads",
        action="store_true",
        help="keep each uploaded video after its job (default: deleted once processed)",
    )
    p.add_argument("--config", type=Path, help="configuration file (default: config.toml)")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> tuple[Settings, dict]:
    """The server's settings: config.toml's [web] with the flags over it."""
    config = load_config(args.config)
    web = config["web"]
    for key in ("host", "port", "data"):
        if getattr(args, key) is not None:
            web[key] = str(getattr(args, key)) if key == "data" else getattr(args, key)
    validate(config, str(args.config or "config.toml"))
    if not is_loopback(f"tcp://{web['host']}:{web['port']}") and not args.token:
        raise ConfigError(
            f"--host {web['host']} can be reached from other hosts: give --token T (every "
            "request must carry it) or use --host 127.0.0.1"
        )
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
    for path in (args.tls_cert, args.tls_key):
        if path is not None and not path.is_file():
            raise ConfigError(f"file not found: {path}")
    settings = Settings(
        data=Path(web["data"]).resolve(),
        max_upload_bytes=int(web["max_upload_mb"] * 1024 * 1024),
        workers=int(web["workers"]),
        keep_uploads=args.keep_uploads,
        truncation_tolerance=float(config["capture"]["truncation_tolerance"]),
        live_publish=web["live_publish"],
        live_control=web["live_control"],
        live_queue=int(web["live_queue"]),
    )
    return settings, web


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings, web = settings_from(args)
        settings.data.mkdir(parents=True, exist_ok=True)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from web.gate import TokenGate

    app = create_app(settings)
    if args.token:
        app = TokenGate(app, args.token)
    scheme = "https" if args.tls_cert else "http"
    if not is_loopback(f"tcp://{web['host']}:{web['port']}") and scheme == "http":
        print(
            "warning: plain HTTP is unencrypted: the token, the videos and the results cross "
            "the network readable by anyone on it; give --tls-cert/--tls-key for HTTPS",
            file=sys.stderr,
        )
    print(f"monomocap web app on {scheme}://{web['host']}:{web['port']}/ (Ctrl-C stops)",
          flush=True)  # fmt: skip
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    uvicorn.run(
        app,
        host=web["host"],
        port=int(web["port"]),
        ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
        ssl_keyfile=str(args.tls_key) if args.tls_key else None,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_S,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
