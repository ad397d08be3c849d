// A small least-recently-used cache of pending requests (Promises), kept in a Map in insertion order.

/**
 * The entry of `cache` for `id`, made by `load()` when there is none; a hit moves to the newest place, the
 * oldest entries go once there are more than `limit`, and a request that fails is forgotten so it can be tried
 * again.
 */
export function cachedLoad(cache, limit, id, load) {
  let entry = cache.get(id);
  if (entry) cache.delete(id);
  else {
    entry = load();
    entry.catch(() => cache.delete(id));
  }
  cache.set(id, entry);
  while (cache.size > limit) cache.delete(cache.keys().next().value);
  return entry;
}
