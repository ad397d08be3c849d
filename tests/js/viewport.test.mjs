// Unit tests for the zoom/pan math of the heatmap: `node --test tests/js/viewport.test.mjs`.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  FULL_VIEW,
  cellAt,
  cellSize,
  cellToScreen,
  centerOn,
  clampView,
  fitRange,
  maxZoomFor,
  minimapBox,
  panBy,
  sameView,
  screenToCell,
  viewFromMinimap,
  visibleCells,
  visibleRange,
  wheelFactor,
  zoomAbout,
} from "../../src/visualizeai/web/static/js/lib/viewport.js";

const near = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

test("cell size and visible cells", () => {
  assert.equal(cellSize(FULL_VIEW, 800, 16000), 0.05);
  assert.equal(cellSize({ zoom: 100, x0: 0, y0: 0 }, 800, 16000), 5);
  assert.equal(visibleCells({ zoom: 4, x0: 0, y0: 0 }, 512), 128);
});

test("screen and cell coordinates are inverse transforms", () => {
  const view = { zoom: 8, x0: 100.25, y0: 3000.5 };
  const { row, col } = screenToCell(view, 123, 456, 800, 16000);
  const back = cellToScreen(view, row, col, 800, 16000);
  near(back.x, 123);
  near(back.y, 456);
  assert.deepEqual(cellAt(view, 0, 0, 800, 16000), { row: 3000, col: 100 });
  assert.equal(cellAt(view, -1, 0, 800, 16000), null);
  assert.equal(cellAt(view, 0, 800, 800, 16000), null);
});

test("zoom about a point keeps that point under the pointer", () => {
  const n = 16000;
  const grid = 800;
  const maxZoom = maxZoomFor(n, grid);
  let view = FULL_VIEW;
  const px = 300;
  const py = 500;
  const before = screenToCell(view, px, py, grid, n);
  view = zoomAbout(view, 3, px, py, grid, n, maxZoom);
  near(view.zoom, 3);
  const after = screenToCell(view, px, py, grid, n);
  near(after.row, before.row, 1e-6);
  near(after.col, before.col, 1e-6);
  view = zoomAbout(view, 1e9, px, py, grid, n, maxZoom); // clamped to the largest zoom
  near(view.zoom, maxZoom);
  near(cellSize(view, grid, n), 48);
  view = zoomAbout(view, 1e-9, px, py, grid, n, maxZoom); // and back to everything
  assert.deepEqual(view, { zoom: 1, x0: 0, y0: 0 });
});

test("zooming near an edge is clamped to the matrix", () => {
  const view = zoomAbout(FULL_VIEW, 2, 0, 0, 800, 1000, 100);
  assert.deepEqual(view, { zoom: 2, x0: 0, y0: 0 });
  const out = zoomAbout({ zoom: 4, x0: 750, y0: 750 }, 0.5, 800, 800, 800, 1000, 100);
  assert.equal(out.zoom, 2);
  assert.equal(out.x0, 500); // the window ends at the matrix's last column
});

test("the largest zoom: a 48 px cell or 4 visible cells", () => {
  near(maxZoomFor(16000, 800), 960);
  assert.equal(maxZoomFor(10, 100), 2.5); // 10 cells of 10 px: stop at 4 visible
  assert.equal(maxZoomFor(10, 800), 1); // cells of 80 px already
  assert.equal(maxZoomFor(2, 800), 1);
});

test("pan moves the content with the pointer and stops at the edges", () => {
  const view = { zoom: 10, x0: 500, y0: 500 };
  const moved = panBy(view, 40, -20, 800, 1000, 100); // 8 px per cell
  near(moved.x0, 495);
  near(moved.y0, 502.5);
  assert.deepEqual(panBy(view, 1e6, 1e6, 800, 1000, 100), { zoom: 10, x0: 0, y0: 0 });
  assert.deepEqual(panBy(FULL_VIEW, 50, 50, 800, 1000, 100), FULL_VIEW); // nothing to pan at zoom 1
});

test("clampView repairs any input", () => {
  assert.deepEqual(clampView({ zoom: 0.1, x0: -5, y0: 9 }, 100, 10), { zoom: 1, x0: 0, y0: 0 });
  assert.deepEqual(clampView({ zoom: NaN, x0: NaN, y0: 3 }, 100, 10), { zoom: 1, x0: 0, y0: 0 });
  assert.deepEqual(clampView({ zoom: 50, x0: 95, y0: 1 }, 100, 10), { zoom: 10, x0: 90, y0: 1 });
});

test("visible range covers partly visible rows and columns", () => {
  assert.deepEqual(visibleRange({ zoom: 10, x0: 10.5, y0: 20 }, 100), { rows: [20, 30], cols: [10, 21] });
  assert.deepEqual(visibleRange(FULL_VIEW, 100), { rows: [0, 100], cols: [0, 100] });
});

test("centre on a cell and fit a range", () => {
  const v = centerOn(5000, 200, 100, 16000, 960);
  near(v.y0 + 80, 5000.5);
  near(v.x0 + 80, 200.5);
  const edge = centerOn(0, 0, 100, 16000, 960);
  assert.deepEqual(edge, { zoom: 100, x0: 0, y0: 0 });
  const fit = fitRange(1000, 1200, 16000, 960);
  near(fit.zoom, 80);
  const r = visibleRange(fit, 16000);
  assert.ok(r.rows[0] <= 1000 && r.rows[1] >= 1200);
  assert.ok(r.cols[0] <= 1000 && r.cols[1] >= 1200);
  const rowsOnly = fitRange(1000, 1200, 16000, 960, "row");
  assert.equal(rowsOnly.x0, 0);
  near(rowsOnly.y0, 1000);
});

test("wheel factors: up zooms in, down zooms out, lines weigh more than pixels", () => {
  assert.ok(wheelFactor(-100) > 1 && wheelFactor(100) < 1);
  near(wheelFactor(-100) * wheelFactor(100), 1);
  assert.ok(wheelFactor(-3, 1) > wheelFactor(-3, 0));
});

test("minimap box and navigation", () => {
  const view = { zoom: 4, x0: 250, y0: 500 };
  assert.deepEqual(minimapBox(view, 1000, 100), { x: 25, y: 50, w: 25, h: 25 });
  const moved = viewFromMinimap(view, 50, 50, 100, 1000, 100);
  assert.deepEqual(moved, { zoom: 4, x0: 375, y0: 375 });
  assert.ok(sameView(moved, { zoom: 4, x0: 375.0001, y0: 375 }));
  assert.ok(!sameView(moved, view));
});
