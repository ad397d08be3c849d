"""The standalone page: the bundled viewer inlined under a hash-pinned CSP, opening at the exported layer and
head, and a clear message when the front end has not been built."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import numpy as np
import pytest
from fake_results import result_over

from visualizeai import standalone
from visualizeai.attention.store import DenseStore


def small_result():
    rng = np.random.default_rng(0)
    weights = rng.random((4, 3, 6, 6)).astype(np.float32)
    return result_over(DenseStore(weights / weights.sum(-1, keepdims=True)))


def meta_of(page: str) -> dict:
    block = page.split('id="viz-meta">', 1)[1].split("</script>", 1)[0]
    return json.loads(block)


def test_page_inlines_the_bundle_under_its_hash(tmp_path, monkeypatch):
    bundle = tmp_path / "standalone.js"
    bundle.write_text('console.log("viewer");\n', encoding="utf-8")
    monkeypatch.setattr(standalone, "BUNDLE", bundle)
    page = standalone.build(small_result(), layers=[1, 3])
    script = page.split('<script type="module">', 1)[1].split("</script>", 1)[0]
    assert script == bundle.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    data = page.split('id="viz-attention">', 1)[1].split("<", 1)[0]
    attention = np.frombuffer(base64.b64decode(data), "<f2")
    assert attention.size == 2 * 3 * 6 * 6  # only the included layers


def test_opens_at_the_exported_layer_and_head(tmp_path, monkeypatch):
    bundle = tmp_path / "standalone.js"
    bundle.write_text("1;", encoding="utf-8")
    monkeypatch.setattr(standalone, "BUNDLE", bundle)
    result = small_result()
    meta = meta_of(standalone.build(result, layers=[1, 3], layer=3, head=2))
    assert (meta["included_layers"], meta["layer"], meta["head"]) == ([1, 3], 3, 2)
    # a layer the file does not hold, or a head out of range: the first included layer, head 0
    meta = meta_of(standalone.build(result, layers=[1, 3], layer=0, head=9))
    assert (meta["layer"], meta["head"]) == (1, 0)


def test_missing_bundle_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setattr(standalone, "BUNDLE", tmp_path / "nowhere.js")
    with pytest.raises(RuntimeError, match="run `npm run build`"):
        standalone.build(small_result())


def test_a_bundle_that_could_end_the_script_block_is_refused(tmp_path, monkeypatch):
    bundle = tmp_path / "standalone.js"
    bundle.write_text('const s = "</script><b>";', encoding="utf-8")
    monkeypatch.setattr(standalone, "BUNDLE", bundle)
    with pytest.raises(RuntimeError, match="would end the inline script"):
        standalone.build(small_result())
