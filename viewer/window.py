"""The live viewer window: what to show from the stream, and the keys.

Layout: the 3D skeleton on the left; the camera image with its 2D landmarks and the
joint-angle plots on the right; a status line at the bottom. A timer (``[viewer] max_fps``)
drains the stream; the window redraws only when something arrived, and no more often than
keeps its CPU use under ``[viewer] cpu_budget`` (a fraction of one core): with software
OpenGL a redraw costs ~30 ms of CPU, with a GPU a few. Every message is still read, so
recording and plots miss nothing when the picture updates less often.

Keys: space pauses the display (the stream is still read, so recording and plots go on),
``r`` starts/stops a TRC recording, ``q``/Esc or closing the window quits; the window's
owner (``on_quit``) turns that into stopping the whole pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from vispy import app, scene

from viewer.feed import FeedUpdate, StreamFeed
from viewer.panels import TEXT, AnglePlots, CameraView, SkeletonView, set_caption
from viewer.record import ViewerRecorder

TITLE = "monomocap live"
BACKGROUND = (0.05, 0.05, 0.07, 1.0)
BORDER = (0.3, 0.3, 0.3, 1.0)
PLOT_BACKGROUND = (0.08, 0.08, 0.1, 1.0)
STALE_S = 1.0  # no pose for this long: the skeleton is hidden, not left frozen
STATUS_S = 0.5  # the status line is refreshed this often (laying out a text costs ~5 ms)
HINTS = "space pause | r record | q quit"


class StatusLine:
    """One left-aligned line of text across the bottom of the window."""

    def __init__(self, grid: scene.widgets.Grid, row: int, col_span: int) -> None:
        self.widget = grid.add_widget(row=row, col=0, col_span=col_span)
        self.widget.height_max = 24
        self._text = scene.visuals.Text(
            "", parent=self.widget, color=TEXT, font_size=10, anchor_x="left"
        )

    @property
    def text(self) -> str:
        return self._text.text

    @text.setter
    def text(self, value: str) -> None:
        set_caption(self._text, value, (8, self.widget.size[1] / 2))


class LiveWindow:
    """3D skeleton, camera image, angle plots and status of one live run."""

    def __init__(
        self,
        feed: StreamFeed,
        config: Mapping[str, Any],
        on_quit: Callable[[], None],
        size: tuple[int, int] = (1280, 720),
    ) -> None:
        settings = config.get("viewer", {})
        self.feed = feed
        self._on_quit = on_quit
        self.canvas = scene.SceneCanvas(title=TITLE, size=size, bgcolor=BACKGROUND, show=False)
        grid = self.canvas.central_widget.add_grid(spacing=4, margin=4)
        view3d = grid.add_view(row=0, col=0, row_span=2, border_color=BORDER)
        view3d.stretch = (3, 1)
        self.skeleton = SkeletonView(view3d)
        image_view = grid.add_view(row=0, col=1)
        image_view.stretch = (2, 3)
        visibility_min = float(config.get("markers", {}).get("visibility_min", 0.3))
        self.camera = CameraView(image_view, visibility_min)
        plots_view = grid.add_view(row=1, col=1, bgcolor=PLOT_BACKGROUND)
        plots_view.stretch = (2, 2)
        # OpenSim coordinates (pose.ik) instead of the ISB angles when [viewer] names some
        self._plot_ik = bool(settings.get("ik_coordinates"))
        plotted = settings.get("ik_coordinates") or settings.get("angles", ["knee_l_flex_deg"])
        self.plots = AnglePlots(plots_view, plotted, float(settings.get("history_s", 5.0)))
        self.status = StatusLine(grid, row=2, col_span=2)
        self.recorder = ViewerRecorder(Path(settings.get("record_dir", "data/output/live")))
        self.paused = False
        self.note = ""  # the last thing the user should know (recording started/saved)
        self._names: list[str] = []
        self.newest: dict[str, Any] | None = None  # the newest pose.markers message
        self._newest_at = 0.0
        self.preview: dict[str, Any] | None = None  # the newest pose.preview message
        self._pipeline: dict[str, Any] = {}
        self._stale = True
        self._dirty = False  # something arrived that is not drawn yet
        self._new_image = False
        self._budget = float(settings.get("cpu_budget", 0.5))
        self._drawn_at = (0.0, 0.0)  # (wall, process CPU) seconds at the last redraw
        self._next_draw = 0.0
        self._status_at = 0.0
        self._quitting = False
        self._quit_requested = False
        self._timer = app.Timer(1.0 / float(settings.get("max_fps", 30.0)), connect=self._on_timer)
        self.canvas.events.key_press.connect(self._on_key)
        self.canvas.events.close.connect(lambda event: self.quit())

    def start(self) -> None:
        """Show the window and start reading the stream."""
        self.canvas.show()
        self._timer.start()

    def request_quit(self) -> None:
        """Quit at the next tick (safe from a signal handler)."""
        self._quit_requested = True

    def _on_timer(self, event: Any) -> None:
        if self._quit_requested:
            self.quit()
        else:
            self.tick(paced=True)

    def tick(self, paced: bool = False) -> None:
        """Read what arrived and redraw if the picture changed; ``paced`` (the timer) waits
        for the CPU budget and refreshes the status line only every ``STATUS_S``."""
        update = self.feed.poll()
        if self.feed.schema is not None and not self._names:
            self._names = list(self.feed.schema["markers"])
            self.skeleton.set_names(self._names)
            columns = "ik_coordinates" if self._plot_ik else "angles"
            self.plots.set_columns(list(self.feed.schema.get(columns, [])))
        self._take(update)
        now = time.monotonic()
        stale = self.newest is None or now - self._newest_at > STALE_S
        self._dirty = self._dirty or bool(update) or stale != self._stale
        if not self.paused and self._dirty and (now >= self._next_draw or not paced):
            self._stale = stale
            self._draw()
            self._pace(now)
        if not paced or now - self._status_at >= STATUS_S:
            self._show_status()

    def _take(self, update: FeedUpdate) -> None:
        for message in update.markers:
            self.recorder.add(message)
        for message in update.ik if self._plot_ik else update.angles:
            values = message["values"] if self._plot_ik else message["angles"]
            self.plots.add(int(message["timestamp_ns"]), values)
        if update.markers:
            self.newest = update.markers[-1]
            self._newest_at = time.monotonic()
        if update.status is not None:
            self._pipeline = update.status
        if update.preview is not None:
            self.preview = update.preview
            self._new_image = True

    def _pace(self, now: float) -> None:
        """Schedule the next redraw so the CPU used per redraw cycle stays within budget."""
        cpu = time.process_time()
        last_wall, last_cpu = self._drawn_at
        self._next_draw = last_wall + (cpu - last_cpu) / self._budget
        self._drawn_at = (now, cpu)

    def _draw(self) -> None:
        self._dirty = False
        markers = self.newest
        if self._stale:
            text = "waiting for the pipeline" if markers is None else "no frames"
            self.skeleton.show(None, text)
        elif not markers["person"]:
            self.skeleton.show(None, "no person")
        else:
            xyz = np.asarray(markers["markers"])
            self.skeleton.follow(xyz)
            self.skeleton.show(xyz)
        preview = self.preview
        if preview is not None:
            rgb = _decode(preview["jpeg"]) if self._new_image else None
            self._new_image = False
            seen = preview["person"] and not self._stale
            landmarks = np.asarray(preview["landmarks_2d"]) if seen else None
            self.camera.show(rgb, landmarks, np.asarray(preview["visibility"]))
        self.plots.redraw()
        self.canvas.update()

    def _show_status(self) -> None:
        text = self._status_text()
        self._status_at = time.monotonic()
        if text != self.status.text:
            self.status.text = text
            self.canvas.update()

    def _status_text(self) -> str:
        s = self._pipeline
        parts = [
            f"source {s.get('source_fps', 0.0):.1f} fps",
            f"pipeline {s.get('published_fps', 0.0):.1f} fps",
            f"latency {s.get('latency_ms_p50', 0.0):.0f} ms",
        ]
        if self._stale:
            parts.append("person: no frames")
        else:
            screen_ms = (time.monotonic_ns() - int(self.newest["timestamp_ns"])) / 1e6
            parts.append(f"on screen {screen_ms:.0f} ms")
            parts.append(f"person: {'yes' if self.newest['person'] else 'no'}")
        if s.get("dropped"):
            parts.append(f"dropped {s['dropped']}")
        if s.get("restarts"):
            parts.append("restarts " + ", ".join(f"{k} {v}" for k, v in s["restarts"].items()))
        if self.recorder.recording:
            parts.append("REC")
        if self.paused:
            parts.append("PAUSED")
        parts.append(self.note or HINTS)
        return " | ".join(parts)

    def _on_key(self, event: Any) -> None:
        key = event.key.name.lower() if event.key is not None else ""
        if key == "space":
            self.paused = not self.paused
            if not self.paused:
                self._draw()
        elif key == "r":
            self.tick()  # act on what has arrived, even if the timer is behind
            self.toggle_recording()
        elif key in ("q", "escape"):
            self.quit()
        self._show_status()

    def toggle_recording(self) -> None:
        """Start recording the received markers, or stop and save the file."""
        if self.recorder.recording:
            path = self.recorder.stop(self.feed.run)
            self.note = f"saved {path}" if path else "recording too short: nothing saved"
        elif not self._names or self.newest is None:
            self.note = "nothing to record yet"
        else:
            path = self.recorder.start(str(self.newest["source_id"]), self._names)
            self.note = f"recording to {path}"

    def quit(self) -> None:
        """Save a running recording, stop reading and let the owner end the run (once)."""
        if self._quitting:
            return
        self._quitting = True
        self._timer.stop()
        if self.recorder.recording:
            self.toggle_recording()
        self.feed.close()
        self.canvas.close()
        self._on_quit()


def _decode(jpeg: bytes) -> np.ndarray | None:
    """RGB pixels of a JPEG (None if it does not decode)."""
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else np.ascontiguousarray(bgr[..., ::-1])
