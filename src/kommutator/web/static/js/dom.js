// Building DOM safely: text always goes through textContent / text nodes, never through innerHTML, so a
// customer's "<script>" or "<img onerror=...>" is shown as the characters it is.

const FORBIDDEN = /^(on|style$|srcdoc$|innerhtml$|outerhtml$)/i;

/**
 * h("li", {class: "msg", dataset: {id: 3}, attrs: {title: "..."}, on: {click: fn}, text: "..."}, ...children)
 * Children may be nodes, strings (become text nodes), or null/undefined/false (skipped).
 */
export function h(tag, options = {}, ...children) {
  const el = document.createElement(tag);
  const { class: cls, dataset, attrs, on, text, ...props } = options;
  if (cls) el.className = Array.isArray(cls) ? cls.filter(Boolean).join(" ") : cls;
  for (const [key, value] of Object.entries(dataset || {})) el.dataset[key] = String(value);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (FORBIDDEN.test(name)) throw new Error(`h(): attribute ${name} is not allowed`);
    if (value !== null && value !== undefined && value !== false) el.setAttribute(name, String(value));
  }
  for (const [key, value] of Object.entries(props)) {
    if (FORBIDDEN.test(key)) throw new Error(`h(): property ${key} is not allowed`);
    el[key] = value;
  }
  for (const [type, handler] of Object.entries(on || {})) el.addEventListener(type, handler);
  if (text !== undefined && text !== null) el.textContent = String(text);
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`missing element ${selector}`);
  return el;
}

export function show(el, visible = true) {
  el.hidden = !visible;
}
