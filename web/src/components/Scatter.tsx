// A WebGL point scatter that stays fluid at 50,000+ points: one draw call, buffers rebuilt only when colours or
// the selection change, pan/zoom as two uniforms. Lasso, hover and click are handled on a 2-D overlay canvas.
// Falls back to Canvas 2D where WebGL is unavailable.

import { useEffect, useMemo, useRef, useState } from "react";
import { drawGlyph, GLYPH_LIMIT, glyphRadius, hasGlyphs, visibleIndices, type PreparedGlyphs } from "../glyphs";
import { PointGrid } from "../points";
import { rasterise, softwareWebGL } from "../raster";
import { lassoSelect, type Point } from "../selection";

export interface ScatterProps {
  xs: Float32Array;
  ys: Float32Array;
  rgb: Uint8Array;
  /** 1 = selected (drawn in colour, on top), 0 = not (drawn faint grey). */
  mask: Uint8Array;
  hasSelection: boolean;
  focused: number | null;
  hovered: number | null;
  mode: "lasso" | "pan";
  onLasso: (indices: number[], additive: boolean) => void;
  onHover: (index: number | null) => void;
  onClick: (index: number) => void;
  resetKey: number;
  height: number;
  /** Glyph inputs (faces, acoustic roses): drawn instead of dots when at most GLYPH_LIMIT points are in view. */
  glyphs?: PreparedGlyphs | null;
  /** Told whether few enough points are in view for glyphs (so the caller can fetch their inputs lazily). */
  onGlyphRange?: (fewEnough: boolean) => void;
}

/** What the glyph layer drew last (also on `window.__modalensGlyphs` and the scatter's data attributes). */
export interface GlyphFrame {
  visible: number | null;
  drawn: number;
  ms: number;
}

interface View {
  k: number;
  tx: number;
  ty: number;
}

const VS = `
attribute vec2 a_pos;
attribute vec4 a_color;
uniform vec2 u_scale;
uniform vec2 u_offset;
uniform float u_size;
varying vec4 v_color;
void main() {
  gl_Position = vec4(a_pos * u_scale + u_offset, 0.0, 1.0);
  gl_PointSize = u_size;
  v_color = a_color;
}`;
const FS = `
precision mediump float;
varying vec4 v_color;
void main() {
  vec2 d = gl_PointCoord - vec2(0.5);
  float r = dot(d, d);
  if (r > 0.25) discard;
  gl_FragColor = vec4(v_color.rgb, v_color.a * smoothstep(0.25, 0.16, r));
}`;

function compile(gl: WebGLRenderingContext): WebGLProgram {
  const prog = gl.createProgram()!;
  for (const [type, src] of [
    [gl.VERTEX_SHADER, VS],
    [gl.FRAGMENT_SHADER, FS],
  ] as const) {
    const sh = gl.createShader(type)!;
    gl.shaderSource(sh, src);
    gl.compileShader(sh);
    if (!gl.getShaderParameter(sh, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(sh) ?? "shader error");
    gl.attachShader(prog, sh);
  }
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog) ?? "link error");
  return prog;
}

/** Data extent (1st to 99th percentile, so a few outliers do not shrink the cloud) mapped to clip space. */
function normaliser(xs: Float32Array, ys: Float32Array) {
  const range = (v: Float32Array): [number, number] => {
    const f = v.filter(Number.isFinite).sort(); // typed: a native numeric sort (500,000 points in tens of ms)
    if (f.length === 0) return [-1, 1];
    const lo = f[Math.floor(0.01 * (f.length - 1))];
    const hi = f[Math.ceil(0.99 * (f.length - 1))];
    const pad = (hi - lo) * 0.08 || 1;
    return [Math.max(f[0], lo - pad), Math.min(f[f.length - 1], hi + pad)];
  };
  const [x0, x1] = range(xs);
  const [y0, y1] = range(ys);
  const span = Math.max(x1 - x0, y1 - y0) || 1;
  return { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, s: 1.9 / span };
}

export function Scatter(props: ScatterProps) {
  const glCanvas = useRef<HTMLCanvasElement>(null);
  const overlay = useRef<HTMLCanvasElement>(null);
  const glyphCanvas = useRef<HTMLCanvasElement>(null);
  const glyphsOnCanvas = useRef(false); // an empty layer needs no clearing
  const fewEnough = useRef<boolean | null>(null);
  const wrap = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(600);
  const [view, setView] = useState<View>({ k: 1, tx: 0, ty: 0 });
  const [lasso, setLasso] = useState<Point[] | null>(null);
  const [fallback, setFallback] = useState(false); // dots drawn by the CPU (raster.ts), not WebGL
  const cpuImage = useRef<ImageData | null>(null);
  const drag = useRef<{ x: number; y: number; view: View; moved: boolean; shift: boolean } | null>(null);
  const glState = useRef<{ gl: WebGLRenderingContext; prog: WebGLProgram; pos: WebGLBuffer; col: WebGLBuffer } | null>(null);
  const norm = useMemo(() => normaliser(props.xs, props.ys), [props.xs, props.ys]);
  const grid = useMemo(() => new PointGrid(props.xs, props.ys), [props.xs, props.ys]);
  const height = props.height;
  const dpr = typeof window !== "undefined" ? window.devicePixelRatio || 1 : 1;
  const n = props.xs.length;
  const pointSize = (n > 20000 ? 2.6 : n > 3000 ? 3.6 : 5.5) * Math.min(2.5, Math.sqrt(view.k));

  useEffect(() => setView({ k: 1, tx: 0, ty: 0 }), [props.resetKey]);

  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setWidth(Math.max(200, el.clientWidth)));
    ro.observe(el);
    setWidth(Math.max(200, el.clientWidth));
    return () => ro.disconnect();
  }, []);

  // data <-> screen (CSS pixels)
  const aspect = width / height;
  const sx = (norm.s * view.k) / Math.max(aspect, 1);
  const sy = norm.s * view.k * Math.min(aspect, 1);
  const toScreen = (x: number, y: number): Point => [((x - norm.cx) * sx + view.tx + 1) * 0.5 * width, (1 - ((y - norm.cy) * sy + view.ty)) * 0.5 * height];
  const toData = (px: number, py: number): Point => [((px / width) * 2 - 1 - view.tx) / sx + norm.cx, ((1 - (py / height) * 2) - view.ty) / sy + norm.cy];

  // Draw order: unselected first (faint), selected on top, as interleaved buffers.
  const buffers = useMemo(() => {
    const pos = new Float32Array(n * 2);
    const col = new Uint8Array(n * 4);
    let k = 0;
    const put = (i: number, sel: boolean) => {
      pos[2 * k] = props.xs[i];
      pos[2 * k + 1] = props.ys[i];
      if (sel) {
        col[4 * k] = props.rgb[3 * i];
        col[4 * k + 1] = props.rgb[3 * i + 1];
        col[4 * k + 2] = props.rgb[3 * i + 2];
        col[4 * k + 3] = 220;
      } else {
        col[4 * k] = 190;
        col[4 * k + 1] = 195;
        col[4 * k + 2] = 202;
        col[4 * k + 3] = 110;
      }
      k++;
    };
    if (props.hasSelection) {
      for (let i = 0; i < n; i++) if (!props.mask[i]) put(i, false);
      for (let i = 0; i < n; i++) if (props.mask[i]) put(i, true);
    } else for (let i = 0; i < n; i++) put(i, true);
    return { pos, col };
  }, [props.xs, props.ys, props.rgb, props.mask, props.hasSelection, n]);

  // WebGL set-up once; where WebGL is itself a software rasteriser the CPU path below draws faster (raster.ts)
  useEffect(() => {
    if (softwareWebGL()) {
      setFallback(true);
      return;
    }
    const canvas = glCanvas.current!;
    // No multisampling: the fragment shader already smooths each dot's edge, and MSAA multiplies the per-frame
    // cost of a software rasteriser (SwiftShader, where there is no GPU) for no visible gain at these point sizes.
    const gl = canvas.getContext("webgl", { antialias: false, premultipliedAlpha: false, preserveDrawingBuffer: true });
    if (!gl) {
      setFallback(true);
      return;
    }
    try {
      const prog = compile(gl);
      glState.current = { gl, prog, pos: gl.createBuffer()!, col: gl.createBuffer()! };
    } catch {
      setFallback(true);
    }
  }, []);

  useEffect(() => {
    const s = glState.current;
    if (!s) return;
    const { gl } = s;
    gl.bindBuffer(gl.ARRAY_BUFFER, s.pos);
    gl.bufferData(gl.ARRAY_BUFFER, buffers.pos, gl.STATIC_DRAW);
    gl.bindBuffer(gl.ARRAY_BUFFER, s.col);
    gl.bufferData(gl.ARRAY_BUFFER, buffers.col, gl.STATIC_DRAW);
  }, [buffers, fallback]);

  // draw
  useEffect(() => {
    const canvas = glCanvas.current!;
    // assigning a canvas size, even the same one, reallocates its buffers: only when it changes
    const cw = Math.round(width * dpr);
    const ch = Math.round(height * dpr);
    if (canvas.width !== cw) canvas.width = cw;
    if (canvas.height !== ch) canvas.height = ch;
    const s = glState.current;
    if (fallback || !s) {
      const ctx = canvas.getContext("2d", { alpha: false }); // opaque: cheaper to composite
      if (!ctx) return;
      let img = cpuImage.current;
      if (!img || img.width !== cw || img.height !== ch) img = cpuImage.current = ctx.createImageData(cw, ch);
      const clip = { sx, sy, ox: -norm.cx * sx + view.tx, oy: -norm.cy * sy + view.ty };
      rasterise(img, buffers.pos, buffers.col, n, clip, pointSize * dpr, [252, 252, 253]); // .scatter's background
      ctx.putImageData(img, 0, 0);
      return;
    }
    const { gl, prog } = s;
    gl.viewport(0, 0, canvas.width, canvas.height);
    gl.clearColor(1, 1, 1, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    gl.useProgram(prog);
    const aPos = gl.getAttribLocation(prog, "a_pos");
    const aCol = gl.getAttribLocation(prog, "a_color");
    gl.bindBuffer(gl.ARRAY_BUFFER, s.pos);
    gl.enableVertexAttribArray(aPos);
    gl.vertexAttribPointer(aPos, 2, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, s.col);
    gl.enableVertexAttribArray(aCol);
    gl.vertexAttribPointer(aCol, 4, gl.UNSIGNED_BYTE, true, 0, 0);
    gl.uniform2f(gl.getUniformLocation(prog, "u_scale"), sx, sy);
    gl.uniform2f(gl.getUniformLocation(prog, "u_offset"), -norm.cx * sx + view.tx, -norm.cy * sy + view.ty);
    gl.uniform1f(gl.getUniformLocation(prog, "u_size"), pointSize * dpr);
    gl.drawArrays(gl.POINTS, 0, n);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [buffers, view, width, height, fallback, dpr, pointSize]);

  // glyph layer (level of detail): when at most GLYPH_LIMIT points are in view, each becomes a face / acoustic rose
  useEffect(() => {
    const t0 = performance.now();
    const c = glyphCanvas.current!;
    const cw = Math.round(width * dpr);
    const ch = Math.round(height * dpr);
    const resized = c.width !== cw || c.height !== ch;
    if (c.width !== cw) c.width = cw; // setting a size reallocates (and clears) the canvas: only when it changes
    if (c.height !== ch) c.height = ch;
    const ctx = c.getContext("2d");
    if (ctx && !resized && glyphsOnCanvas.current) {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, cw, ch);
    }
    const [x0, y1] = toData(0, 0);
    const [x1, y0] = toData(width, height);
    const visible = visibleIndices(props.xs, props.ys, x0, x1, y0, y1, GLYPH_LIMIT);
    const few = visible !== null;
    if (fewEnough.current !== few) {
      fewEnough.current = few;
      props.onGlyphRange?.(few);
    }
    let drawn = 0;
    if (ctx && visible && hasGlyphs(props.glyphs ?? null) && props.glyphs!.n === n) {
      const g = props.glyphs!;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      const r = glyphRadius(width, height, visible.length);
      // unselected first and faint, selected on top, as the dots are drawn
      for (const pass of props.hasSelection ? [0, 1] : [1]) {
        for (let k = 0; k < visible.length; k++) {
          const i = visible[k];
          if (props.hasSelection && (props.mask[i] ? 1 : 0) !== pass) continue;
          const [px, py] = toScreen(props.xs[i], props.ys[i]);
          const stroke = pass ? `rgb(${props.rgb[3 * i]},${props.rgb[3 * i + 1]},${props.rgb[3 * i + 2]})` : "#b4b8be";
          drawGlyph(ctx, g, i, px, py, r, stroke, pass ? 1 : 0.35);
          drawn++;
        }
      }
    }
    glyphsOnCanvas.current = drawn > 0;
    const frame: GlyphFrame = { visible: visible ? visible.length : null, drawn, ms: performance.now() - t0 };
    const el = wrap.current;
    if (el) {
      el.dataset.glyphs = String(drawn);
      el.dataset.glyphMs = frame.ms.toFixed(2);
    }
    (window as unknown as { __modalensGlyphs?: GlyphFrame }).__modalensGlyphs = frame;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [view, width, height, dpr, props.xs, props.ys, props.glyphs, props.rgb, props.mask, props.hasSelection]);

  // overlay: lasso path, hovered and focused rings
  useEffect(() => {
    const c = overlay.current!;
    if (c.width !== Math.round(width * dpr)) c.width = Math.round(width * dpr); // a resize reallocates: only on change
    if (c.height !== Math.round(height * dpr)) c.height = Math.round(height * dpr);
    const ctx = c.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const ring = (i: number | null, color: string, r: number) => {
      if (i == null || i >= n || !Number.isFinite(props.xs[i])) return;
      const [px, py] = toScreen(props.xs[i], props.ys[i]);
      ctx.beginPath();
      ctx.arc(px, py, r, 0, 2 * Math.PI);
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = color;
      ctx.stroke();
    };
    ring(props.focused, "#111", 8);
    ring(props.hovered, "#555", 6);
    if (lasso && lasso.length > 1) {
      ctx.beginPath();
      lasso.forEach(([x, y], i) => {
        const [px, py] = toScreen(x, y);
        if (i === 0) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      });
      ctx.closePath();
      ctx.fillStyle = "rgba(40,60,90,0.08)";
      ctx.fill();
      ctx.setLineDash([4, 3]);
      ctx.strokeStyle = "#333";
      ctx.lineWidth = 1.2;
      ctx.stroke();
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [lasso, props.focused, props.hovered, view, width, height, dpr, props.xs, props.ys]);

  // React's wheel listener is passive: without this the page scrolls away under the pointer while zooming out
  useEffect(() => {
    const el = overlay.current;
    if (!el) return;
    const stop = (e: WheelEvent) => e.preventDefault();
    el.addEventListener("wheel", stop, { passive: false });
    return () => el.removeEventListener("wheel", stop);
  }, []);

  const local = (e: React.PointerEvent | React.WheelEvent): Point => {
    const r = overlay.current!.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  const pick = (px: number, py: number): number | null => {
    const [x, y] = toData(px, py);
    return grid.nearest(x, y, 7 / (sx * 0.5 * width));
  };

  const onPointerDown = (e: React.PointerEvent) => {
    const [px, py] = local(e);
    (e.target as Element).setPointerCapture?.(e.pointerId);
    drag.current = { x: px, y: py, view, moved: false, shift: e.shiftKey };
    if (props.mode === "lasso" && !e.altKey) setLasso([toData(px, py)]);
  };
  const onPointerMove = (e: React.PointerEvent) => {
    const [px, py] = local(e);
    const d = drag.current;
    if (!d) {
      props.onHover(pick(px, py));
      return;
    }
    if (Math.hypot(px - d.x, py - d.y) > 3) d.moved = true;
    if (lasso) setLasso([...lasso, toData(px, py)]);
    else setView({ ...d.view, tx: d.view.tx + ((px - d.x) / width) * 2, ty: d.view.ty - ((py - d.y) / height) * 2 });
  };
  const onPointerUp = (e: React.PointerEvent) => {
    const d = drag.current;
    drag.current = null;
    const [px, py] = local(e);
    if (d && !d.moved) {
      const hit = pick(px, py);
      if (hit != null) props.onClick(hit);
    } else if (lasso && lasso.length > 2) {
      props.onLasso(lassoSelect(props.xs, props.ys, lasso), d?.shift ?? false);
    }
    setLasso(null);
  };
  const onWheel = (e: React.WheelEvent) => {
    const [px, py] = local(e);
    const f = Math.exp(-e.deltaY * 0.0015);
    const k = Math.min(200, Math.max(0.5, view.k * f));
    const g = k / view.k;
    const cx = (px / width) * 2 - 1;
    const cy = 1 - (py / height) * 2;
    setView({ k, tx: cx - (cx - view.tx) * g, ty: cy - (cy - view.ty) * g });
  };

  return (
    <div className="scatter" ref={wrap} style={{ height }} data-glyphs="0">
      <canvas ref={glCanvas} style={{ width, height }} className="scatter-gl" aria-hidden />
      <canvas ref={glyphCanvas} style={{ width, height, pointerEvents: "none" }} className="scatter-glyphs" aria-hidden data-testid="scatter-glyphs" />
      <canvas
        ref={overlay}
        style={{ width, height, cursor: props.mode === "pan" ? "grab" : "crosshair", touchAction: "none" }}
        className="scatter-overlay"
        role="img"
        aria-label={`scatter of ${n.toLocaleString()} instances; drag to lasso, wheel to zoom`}
        data-testid="scatter-overlay"
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={onPointerUp}
        onPointerLeave={() => props.onHover(null)}
        onWheel={onWheel}
      />
    </div>
  );
}
