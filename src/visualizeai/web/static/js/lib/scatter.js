// Scatter-plot math for the query–key map: fitting points into a box with equal units on both axes, and
// finding the point under the pointer. Pure functions; no DOM.

/** Bounds {x0, x1, y0, y1} of every [x, y] in the given arrays (a unit box around one point or none). */
export function bounds(...pointArrays) {
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const points of pointArrays) {
    for (const [x, y] of points) {
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  if (!(x1 >= x0)) return { x0: -1, x1: 1, y0: -1, y1: 1 };
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - 1, y1 + 1];
  return { x0, x1, y0, y1 };
}

/**
 * A transform from data to a `width` × `height` box with `pad` px margins and the same scale on both axes
 * (distances in the picture mean the same in every direction); y grows upwards. Returns {toScreen([x, y]) →
 * [sx, sy], scale}.
 */
export function fitBox(box, width, height, pad = 12) {
  const scale = Math.min((width - 2 * pad) / (box.x1 - box.x0), (height - 2 * pad) / (box.y1 - box.y0));
  const cx = (box.x0 + box.x1) / 2;
  const cy = (box.y0 + box.y1) / 2;
  return {
    scale,
    toScreen: ([x, y]) => [width / 2 + (x - cx) * scale, height / 2 - (y - cy) * scale],
  };
}

/**
 * The index of the screen point nearest to (sx, sy) within `radius` px, or -1. `screen` is a Float32Array of
 * x, y pairs.
 */
export function nearest(screen, sx, sy, radius) {
  let best = -1;
  let bestD = radius * radius;
  for (let i = 0; i < screen.length / 2; i++) {
    const dx = screen[2 * i] - sx;
    const dy = screen[2 * i + 1] - sy;
    const d = dx * dx + dy * dy;
    if (d < bestD || (best === -1 && d === bestD)) {
      bestD = d;
      best = i;
    }
  }
  return best;
}
