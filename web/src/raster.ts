// A software point rasteriser for the projection scatter, used where WebGL is itself software (SwiftShader,
// llvmpipe: no GPU) or missing. SwiftShader spends about a microsecond per point sprite (40 ms a frame at 50,000
// points, 430 ms at 500,000, measured in headless Chromium on 2 cores); stamping precomputed dots into an ImageData
// costs a few nanoseconds per pixel, so every zoom, colour change and lasso redraw stays within a frame or two.
// Draws what the WebGL shader draws: round dots with a smoothed edge, alpha-blended in buffer order.

export interface RasterTarget {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

/** Clip space = data * scale + offset (the WebGL uniforms), then clip -> pixel as the viewport does. */
export interface RasterView {
  sx: number;
  sy: number;
  ox: number;
  oy: number;
}

/** Pixel offsets and coverage of a dot `size` pixels wide, as the fragment shader shades it (smoothstep edge). */
export function dotStamp(size: number): { dx: Int32Array; dy: Int32Array; cover: Float32Array } {
  const s = Math.max(1, size);
  const reach = Math.ceil(s / 2);
  const dx: number[] = [];
  const dy: number[] = [];
  const cover: number[] = [];
  for (let y = -reach; y <= reach; y++)
    for (let x = -reach; x <= reach; x++) {
      const r = (x * x + y * y) / (s * s); // dot(d, d) of gl_PointCoord - 0.5 at this pixel's centre
      if (r > 0.25) continue;
      const t = Math.min(1, Math.max(0, (r - 0.25) / (0.16 - 0.25)));
      const c = t * t * (3 - 2 * t);
      if (c <= 0) continue;
      dx.push(x);
      dy.push(y);
      cover.push(c);
    }
  if (cover.length === 0) return { dx: Int32Array.of(0), dy: Int32Array.of(0), cover: Float32Array.of(1) };
  return { dx: Int32Array.from(dx), dy: Int32Array.from(dy), cover: Float32Array.from(cover) };
}

/**
 * Fill `target` with the opaque background `bg` and draw `n` dots: position (pos[2k], pos[2k+1]) in data units,
 * colour col[4k..4k+3] (RGBA, straight alpha), `size` pixels wide, later dots over earlier ones.
 */
export function rasterise(
  target: RasterTarget,
  pos: ArrayLike<number>,
  col: ArrayLike<number>,
  n: number,
  view: RasterView,
  size: number,
  bg: [number, number, number],
): void {
  const { data, width: w, height: h } = target;
  for (let i = 0; i < data.length; i += 4) {
    data[i] = bg[0];
    data[i + 1] = bg[1];
    data[i + 2] = bg[2];
    data[i + 3] = 255;
  }
  const { dx, dy, cover } = dotStamp(size);
  const m = cover.length;
  const reach = Math.ceil(Math.max(1, size) / 2);
  const ax = view.sx * 0.5 * w;
  const bx = (view.ox + 1) * 0.5 * w;
  const ay = -view.sy * 0.5 * h;
  const by = (1 - view.oy) * 0.5 * h;
  for (let k = 0; k < n; k++) {
    const cx = Math.floor(pos[2 * k] * ax + bx);
    const cy = Math.floor(pos[2 * k + 1] * ay + by);
    // NaN positions fail these tests too
    if (!(cx >= -reach && cx < w + reach && cy >= -reach && cy < h + reach)) continue;
    const a0 = col[4 * k + 3] / 255;
    if (a0 <= 0) continue;
    const r = col[4 * k];
    const g = col[4 * k + 1];
    const b = col[4 * k + 2];
    const inside = cx >= reach && cx < w - reach && cy >= reach && cy < h - reach;
    for (let j = 0; j < m; j++) {
      const x = cx + dx[j];
      const y = cy + dy[j];
      if (!inside && (x < 0 || x >= w || y < 0 || y >= h)) continue;
      const a = a0 * cover[j];
      const p = (y * w + x) * 4;
      data[p] += (r - data[p]) * a;
      data[p + 1] += (g - data[p + 1]) * a;
      data[p + 2] += (b - data[p + 2]) * a;
    }
  }
}

let software: boolean | undefined;

/** Whether this browser's WebGL is a software rasteriser (or absent): then the CPU draws the dots faster. */
export function softwareWebGL(): boolean {
  if (software !== undefined) return software;
  try {
    const gl = document.createElement("canvas").getContext("webgl");
    if (!gl) return (software = true);
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER) ?? "");
    software = /swiftshader|llvmpipe|softpipe|software|basic render/i.test(name);
    gl.getExtension("WEBGL_lose_context")?.loseContext();
  } catch {
    software = true;
  }
  return software;
}
