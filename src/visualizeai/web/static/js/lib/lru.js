// Small least-recently-used caches kept in a Map in insertion order (oldest first).

/**
 * The entry of `cache` for `id`, made by `load()` when there is none; a hit moves to the newest place, the
 * oldest entries go once there are more than `limit`, and a request that fails is forgotten so it can be tried
 * again. `load()` returns a Promise.
 */
export function cachedLoad(cache, limit, id, load) {
  let entry = cache.get(id);
  if (entry) cache.delete(id);
  else {
    entry = load();
    entry.catch(() => {
      if (cache.get(id) === entry) cache.delete(id);
    });
  }
  cache.set(id, entry);
  while (cache.size > limit) cache.delete(cache.keys().next().value);
  return entry;
}

/**
 * An LRU of values bounded by a total cost (`costOf(value)`, default 1 per entry): `get` refreshes an entry,
 * `set` evicts the oldest entries until the total fits `maxCost` (an entry costlier than that is not kept).
 */
export function createLru(maxCost, costOf = () => 1) {
  const map = new Map(); // key → {value, cost}
  let total = 0;
  const drop = (key) => {
    const entry = map.get(key);
    if (!entry) return;
    total -= entry.cost;
    map.delete(key);
  };
  return {
    get(key) {
      const entry = map.get(key);
      if (!entry) return undefined;
      map.delete(key);
      map.set(key, entry);
      return entry.value;
    },
    has(key) {
      return map.has(key);
    },
    set(key, value) {
      drop(key);
      const cost = costOf(value);
      if (cost > maxCost) return;
      map.set(key, { value, cost });
      total += cost;
      while (total > maxCost) drop(map.keys().next().value);
    },
    delete: drop,
    clear() {
      map.clear();
      total = 0;
    },
    keys() {
      return [...map.keys()];
    },
    get size() {
      return map.size;
    },
    get cost() {
      return total;
    },
  };
}
