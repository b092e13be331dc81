"""Builds the stage chain declared in ``config.toml`` and runs packets through it inline.

Inline execution is the offline mode: lossless and deterministic. The live mode runs the
very same stage objects, one per process.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.packet import Packet
from core.stage import Stage
from stream.config import ConfigError


def load_object(spec: str, what: str) -> Any:
    """Import ``"package.module:name"`` (``what`` names it in the error)."""
    module_name, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {spec!r} cannot be loaded: {exc}") from exc


def load_stage_class(spec: str) -> type[Stage]:
    """Import ``"package.module:ClassName"`` of a stage."""
    cls = load_object(spec, "pipeline stage")
    if not (isinstance(cls, type) and issubclass(cls, Stage)):
        raise ConfigError(f"pipeline stage {spec!r} is not a Stage")
    return cls


def load_process(config: Mapping[str, Any], role: str) -> Callable[..., None]:
    """The entry point of a live process named in ``[pipeline]`` (capture, sink, viewer)."""
    entry = load_object(config["pipeline"][role], f"[pipeline] {role}")
    if not callable(entry):
        raise ConfigError(f"[pipeline] {role} {config['pipeline'][role]!r} is not a function")
    return entry


def build_stages(config: Mapping[str, Any], start: int = 0, stop: int | None = None) -> list[Stage]:
    """Instantiate and set up the stages listed in ``[pipeline] stages`` (all, or the slice
    ``start:stop`` where a process runs only part of the chain: offline/pipelined.py)."""
    specs = config.get("pipeline", {}).get("stages", [])
    if not specs:
        raise ConfigError("config has no [pipeline] stages")
    stages = [load_stage_class(spec)() for spec in specs[start:stop]]
    for stage in stages:
        stage.setup(config)
    return stages


class StageError(RuntimeError):
    """A stage raised while processing a frame; the message names the stage and frame."""


def interruption_behind(exc: BaseException) -> BaseException | None:
    """The Ctrl-C, SIGTERM or exit that ``exc`` wraps, if any. A signal handler that raises
    while a compiled (numba) function runs surfaces as ``SystemError: ... returned a result
    with an exception set`` chained to the handler's exception: that is a stop, not a bug."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if not isinstance(link, Exception):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def run_inline(stages: Sequence[Stage], packet: Packet) -> Packet | None:
    """Pass one packet through every stage in order; ``None`` if a stage dropped it. Each
    stage gets read-only arrays, exactly as it would from a socket in live mode."""
    for stage in stages:
        frame = packet.frame_index
        packet.freeze()
        try:
            packet = stage(packet)
        except Exception as exc:
            if (interruption := interruption_behind(exc)) is not None:
                raise interruption from None
            raise StageError(
                f"stage '{stage.name}' failed on frame {frame} of {packet.source_id}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if packet is None:
            return None
    return packet
