// Which layer of model B a layer of model A is compared with (the Compare page). Two models of different depth
// can be matched by index (layer i with layer i: only the layers both have) or by relative depth (layer i of
// A, at i / (LA − 1) of its depth, with the layer of B nearest the same depth). Pure functions; no DOM.

export const LAYER_MATCHES = ["index", "depth"];

/**
 * B's layer for A's layer `layer` when A has `layersA` layers and B `layersB`: `by` "index" gives the same
 * index, "depth" gives round(layer · (LB − 1) / (LA − 1)) (halves round up; a one-layer A maps to B's layer 0).
 */
export function matchLayer(layer, layersA, layersB, by = "index") {
  if (!Number.isInteger(layer) || layer < 0 || layer >= layersA) {
    throw new RangeError(`layer ${layer} is outside 0..${layersA - 1}`);
  }
  if (by !== "depth") {
    if (layer >= layersB) throw new RangeError(`layer ${layer} is outside B's 0..${layersB - 1}`);
    return layer;
  }
  if (layersA <= 1) return 0;
  return Math.round((layer * (layersB - 1)) / (layersA - 1));
}

/** How many of A's layers can be chosen: those both models have (by index), or all of A's (by depth). */
export function choosableLayers(layersA, layersB, by = "index") {
  return by === "depth" ? layersA : Math.min(layersA, layersB);
}
