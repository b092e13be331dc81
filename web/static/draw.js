// The pages' two drawings, on plain canvases (no third-party code): a 3D skeleton the user
// orbits with the mouse, and line plots of angles over time with a cursor.
"use strict";

const SIDE_COLOURS = { "-1": "#3d8cff", "1": "#ff5a2e", "0": "#d9d9d9" };

// Fetch JSON; throw an Error carrying the server's one-line reason.
async function fetchJSON(url, options) {
  const answer = await fetch(url, options);
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(body.error || `${answer.status} ${answer.statusText}`);
  return body;
}

class Skeleton3D {
  // canvas: where to draw; skeleton: {bones: [[a, b]], sides: {name: -1|0|1}}; names: the
  // markers' order in each frame.
  constructor(canvas, skeleton, names) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.setNames(skeleton, names);
    this.yaw = 0.6; this.pitch = 0.25; this.distance = 4.0;
    this.centre = [0, 0.9, 0];
    this.frame = null;
    this.drawn = 0; // frames drawn so far (what the benchmark counts)
    let last = null;
    canvas.addEventListener("pointerdown", (e) => { last = [e.clientX, e.clientY]; canvas.setPointerCapture(e.pointerId); });
    canvas.addEventListener("pointerup", () => { last = null; });
    canvas.addEventListener("pointermove", (e) => {
      if (!last) return;
      this.yaw += (e.clientX - last[0]) * 0.01;
      this.pitch = Math.max(-1.4, Math.min(1.4, this.pitch + (e.clientY - last[1]) * 0.01));
      last = [e.clientX, e.clientY];
      this.draw(this.frame);
    });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.distance = Math.max(1, Math.min(30, this.distance * Math.exp(e.deltaY * 0.001)));
      this.draw(this.frame);
    }, { passive: false });
  }

  setNames(skeleton, names) {
    const index = Object.fromEntries(names.map((n, i) => [n, i]));
    this.bones = skeleton.bones.filter(([a, b]) => a in index && b in index)
      .map(([a, b]) => [index[a], index[b], SIDE_COLOURS[skeleton.sides[a] || 0]]);
    this.colours = names.map((n) => SIDE_COLOURS[skeleton.sides[n] || 0]);
  }

  // Look at the middle of these frames, from far enough to see them all.
  fit(frames) {
    const pts = frames.flat().filter((p) => p && p[0] !== null);
    if (!pts.length) return;
    const lo = [0, 1, 2].map((k) => Math.min(...pts.map((p) => p[k])));
    const hi = [0, 1, 2].map((k) => Math.max(...pts.map((p) => p[k])));
    this.centre = lo.map((v, k) => (v + hi[k]) / 2);
    this.distance = Math.max(3.5, 2.0 * Math.max(...hi.map((v, k) => v - lo[k])));
  }

  project(p) {
    const [cx, cy, cz] = this.centre;
    const x = p[0] - cx, y = p[1] - cy, z = p[2] - cz;
    const cs = Math.cos(this.yaw), sn = Math.sin(this.yaw);
    const x1 = cs * x - sn * z, z1 = sn * x + cs * z;
    const cp = Math.cos(this.pitch), sp = Math.sin(this.pitch);
    const y2 = cp * y - sp * z1, z2 = sp * y + cp * z1;
    const depth = this.distance - z2;
    if (depth < 0.05) return null;
    const f = 1.2 * Math.min(this.canvas.width, this.canvas.height);
    return [this.canvas.width / 2 + (f * x1) / depth, this.canvas.height / 2 - (f * y2) / depth];
  }

  resize() {
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    if (this.canvas.width !== w || this.canvas.height !== h) { this.canvas.width = w; this.canvas.height = h; }
  }

  // frame: [[x, y, z] | [null, null, null]] per marker, metres, Y up, floor at Y = 0.
  draw(frame) {
    this.frame = frame;
    this.resize();
    const ctx = this.ctx;
    ctx.fillStyle = "#15191f";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.strokeStyle = "#2c333d"; ctx.lineWidth = 1;
    for (let i = -5; i <= 5; i++) { // the floor: a 5 m grid around the subject
      for (const [a, b] of [[[i * 0.5, 0, -2.5], [i * 0.5, 0, 2.5]], [[-2.5, 0, i * 0.5], [2.5, 0, i * 0.5]]]) {
        const pa = this.project([a[0] + this.centre[0], 0, a[2] + this.centre[2]]);
        const pb = this.project([b[0] + this.centre[0], 0, b[2] + this.centre[2]]);
        if (pa && pb) { ctx.beginPath(); ctx.moveTo(...pa); ctx.lineTo(...pb); ctx.stroke(); }
      }
    }
    if (frame) {
      const pts = frame.map((p) => (p && p[0] !== null ? this.project(p) : null));
      ctx.lineWidth = 3;
      for (const [a, b, colour] of this.bones) {
        if (!pts[a] || !pts[b]) continue;
        ctx.strokeStyle = colour; ctx.beginPath(); ctx.moveTo(...pts[a]); ctx.lineTo(...pts[b]); ctx.stroke();
      }
      pts.forEach((p, i) => {
        if (!p) return;
        ctx.fillStyle = this.colours[i]; ctx.beginPath(); ctx.arc(p[0], p[1], 3, 0, 2 * Math.PI); ctx.fill();
      });
    }
    this.drawn += 1;
  }
}

const PLOT_COLOURS = ["#2a6fdb", "#e8710a", "#2e9d5b", "#b3261e", "#8e44ad", "#00897b"];

class LinePlot {
  constructor(canvas) { this.canvas = canvas; this.ctx = canvas.getContext("2d"); }

  // series: [{label, times, values}] (values may hold null); cursor: a time or null;
  // unit: "°" for angles, " m" for OpenSim's translations.
  draw(series, cursor, range, unit = "°") {
    const c = this.canvas, ctx = this.ctx;
    if (c.width !== c.clientWidth || c.height !== c.clientHeight) { c.width = c.clientWidth; c.height = c.clientHeight; }
    ctx.clearRect(0, 0, c.width, c.height);
    const all = series.flatMap((s) => s.values.filter((v) => v !== null && Number.isFinite(v)));
    const times = series.flatMap((s) => s.times);
    if (!all.length || !times.length) {
      ctx.fillStyle = "#667"; ctx.font = "13px system-ui"; ctx.fillText("no values", 50, 30); return;
    }
    let lo = Math.min(...all), hi = Math.max(...all);
    const least = unit === "°" ? 10 : 0.1; // the smallest span shown
    if (hi - lo < least) { const m = (hi + lo) / 2; lo = m - least / 2; hi = m + least / 2; }
    const [t0, t1] = range || [Math.min(...times), Math.max(...times)];
    const L = 44, R = 8, T = 8, B = 22, w = c.width - L - R, h = c.height - T - B;
    const X = (t) => L + (w * (t - t0)) / Math.max(t1 - t0, 1e-6);
    const Y = (v) => T + h - (h * (v - lo)) / (hi - lo);
    ctx.strokeStyle = "#ccd"; ctx.fillStyle = "#556"; ctx.font = "11px system-ui"; ctx.lineWidth = 1;
    for (const v of [lo, (lo + hi) / 2, hi]) {
      ctx.beginPath(); ctx.moveTo(L, Y(v)); ctx.lineTo(L + w, Y(v)); ctx.stroke();
      ctx.fillText(v.toFixed(unit === "°" ? 0 : 2) + unit, 4, Y(v) + 4);
    }
    ctx.fillText(`${t0.toFixed(1)} s`, L, c.height - 6);
    ctx.fillText(`${t1.toFixed(1)} s`, L + w - 34, c.height - 6);
    series.forEach((s, k) => {
      ctx.strokeStyle = PLOT_COLOURS[k % PLOT_COLOURS.length]; ctx.lineWidth = 2; ctx.beginPath();
      let pen = false;
      s.times.forEach((t, i) => {
        const v = s.values[i];
        if (v === null || !Number.isFinite(v) || t < t0) { pen = false; return; }
        if (pen) ctx.lineTo(X(t), Y(v)); else ctx.moveTo(X(t), Y(v));
        pen = true;
      });
      ctx.stroke();
      ctx.fillStyle = ctx.strokeStyle; ctx.fillText(s.label, L + 8 + 120 * k, T + 12);
    });
    if (cursor !== null && cursor !== undefined) {
      ctx.strokeStyle = "#1d232b"; ctx.lineWidth = 1; ctx.beginPath();
      ctx.moveTo(X(cursor), T); ctx.lineTo(X(cursor), T + h); ctx.stroke();
    }
  }
}

// Angle columns grouped by joint: "knee_r_flex_deg" -> group "knee_r".
function angleGroups(names) {
  const groups = {};
  for (const name of names) {
    const m = name.match(/^(.*)_(flex|abd|rot|tilt|list)_deg$/);
    const group = m ? m[1] : name;
    (groups[group] = groups[group] || []).push(name);
  }
  return groups;
}
