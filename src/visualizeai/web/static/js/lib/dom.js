// Element helpers. Text always goes in through textContent, never as HTML.

/** The element with `id` in `root` (default: the document). */
export function byId(id, root = document) {
  return root.getElementById ? root.getElementById(id) : root.querySelector(`#${id}`);
}

/**
 * A new `tag` element: `props` sets className, text (textContent), title, hidden, dataset ({…}) and attrs
 * ({name: value}); `children` (nodes or strings) are appended.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { className, text, title, hidden, dataset, attrs } = props;
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (title) node.title = title;
  if (hidden !== undefined) node.hidden = Boolean(hidden);
  if (dataset) for (const [k, v] of Object.entries(dataset)) node.dataset[k] = String(v);
  if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** A <span> with `text` as its text and an optional class. */
export function span(text, className) {
  return el("span", { className, text });
}

/** An <option> with a value and a label. */
export function option(value, text) {
  return el("option", { text, attrs: { value: String(value) } });
}

/** Fill a <select> with the options 0 … count − 1 (labels from `label(i)`, default the number). */
export function fillSelect(select, count, label = String) {
  const options = [];
  for (let i = 0; i < count; i++) options.push(option(i, label(i)));
  select.replaceChildren(...options);
}

/** True when `target` is a place where the person types (keyboard shortcuts leave those alone). */
export function isTyping(target) {
  return Boolean(
    target &&
      target.closest &&
      target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']"),
  );
}

/** Save `blob` as `filename` through a temporary link (a download, not a navigation). */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { hidden: true, attrs: { href: url, download: filename } });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

/**
 * A floating tooltip that follows the pointer, in `element` (a fixed-position box, initially hidden). Content
 * is built from DOM nodes.
 */
export function createTooltip(element, offset = 14) {
  return {
    element,
    /** Replace the content with `nodes` and place the box next to the pointer, inside the window. */
    show(nodes, clientX, clientY) {
      element.replaceChildren(...nodes);
      element.hidden = false;
      const box = element.getBoundingClientRect();
      let x = clientX + offset;
      let y = clientY + offset;
      if (x + box.width > window.innerWidth - 4) x = clientX - offset - box.width;
      if (y + box.height > window.innerHeight - 4) y = clientY - offset - box.height;
      element.style.left = `${Math.max(4, x)}px`;
      element.style.top = `${Math.max(4, y)}px`;
    },
    hide() {
      element.hidden = true;
    },
  };
}

/** A block of tooltip text: `children` in a <div class="tt-line">. */
export function line(...children) {
  return el("div", { className: "tt-line" }, ...children);
}

/**
 * Show a server refusal (an ApiError with status 400 or 413: a figure over the work budget, an input too long
 * for the computation) in `box`, naming `what` was refused; the server's message carries the figures. Returns
 * false, leaving `box` alone, for any other error (the caller rethrows it).
 */
export function showRefusal(box, err, what) {
  if (!err || (err.status !== 400 && err.status !== 413)) return false;
  box.replaceChildren(el("strong", { text: `The server will not compute ${what} for this analysis. ` }), span(err.message));
  box.hidden = false;
  box.dataset.status = String(err.status);
  return true;
}
