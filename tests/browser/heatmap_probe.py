"""What the analysis page's heatmap shows, read through its debug hook (window.visualizeai.view)."""

from __future__ import annotations

import numpy as np

# The displayed matrix, cell by cell as the view holds it: its dense copy when it has one (hidden special
# tokens, merged words), else the cached tiles; `inexact` counts cells not shown at their exact value.
_SHOWN = """(v => {
  if (v.matrix) return {n: v.n, values: Array.from(v.matrix), inexact: 0};
  const values = new Array(v.n * v.n);
  let inexact = 0;
  for (let q = 0; q < v.n; q++) for (let k = 0; k < v.n; k++) {
    const found = v.valueAt(q, k);
    if (!found || !found.exact) inexact++;
    values[q * v.n + k] = found ? found.value : NaN;
  }
  return {n: v.n, values, inexact};
})(window.visualizeai.view)"""


def shown_matrix(page) -> np.ndarray:
    """The n × n matrix the heatmap shows; every cell must be shown exactly (no pooled tile stands in)."""
    shown = page.evaluate(_SHOWN)
    assert shown["inexact"] == 0, f"{shown['inexact']} cells are not shown at their exact value"
    n = shown["n"]
    return np.array(shown["values"], dtype=np.float32).reshape(n, n)


def pixels(page, condition: str) -> int:
    """How many pixels of the heatmap's canvases (#heatmap is the view's frame, its cells are drawn on
    canvases inside it) satisfy `condition`, a JS expression in r, g, b, a."""
    return page.evaluate(
        f"""() => {{ let k = 0;
        for (const c of document.querySelectorAll('#heatmap canvas')) {{
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          for (let i = 0; i < d.length; i += 4) {{
            const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
            if ({condition}) k++;
          }}
        }}
        return k; }}"""
    )
