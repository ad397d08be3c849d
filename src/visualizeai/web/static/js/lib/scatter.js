// Scatter plots of queries and keys (the query–key maps of one text and of a corpus): fitting points into a box
// with equal units on both axes, finding the point under the pointer, and drawing the points on a 2-D context.
// No DOM.

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

/**
 * Screen positions of `queries` then `keys` ([[x, y]] each, the same count) fitted into `width` × `height`:
 * a Float32Array of x, y pairs (query i at 2i, key i at 2(m + i)), the array `nearest` searches.
 */
export function screenPoints(queries, keys, width, height) {
  const fit = fitBox(bounds(queries, keys), width, height);
  const screen = new Float32Array(2 * (queries.length + keys.length));
  [...queries, ...keys].forEach((p, i) => {
    const [x, y] = fit.toScreen(p);
    screen[2 * i] = x;
    screen[2 * i + 1] = y;
  });
  return screen;
}

/** Draw `m` keys as rings, then `m` queries as dots on top, token i in colour `color(i)`, on a white ground. */
export function drawQueryKeyPoints(c2d, screen, m, color, radius, width, height) {
  c2d.fillStyle = "#fff";
  c2d.fillRect(0, 0, width, height);
  c2d.lineWidth = 1.2;
  for (let i = 0; i < m; i++) {
    c2d.strokeStyle = color(i);
    c2d.beginPath();
    c2d.arc(screen[2 * (m + i)], screen[2 * (m + i) + 1], radius, 0, 2 * Math.PI);
    c2d.stroke();
  }
  for (let i = 0; i < m; i++) {
    c2d.fillStyle = color(i);
    c2d.beginPath();
    c2d.arc(screen[2 * i], screen[2 * i + 1], radius, 0, 2 * Math.PI);
    c2d.fill();
  }
}
