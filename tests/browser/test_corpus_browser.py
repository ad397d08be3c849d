"""The corpus atlas page in Chromium: load a summary.parquet, read the grid, switch statistic, pick, sort."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from visualizeai.analysis.head_stats import STAT_NAMES
from visualizeai.corpus import extremes, qk_sample, summary
from visualizeai.corpus.schema import TEXT_ROWS_SCHEMA, text_rows_schema

LAYERS, HEADS, TEXTS = 6, 12, 30
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def summary_file(tmp_path_factory):
    """A MiniLM-shaped summary whose heads differ: head h of layer l looks back more the higher l + h."""
    rng = np.random.default_rng(7)
    per_text = LAYERS * HEADS
    layer = np.tile(np.repeat(np.arange(LAYERS), HEADS), TEXTS)
    head = np.tile(np.arange(HEADS), LAYERS * TEXTS)
    columns = {
        "text_index": np.repeat(np.arange(TEXTS), per_text),
        "layer": layer.astype(np.int16),
        "head": head.astype(np.int16),
        "n_tokens": np.full(TEXTS * per_text, 20, np.int32),
        "dropped_tokens": np.zeros(TEXTS * per_text, np.int32),
    }
    base = (layer + head) / (LAYERS + HEADS)
    for i, name in enumerate(STAT_NAMES):
        spread = rng.normal(0, 0.03, TEXTS * per_text)
        values = np.clip(base if i % 2 == 0 else 1 - base, 0, 1) * (
            3 if name in ("entropy", "mean_distance") else 1
        )
        columns[name] = (values + spread).astype(np.float32)
    rows = pa.Table.from_pydict(columns, schema=TEXT_ROWS_SCHEMA)
    table = summary.summary_table(
        summary.table_moments(rows, LAYERS, HEADS),
        {"model": HOSTILE, "revision": "r", "texts": TEXTS, "skipped": 0, "truncated_texts": 0},
    )
    path = tmp_path_factory.mktemp("corpus-page") / "summary.parquet"
    pq.write_table(table, path)
    return path, rows.to_pandas()


def test_corpus_atlas_page(live_server, page, screenshot, summary_file, tmp_path):
    path, rows = summary_file
    page.goto(live_server + "/corpus")
    assert page.get_by_role("link", name="Corpus atlas").get_attribute("aria-current") == "page"
    page.get_by_label("Summary file").set_input_files(str(path))
    page.wait_for_selector("#corpus-grid[data-state=ready]", timeout=30_000)
    assert page.locator("#corpus-grid button.atlas-cell").count() == LAYERS * HEADS
    assert page.locator("img").count() == 0  # the hostile model name is text
    assert HOSTILE in page.locator("#corpus-meta").inner_text()
    assert "30" in page.locator("#corpus-meta").inner_text()

    # the default statistic colours the grid by its corpus mean
    statistic = page.get_by_label("Statistic", exact=True)
    assert statistic.input_value() == "previous_share"
    grouped = rows.groupby(["layer", "head"])
    cell = page.locator('#corpus-grid button.atlas-cell[data-layer="4"][data-head="9"]')
    expected = grouped["previous_share"].mean().loc[(4, 9)]
    assert abs(float(cell.get_attribute("data-value")) - expected) < 1e-6
    colour_before = cell.evaluate("el => getComputedStyle(el).backgroundColor")

    statistic.select_option("entropy")
    page.wait_for_selector("#corpus-grid[data-stat=entropy]")
    assert abs(float(cell.get_attribute("data-value")) - grouped["entropy"].mean().loc[(4, 9)]) < 1e-5
    assert cell.evaluate("el => getComputedStyle(el).backgroundColor") != colour_before
    assert "spread out" in page.locator("#corpus-description").inner_text()

    # clicking a head shows its mean, std and count for every statistic
    cell.click()
    assert page.locator("#corpus-detail-title").inner_text() == "Layer 4 · head 9"
    detail = page.locator("#corpus-detail-table tbody tr")
    assert detail.count() == len(STAT_NAMES)
    sink = page.locator('#corpus-detail-table tr[data-stat="sink_share"] td')
    assert sink.nth(0).inner_text() == f"{grouped['sink_share'].mean().loc[(4, 9)]:.2f}"
    assert sink.nth(1).inner_text() == f"{grouped['sink_share'].std().loc[(4, 9)]:.2f}"
    assert sink.nth(2).inner_text() == str(TEXTS)
    assert cell.get_attribute("aria-current") == "true"

    # the list sorts by a column title; a row picks its head
    first = page.locator("#corpus-list tbody tr").first
    means = grouped["entropy"].mean()
    assert (int(first.get_attribute("data-layer")), int(first.get_attribute("data-head"))) == means.idxmax()
    page.locator("#corpus-list button.corpus-sort", has_text="Mean").click()
    assert page.locator("#corpus-list").get_attribute("data-sort") == "mean:asc"
    assert (int(first.get_attribute("data-layer")), int(first.get_attribute("data-head"))) == means.idxmin()
    first.click()
    layer, head = means.idxmin()
    assert page.locator("#corpus-detail-title").inner_text() == f"Layer {layer} · head {head}"

    # hover shows the numbers
    cell.hover()
    page.locator("#tooltip").wait_for(state="visible")
    assert "Layer 4 · head 9" in page.locator("#tooltip").inner_text()
    page.mouse.move(5, 5)
    screenshot(page, "corpus-atlas")

    # a file that is not a summary is refused with the server's reason, and the loaded atlas stays
    bad = tmp_path / "notes.parquet"
    bad.write_bytes(b"not parquet")
    page.get_by_label("Summary file").set_input_files(str(bad))
    error = page.locator("#corpus-error")
    error.wait_for(state="visible")
    assert "not a readable Parquet file" in error.inner_text()
    assert page.locator("#corpus-grid button.atlas-cell").count() == LAYERS * HEADS
    # the 400 of the refused upload is the only console message (Chromium logs failed requests)
    assert all("status of 400" in p for p in page.problems), page.problems


def extremes_file(tmp_path, rows) -> tuple:
    """The extremes of the summary's rows, with short texts that carry their own index and one hostile one,
    written for the embedded model the live server runs."""
    full = rows.assign(window=0, token_start=0, char_start=0)
    table = pa.Table.from_pandas(
        full[text_rows_schema().names], schema=text_rows_schema(), preserve_index=False
    )
    found = extremes.Extremes.of_rows(table, LAYERS, HEADS)
    texts = {i: f"Corpus text number {i} says hello." for i in range(TEXTS)}
    texts[3] = HOSTILE + " is text three."
    picked = extremes.window_texts(found, texts.items())
    path = tmp_path / "extremes.parquet"
    pq.write_table(
        extremes.extremes_table(found, picked, {"model": "all-MiniLM-L6-v2", "revision": None}), path
    )
    return path, texts


def test_a_head_leads_to_its_extreme_texts_and_each_opens_its_analysis(
    live_server, page, screenshot, summary_file, tmp_path
):
    path, rows = summary_file
    extremes_path, texts = extremes_file(tmp_path, rows)
    page.goto(live_server + "/corpus")
    page.get_by_label("Summary file").set_input_files(str(path))
    page.wait_for_selector("#corpus-grid[data-state=ready]")
    page.get_by_label("Extremes file (optional)").set_input_files(str(extremes_path))
    page.wait_for_selector("#corpus-extremes[data-state=ready]")
    page.locator('#corpus-grid button.atlas-cell[data-layer="2"][data-head="5"]').click()
    page.wait_for_selector('#corpus-extremes[data-head="2:5"][data-stat="previous_share"]')

    # the lists are the five texts with the highest and the lowest value of the head, in order
    part = rows[(rows["layer"] == 2) & (rows["head"] == 5)]
    for side, ascending in (("high", False), ("low", True)):
        expected = part.sort_values(["previous_share", "text_index"], ascending=[ascending, True]).head(5)
        items = page.locator(f"#corpus-extremes-{side} li")
        assert items.count() == 5
        assert [
            int(items.nth(i).get_attribute("data-text-index")) for i in range(5)
        ] == expected.text_index.tolist()
        values = [float(items.nth(i).get_attribute("data-value")) for i in range(5)]
        np.testing.assert_allclose(values, expected["previous_share"].to_numpy(), rtol=0, atol=1e-7)
        assert texts[expected.text_index.iloc[0]] in items.first.inner_text()
    assert page.locator("img").count() == 0  # the hostile text is text
    screenshot(page, "corpus-extremes")

    # another statistic lists other texts
    page.get_by_label("Statistic", exact=True).select_option("entropy")
    page.wait_for_selector('#corpus-extremes[data-stat="entropy"]')
    top = part.sort_values(["entropy", "text_index"], ascending=[False, True]).text_index.iloc[0]
    assert int(page.locator("#corpus-extremes-high li").first.get_attribute("data-text-index")) == top

    # Open analysis runs the text through the model and shows it at the head
    page.locator("#corpus-extremes-high li").first.get_by_role("button", name="Open analysis").click()
    page.wait_for_url("**/analysis/**")
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=60_000)
    assert "layer=2" in page.url and "head=5" in page.url
    state = page.evaluate(
        "() => { const s = window.visualizeai.store.get(); return [s.layer, s.head, s.meta.text]; }"
    )
    assert state == [2, 5, texts[top]]
    assert not page.problems, page.problems


def qk_map_file(tmp_path) -> tuple:
    """A query–key map of a MiniLM-shaped sample (random vectors: the picture's content is not the point here,
    its points are) with one hostile piece."""
    rng = np.random.default_rng(11)
    m = 40
    sample = qk_sample.TokenSample(
        hash=np.sort(rng.integers(0, 2**63, m).astype(np.uint64)),
        text_index=np.arange(m) * 3,
        window=np.zeros(m, np.int32),
        position=rng.integers(0, 20, m).astype(np.int32),
        piece=[HOSTILE if i == 7 else f"piece{i}" for i in range(m)],
        before=[f"left {i}" for i in range(m)],
        after=[f"right {i}" for i in range(m)],
        special=np.arange(m) == 0,
        queries=rng.normal(size=(m, LAYERS, HEADS, 8)).astype(np.float16),
        keys=rng.normal(size=(m, LAYERS, HEADS, 8)).astype(np.float16),
        scaling=[8**-0.5] * LAYERS,
        softcap=[None] * LAYERS,
        sinks=[None] * LAYERS,
    )
    path = tmp_path / "qk_map.parquet"
    pq.write_table(qk_sample.qk_map_table(sample, {"model": "all-MiniLM-L6-v2", "revision": None}), path)
    return path, sample


def test_a_heads_query_key_map_over_the_corpus(live_server, page, screenshot, summary_file, tmp_path):
    path, _ = summary_file
    qk_path, sample = qk_map_file(tmp_path)
    page.goto(live_server + "/corpus")
    page.get_by_label("Summary file").set_input_files(str(path))
    page.wait_for_selector("#corpus-grid[data-state=ready]")
    page.get_by_label("Query–key map file (optional)").set_input_files(str(qk_path))
    page.wait_for_selector('#corpus-qk-map[data-state=drawn][data-head="0:0"]')
    page.locator('#corpus-grid button.atlas-cell[data-layer="3"][data-head="7"]').click()
    box = page.locator('#corpus-qk-map[data-state=drawn][data-head="3:7"]')
    box.wait_for()
    assert box.get_attribute("data-points") == "40"
    queries, keys, _ = qk_sample.head_maps(sample)
    shown = page.evaluate("() => window.visualizeai.qkMap.queries[3][7]")
    np.testing.assert_array_equal(np.float32(shown), queries[3, 7])
    assert "explain" in page.locator("#corpus-qk .corpus-qk-caption").inner_text()
    # hovering a key shows its token, where it is in the corpus and the text around it
    box.scroll_into_view_if_needed()
    for index, kind in ((7, "query"), (40 + 12, "key")):
        at = page.evaluate(f"() => window.visualizeai.qkPoint({index})")
        page.mouse.move(at["x"], at["y"])
        page.wait_for_selector(f'#corpus-qk-map[data-hover="{index}"]')
        tip = page.locator("#tooltip")
        tip.wait_for(state="visible")
        i = index % 40
        text = tip.inner_text()
        assert text.startswith(kind) and sample.piece[i] in text
        assert f"text {sample.text_index[i]} · position {sample.position[i]}" in text
        assert f"left {i}" in text and f"right {i}" in text
    assert page.locator("img").count() == 0  # the hostile piece is text
    screenshot(page, "corpus-qk-map")
    assert not page.problems, page.problems
