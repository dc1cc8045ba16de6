// Small DOM helpers shared by the pages: element building (text is always text, never HTML),
// toasts, formatting.

/** h("button", {class: "x", onclick: f}, "text", child, …) — attributes, properties and children. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace `element`'s children. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function toast(message, kind = "info") {
  const box = document.querySelector(".toasts");
  const item = h("div", { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

/** Run an action from a button: disabled meanwhile, errors shown as a toast. */
export async function act(button, action, done) {
  button.disabled = true;
  try {
    const result = await action();
    if (done) toast(typeof done === "function" ? done(result) : done, "ok");
    return result;
  } catch (error) {
    toast(error.message, "error");
    return undefined;
  } finally {
    button.disabled = false;
  }
}

export function formatDuration(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function formatTime(timestamp) {
  return new Date(timestamp * 1000).toLocaleTimeString();
}

/** A labelled badge for a state (enabled, disabled, error, open, …). */
export function badge(text) {
  return h("span", { class: `badge ${String(text ?? "none").replace(/[^a-z_]/gi, "")}` }, text ?? "–");
}

export function emptyRow(columns, text) {
  return h("tr", {}, h("td", { colSpan: columns, class: "empty" }, text));
}
