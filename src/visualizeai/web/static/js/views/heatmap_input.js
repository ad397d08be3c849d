// Heatmap view, input: what the pointer is over (a cell, a row or column label), drag to pan, drag along the
// row labels to select query rows, click to focus, wheel zoom, the minimap, the keys (+ − 0 / Esc). Every
// listener is registered through `on` (the view's one AbortController).

import { isTyping } from "../lib/dom.js";
import { cellAt, cellSize, clamp, panBy, viewFromMinimap, wheelFactor } from "../lib/viewport.js";
import { MINIMAP } from "./heatmap_draw.js";

const DRAG_SLOP = 4;
export const ZOOM_STEP = 1.6; // the + / − buttons and keys

/** The pointer's position in CSS px from the grid's top-left corner. */
export function gridPoint(wrap, layout, event) {
  const rect = wrap.getBoundingClientRect();
  return { x: event.clientX - rect.left - layout.left, y: event.clientY - rect.top - layout.top };
}

/** What is at grid point {x, y}: {kind: "cell", row, col}, {kind: "label", axis, index} or null. */
export function hitAt({ x, y }, layout, view, n) {
  const hit = cellAt(view, clamp(x, 0, layout.grid - 1e-6), clamp(y, 0, layout.grid - 1e-6), layout.grid, n);
  if (!hit) return null;
  const inX = x >= 0 && x < layout.grid;
  const inY = y >= 0 && y < layout.grid;
  if (inX && inY) return { kind: "cell", row: hit.row, col: hit.col };
  if (inY && x < 0 && x > -layout.left) return { kind: "label", axis: "row", index: hit.row };
  if (inX && y < 0 && y > -layout.top) return { kind: "label", axis: "col", index: hit.col };
  return null;
}

/**
 * Wire the pointer, wheel, minimap and keys of the view. `v` is the view's handle:
 *   current() → {shown, layout, view} (null members before the first draw)
 *   setView(next), zoomBy(factor, x, y), zoomButton(factor), resetView()
 *   hover(hit, event), clearHover(), leave()
 *   selectRows(a, b, final), selection() → [a, b] | null
 *   pin(next | null) (a click: next = {axis, index}), pinned() → {axis, index} | null
 *   escape() → whether Esc cleared something, focusFind()
 *   labelDoubleClick(hit)
 * Returns {hitTest(event), dragging() → boolean}.
 */
export function wireInput(refs, panel, on, v) {
  let drag = null;

  function hitTest(event) {
    const { shown, layout, view } = v.current();
    if (!shown || !layout) return null;
    return hitAt(gridPoint(refs.wrap, layout, event), layout, view, shown.n);
  }

  function onPointer(event) {
    if (drag) return;
    const hit = hitTest(event);
    refs.wrap.classList.toggle("over-label", Boolean(hit && hit.kind === "label"));
    if (!hit || hit.kind !== "cell") v.clearHover();
    else v.hover(hit, event);
  }

  function dragTo(event) {
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < DRAG_SLOP) return;
    if (!drag.moved) {
      drag.moved = true;
      refs.wrap.classList.add("dragging");
      v.clearHover();
    }
    const { shown, layout, view } = v.current();
    if (drag.select !== null) {
      const { y } = gridPoint(refs.wrap, layout, event);
      const row = clamp(Math.floor(view.y0 + y / cellSize(view, layout.grid, shown.n)), 0, shown.n - 1);
      v.selectRows(Math.min(drag.select, row), Math.max(drag.select, row) + 1, false);
      return;
    }
    v.setView(panBy(drag.view, dx, dy, layout.grid, shown.n, layout.maxZoom));
  }

  function release(event) {
    if (!drag) return;
    const { moved, hit, select } = drag;
    drag = null;
    refs.wrap.classList.remove("dragging");
    if (refs.wrap.hasPointerCapture(event.pointerId)) refs.wrap.releasePointerCapture(event.pointerId);
    const selection = v.selection();
    if (moved && select !== null && selection) v.selectRows(selection[0], selection[1], true);
    if (!moved && hit) {
      const next = hit.kind === "label" ? { axis: hit.axis, index: hit.index } : { axis: "row", index: hit.row };
      const pinned = v.pinned();
      const same = pinned && pinned.axis === next.axis && pinned.index === next.index;
      v.pin(same ? null : next);
    }
    onPointer(event);
  }

  on(refs.wrap, "pointermove", (event) => (drag ? dragTo(event) : onPointer(event)));
  on(refs.wrap, "pointerdown", (event) => {
    const { shown, layout, view } = v.current();
    if (event.button !== 0 || !shown || !layout) return;
    const hit = hitTest(event);
    const select = hit && hit.kind === "label" && hit.axis === "row" ? hit.index : null;
    drag = { x: event.clientX, y: event.clientY, view, moved: false, hit, select };
    refs.wrap.setPointerCapture(event.pointerId);
  });
  on(refs.wrap, "pointerup", release);
  on(refs.wrap, "pointercancel", release);
  on(refs.wrap, "pointerleave", () => {
    if (!drag) v.leave();
  });
  on(
    refs.wrap,
    "wheel",
    (event) => {
      const hit = hitTest(event);
      if (!hit || hit.kind !== "cell") return; // the page scrolls
      event.preventDefault();
      const { x, y } = gridPoint(refs.wrap, v.current().layout, event);
      v.zoomBy(wheelFactor(event.deltaY, event.deltaMode), x, y);
    },
    { passive: false },
  );
  on(refs.wrap, "dblclick", (event) => {
    const hit = hitTest(event);
    if (hit && hit.kind === "label") v.labelDoubleClick(hit);
  });
  wireMinimap(refs, on, v);
  on(document, "keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || isTyping(event.target)) return;
    if (panel.hidden || !v.current().shown) return;
    if (event.key === "Escape" && v.escape()) {
      // cleared the focus, else the selection
    } else if (event.key === "+" || event.key === "=") v.zoomButton(ZOOM_STEP);
    else if (event.key === "-") v.zoomButton(1 / ZOOM_STEP);
    else if (event.key === "0") v.resetView();
    else if (event.key === "/") v.focusFind();
    else return;
    event.preventDefault();
  });
  return { hitTest, dragging: () => Boolean(drag) };
}


/** Click or drag on the minimap: the view centred there, at the same zoom. */
function wireMinimap(refs, on, v) {
  let dragging = false;
  const fromMinimap = (event) => {
    const { shown, layout, view } = v.current();
    const rect = refs.minimap.getBoundingClientRect();
    const mx = event.clientX - rect.left;
    const my = event.clientY - rect.top;
    v.setView(viewFromMinimap(view, mx, my, MINIMAP, shown.n, layout.maxZoom));
  };
  on(refs.minimap, "pointerdown", (event) => {
    const { shown, layout } = v.current();
    if (!shown || !layout) return;
    dragging = true;
    refs.minimap.setPointerCapture(event.pointerId);
    fromMinimap(event);
  });
  on(refs.minimap, "pointermove", (event) => dragging && fromMinimap(event));
  on(refs.minimap, "pointerup", () => {
    dragging = false;
  });
}
