// Heatmap view, navigation: find, jump, a range of query rows and its top keys (navigate.js), and the text
// panel shaded by the focused query's row (textpanel.js), wired to the view through a handle. Positions are
// token positions; the view's displayed rows may be merged words (`rowsOf` maps between them).

import { denseTopKeys, displayedRange, topOf } from "../lib/heatmap_math.js";
import { exactStrip } from "./heatmap_tiles.js";
import { mountNavigate } from "./navigate.js";
import { mountTextPanel } from "./textpanel.js";

/** Displayed rows [a, b) of `shown` covering token positions [p, q). */
export function rowsOf(shown, positions) {
  return displayedRange(shown && shown.groupsKey !== "all" ? shown.axis.groups : null, positions);
}

/**
 * Mount the navigation into `refs.nav` and the text panel into `refs.text`. `h`: {get() → {shown, pinned,
 * selection}, setMatches(rows, current) (matches as displayed rows), showCell(row, col?), showRows(a, b),
 * selectRows(a, b, final), setPinned(target)}. Returns {nav, text} (navigate.js's and textpanel.js's handles).
 */
export function mountNavigation(refs, source, signal, h) {
  const info = () => (h.get().shown ? h.get().shown.info : source.info);
  const nav = mountNavigate(refs.nav, {
    signal,
    info,
    /** Matches as displayed rows; token positions [a, b) map to the displayed rows holding them. */
    setMatches(found, current) {
      const { shown } = h.get();
      h.setMatches((found || []).map((m) => ({ rows: rowsOf(shown, m.tokens) })), current);
    },
    jump(position) {
      const { shown } = h.get();
      if (!shown) return;
      const row = rowsOf(shown, [position, position + 1])[0];
      h.showCell(row);
      h.setPinned({ axis: "row", index: row });
    },
    selectRows(a, b) {
      if (!h.get().shown) return;
      h.selectRows(a, b, true);
      h.showRows(a, b);
    },
    topKeys(rows, k, abort) {
      const { shown } = h.get();
      const sel = shown.sel;
      if (shown.dense) return Promise.resolve(denseTopKeys(shown.dense.data, shown.n, rows, k, shown.axis.groups));
      if (typeof source.topKeys === "function") return source.topKeys({ layer: sel.layer, head: sel.head, rows, k }, abort);
      return exactStrip(source, sel, "row", rows[0], shown.n, abort).then((row) => topOf(row, k));
    },
    focusKey(index) {
      const { shown, selection } = h.get();
      if (!shown) return;
      h.showCell(selection ? selection[0] : index, index);
    },
  });
  const text = mountTextPanel(refs.text, {
    signal,
    info,
    /** The focused query as a token position (the first of a merged word), or null. */
    focus() {
      const { shown, pinned } = h.get();
      return shown && pinned && pinned.axis === "row" ? shown.axis.groups[pinned.index][0] : null;
    },
    /** The focused query's exact row over every token (the plain axis), for shading. */
    row: (position, abort) => exactStrip(source, h.get().shown.sel, "row", position, h.get().shown.info.n, abort),
    /** A token was clicked in the text: focus its row. */
    pick(position) {
      const row = rowsOf(h.get().shown, [position, position + 1])[0];
      h.setPinned({ axis: "row", index: row });
      h.showCell(row);
    },
  });
  return { nav, text };
}
