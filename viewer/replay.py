"""TRC replay (``run_offline.py --view FILE.trc``): the live viewer's 3D view over a file.

Playback runs at the file's own rate (frames are picked by elapsed time, so a slow redraw
skips frames instead of slowing the clock). Keys: space plays/pauses, left/right step one
frame, page up/down jump one second, home/end go to the ends, q/Esc quit; clicking or
dragging on the timeline bar under the view scrubs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from vispy import app, scene

from core.trc import TrcData
from viewer.panels import SkeletonView
from viewer.window import BACKGROUND, BORDER, StatusLine

HINTS = "space play/pause | <- -> step | PgUp PgDn 1 s | Home End | drag the bar | q quit"
BAR = (0.25, 0.25, 0.3, 1.0)
CURSOR = (0.95, 0.85, 0.3, 1.0)


class ReplayWindow:
    """Plays the frames of one TRC file in the 3D view, with a scrubbable timeline."""

    def __init__(
        self,
        trc: TrcData,
        path: Path,
        on_quit: Callable[[], None],
        size: tuple[int, int] = (1100, 750),
    ) -> None:
        self.trc = trc
        self._on_quit = on_quit
        self.canvas = scene.SceneCanvas(
            title=f"monomocap replay: {path.name}", size=size, bgcolor=BACKGROUND, show=False
        )
        grid = self.canvas.central_widget.add_grid(spacing=4, margin=4)
        self.skeleton = SkeletonView(grid.add_view(row=0, col=0, border_color=BORDER))
        self.skeleton.set_names(trc.names)
        self.skeleton.frame_all(trc.xyz)
        self.timeline = grid.add_view(row=1, col=0, bgcolor=BAR)
        self.timeline.height_max = 18
        self.timeline.camera = scene.PanZoomCamera(rect=(0, 0, 1, 1), interactive=False)
        self._cursor = scene.visuals.Line(
            np.array([[0, 0], [0, 1]], np.float32), parent=self.timeline.scene, color=CURSOR
        )
        self.status = StatusLine(grid, row=2, col_span=1)
        self.frame = 0
        self.playing = False
        self._clock: tuple[float, int] = (time.monotonic(), 0)  # (wall time, frame) at play
        self._quitting = False
        rate = trc.rate if np.isfinite(trc.rate) and trc.rate > 0 else 30.0
        self.rate = rate
        self._timer = app.Timer(1.0 / min(rate, 60.0), connect=self._on_timer)
        self.canvas.events.key_press.connect(self._on_key)
        self.canvas.events.mouse_press.connect(self._on_mouse)
        self.canvas.events.mouse_move.connect(self._on_mouse)
        self.canvas.events.close.connect(lambda event: self.quit())
        self.seek(0)

    @property
    def n_frames(self) -> int:
        return len(self.trc.xyz)

    def start(self) -> None:
        self.canvas.show()
        self._timer.start()

    def seek(self, frame: int) -> None:
        """Show ``frame`` (clamped to the file); playback continues from there."""
        self.frame = int(np.clip(frame, 0, self.n_frames - 1))
        self._clock = (time.monotonic(), self.frame)
        xyz = self.trc.xyz[self.frame]
        empty = not np.isfinite(xyz).any()
        self.skeleton.show(None if empty else xyz, "no person" if empty else "")
        where = self.frame / max(self.n_frames - 1, 1)
        self._cursor.set_data(pos=np.array([[where, 0], [where, 1]], np.float32))
        state = "playing" if self.playing else "paused"
        time_s = self.trc.times[self.frame]
        self.status.text = (
            f"frame {self.frame + 1}/{self.n_frames} | {time_s:.2f} s | {state} | {HINTS}"
        )
        self.canvas.update()

    def toggle_play(self) -> None:
        if not self.playing and self.frame == self.n_frames - 1:
            self.frame = 0  # play again from the start
        self.playing = not self.playing
        self.seek(self.frame)

    def _on_timer(self, event: Any) -> None:
        self.advance()

    def advance(self) -> None:
        """While playing, show the frame that is due now."""
        if not self.playing:
            return
        start_s, start_frame = self._clock
        frame = start_frame + int((time.monotonic() - start_s) * self.rate)
        if frame >= self.n_frames - 1:
            self.playing = False
            frame = self.n_frames - 1
        if frame != self.frame or not self.playing:
            clock = self._clock
            self.seek(frame)
            self._clock = clock  # keep the playback clock: seek() restarts it

    def _on_key(self, event: Any) -> None:
        key = event.key.name.lower() if event.key is not None else ""
        step = max(1, round(self.rate))
        moves = {"right": 1, "left": -1, "pageup": -step, "pagedown": step}
        if key == "space":
            self.toggle_play()
        elif key in moves:
            self.seek(self.frame + moves[key])
        elif key == "home":
            self.seek(0)
        elif key == "end":
            self.seek(self.n_frames - 1)
        elif key in ("q", "escape"):
            self.quit()

    def _on_mouse(self, event: Any) -> None:
        """A click or drag with the left button on the timeline bar scrubs."""
        pressed = event.buttons if event.type == "mouse_move" else [event.button]
        if 1 not in pressed:
            return
        x, y = self.canvas.scene.node_transform(self.timeline).map(event.pos)[:2]
        width, height = self.timeline.size
        if 0 <= x <= width and 0 <= y <= height:
            self.seek(round(x / width * (self.n_frames - 1)))

    def quit(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        self._timer.stop()
        self.canvas.close()
        self._on_quit()
