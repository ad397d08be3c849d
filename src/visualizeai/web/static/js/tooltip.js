// A floating tooltip that follows the pointer. Content is built from DOM nodes (textContent only).

const OFFSET = 14;

/** Build a tooltip controller for `element` (a fixed-position box, initially hidden). */
export function createTooltip(element) {
  return {
    element,
    /** Replace the content with `nodes` and place the box next to the pointer, inside the window. */
    show(nodes, clientX, clientY) {
      element.replaceChildren(...nodes);
      element.hidden = false;
      const box = element.getBoundingClientRect();
      let x = clientX + OFFSET;
      let y = clientY + OFFSET;
      if (x + box.width > window.innerWidth - 4) x = clientX - OFFSET - box.width;
      if (y + box.height > window.innerHeight - 4) y = clientY - OFFSET - box.height;
      element.style.left = `${Math.max(4, x)}px`;
      element.style.top = `${Math.max(4, y)}px`;
    },
    hide() {
      element.hidden = true;
    },
  };
}

/** A <span> with `text` as its text and an optional class. */
export function span(text, className) {
  const el = document.createElement("span");
  if (className) el.className = className;
  el.textContent = text;
  return el;
}
