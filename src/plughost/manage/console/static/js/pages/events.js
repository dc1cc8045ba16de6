// Events and logs: two live tails side by side (stacked on narrow screens) — plugin events and
// log records. Each starts with the recent history, then follows the stream from the history's
// last id, so nothing falls between the two. Pause stops reading; Resume continues from the last
// id seen (the server replays what came meanwhile). A gap the server reports (`missed`) is shown
// as a line; a filter change restarts the tail; only the newest lines are kept in the page.

import { auth, get, withQuery } from "../api.js";
import { follow } from "../stream.js";
import { badge, fill, formatTime, h, toast } from "../ui.js";

const HISTORY = 200;
const KEEP = 500;
const EVENT_TYPES = ["load", "unload", "enable", "disable", "reload", "reconfigure", "error", "isolate", "recover"];
const LEVELS = [
  ["", "info and above"],
  ["warning", "warning and above"],
  ["error", "error and above"],
  ["critical", "critical"],
];

export async function render(root, { live }) {
  let pluginIds = [];
  try {
    pluginIds = (await get("/api/v1/plugins")).plugins.map((plugin) => plugin.id).sort();
  } catch {
    // the filters then offer "all plugins" only; the tails say what is wrong
  }

  const eventPlugin = pluginSelect("events-plugin", pluginIds);
  const typeBoxes = EVENT_TYPES.map((type) => h("input", { type: "checkbox", name: "events-type", value: type, id: `events-type-${type}` }));
  const typesSummary = h("span", { class: "types-summary" }, "all");
  const types = h(
    "details",
    { class: "tail-types" },
    h("summary", {}, "Types: ", typesSummary),
    h(
      "fieldset",
      {},
      h("legend", { class: "visually-hidden" }, "Event types (none checked: every type)"),
      typeBoxes.map((box) => h("label", { class: "check", for: box.id }, box, ` ${box.value}`)),
    ),
  );
  const chosenTypes = () => typeBoxes.filter((box) => box.checked).map((box) => box.value);
  const events = tail({
    name: "events",
    title: "Plugin events",
    noun: "events",
    history: "/api/v1/events",
    stream: "/api/v1/events/stream",
    pick: (data) => data.events,
    query: () => ({ plugin_id: eventPlugin.value, types: chosenTypes().join(",") }),
    matches: (item) =>
      (!eventPlugin.value || item.plugin_id === eventPlugin.value) &&
      (!chosenTypes().length || chosenTypes().includes(item.type)),
    line: eventLine,
    filters: [field("events-plugin", "Plugin", eventPlugin), types],
  });

  const logPlugin = pluginSelect("logs-plugin", pluginIds);
  const level = h(
    "select",
    { id: "logs-level", name: "level" },
    LEVELS.map(([value, label]) => h("option", { value }, label)),
  );
  const logs = tail({
    name: "logs",
    title: "Log records",
    noun: "log records",
    history: "/api/v1/logs",
    stream: "/api/v1/logs/stream",
    pick: (data) => data.records,
    query: () => ({ plugin_id: logPlugin.value, level: level.value }),
    line: logLine,
    filters: [field("logs-plugin", "Plugin", logPlugin), field("logs-level", "Level", level)],
  });

  const restart = (which) => () => which.restart().catch((failure) => which.failed(failure));
  eventPlugin.addEventListener("change", restart(events));
  for (const box of typeBoxes) {
    box.addEventListener("change", () => {
      typesSummary.textContent = chosenTypes().join(", ") || "all";
      restart(events)();
    });
  }
  logPlugin.addEventListener("change", restart(logs));
  level.addEventListener("change", restart(logs));

  fill(root, h("h1", {}, "Events and logs"), h("div", { class: "tails" }, events.element, logs.element));

  const onLive = (message) => events.notice(message.detail);
  live.addEventListener("event", onLive);
  const stop = () => {
    live.removeEventListener("event", onLive);
    events.stop();
    logs.stop();
  };
  try {
    await Promise.all([events.restart(), logs.restart()]);
  } catch (failure) {
    stop();
    throw failure;
  }
  return stop;
}

/**
 * One tail: history, then the stream from the history's last id; pause/resume; bounded lines.
 * `matches(item)` (optional) says whether an event from the shell's live stream belongs here,
 * to count what is waiting while paused.
 */
function tail({ name, title, noun, history, stream, pick, query, matches, line, filters }) {
  const lines = h("div", {
    id: `${name}-lines`,
    class: "tail-lines",
    role: "log",
    "aria-label": title,
    tabindex: "0",
    dataset: { empty: `No ${noun} yet.` },
  });
  const state = h("span", { class: "tail-state", dataset: { state: "loading" } }, "loading");
  const waiting = h("span", { class: "tail-waiting", "aria-live": "polite", hidden: true });
  const pauseButton = h("button", { type: "button", class: "tail-pause", "aria-controls": lines.id, onclick: () => (paused ? resume() : pause()) }, "Pause");
  const clearButton = h("button", { type: "button", "aria-controls": lines.id, onclick: () => lines.replaceChildren() }, "Clear");
  const element = h(
    "section",
    { class: "card tail", dataset: { tail: name }, "aria-labelledby": `${name}-heading` },
    h(
      "div",
      { class: "spread" },
      h("h2", { id: `${name}-heading` }, title),
      h("div", { class: "row" }, state, waiting, pauseButton, clearButton),
    ),
    h("div", { class: "row tail-filters" }, filters),
    lines,
    h("p", { class: "hint" }, `The newest ${KEEP} ${noun} stay on the page.`),
  );

  let follower = null;
  let lastId = null;
  let paused = false;
  let generation = 0;
  let queue = [];
  let scheduled = false;
  let waitingCount = 0;

  function setState(value) {
    state.dataset.state = value;
    state.textContent = value;
  }

  function showWaiting() {
    waiting.hidden = !(paused && waitingCount);
    waiting.textContent = `${waitingCount} new while paused`;
  }

  async function restart() {
    const ticket = ++generation;
    stopFollowing();
    queue = [];
    setState("loading");
    const data = await get(withQuery(history, { ...query(), limit: HISTORY }));
    if (ticket !== generation) return;
    lines.replaceChildren();
    queue = [];
    waitingCount = 0;
    showWaiting();
    lastId = data.last_id;
    append(pick(data).map(line));
    lines.scrollTop = lines.scrollHeight;
    if (paused) setState("paused");
    else connect();
  }

  function connect() {
    const me = follow(
      withQuery(stream, query()),
      {
        event: (item, id) => {
          if (follower !== me) return;
          if (id !== null && id !== undefined) lastId = id;
          enqueue(line(item));
        },
        missed: (count) => {
          if (follower === me) enqueue(missedLine(count, noun));
        },
        state: (value) => {
          if (follower === me) setState(value);
        },
        unauthorized: () => auth.dispatchEvent(new CustomEvent("unauthorized")),
      },
      { startAfter: lastId },
    );
    follower = me;
    setState("connecting");
  }

  function stopFollowing() {
    const old = follower;
    follower = null;
    old?.close();
  }

  function pause() {
    paused = true;
    stopFollowing();
    flush(); // what was read before the pause is shown
    waitingCount = 0;
    showWaiting();
    setState("paused");
    pauseButton.textContent = "Resume";
  }

  function resume() {
    paused = false;
    waitingCount = 0;
    showWaiting();
    pauseButton.textContent = "Pause";
    if (lastId === null) restart().catch(failed);
    else connect();
  }

  function enqueue(node) {
    queue.push(node);
    if (queue.length > KEEP) queue.splice(0, queue.length - KEEP);
    if (scheduled) return;
    scheduled = true;
    const run = () => {
      scheduled = false;
      flush();
    };
    if (document.hidden) setTimeout(run, 250);
    else requestAnimationFrame(run);
  }

  function flush() {
    if (!queue.length) return;
    const nodes = queue;
    queue = [];
    append(nodes);
  }

  function append(nodes) {
    if (!nodes.length) return;
    const atBottom = lines.scrollHeight - lines.scrollTop - lines.clientHeight < 40;
    lines.append(...nodes);
    for (let excess = lines.childElementCount - KEEP; excess > 0; excess -= 1) lines.firstElementChild.remove();
    if (atBottom) lines.scrollTop = lines.scrollHeight;
  }

  function failed(failure) {
    setState("stopped");
    toast(`${title}: ${failure.message}`, "error");
  }

  return {
    element,
    restart,
    failed,
    notice(item) {
      if (!paused || !matches || !matches(item)) return;
      waitingCount += 1;
      showWaiting();
    },
    stop() {
      generation += 1;
      stopFollowing();
    },
  };
}

function pluginSelect(id, pluginIds) {
  return h(
    "select",
    { id, name: "plugin_id" },
    h("option", { value: "" }, "all plugins"),
    pluginIds.map((pluginId) => h("option", { value: pluginId }, pluginId)),
  );
}

function field(id, label, control) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function stamp(timestamp) {
  return h("time", { datetime: new Date(timestamp * 1000).toISOString() }, formatTime(timestamp));
}

function eventLine(item) {
  return h(
    "div",
    {
      class: `log-line event-line${item.success === false ? " failed" : ""}`,
      dataset: { id: String(item.id), type: item.type, plugin: item.plugin_id },
    },
    stamp(item.timestamp),
    " ",
    badge(item.type),
    " ",
    h("a", { href: `#/plugins/${encodeURIComponent(item.plugin_id)}` }, item.plugin_id),
    " ",
    h("span", { class: "message" }, item.message),
    item.error ? h("span", { class: "error" }, ` — ${item.error}`) : null,
  );
}

function logLine(item) {
  return h(
    "div",
    {
      class: `log-line record-line level-${String(item.level).replace(/[^a-z]/gi, "")}`,
      dataset: { id: String(item.id), level: item.level, plugin: item.plugin_id ?? "" },
    },
    stamp(item.timestamp),
    " ",
    badge(item.level),
    " ",
    h("span", { class: "muted", title: item.logger }, item.plugin_id ?? item.logger),
    " ",
    h("span", { class: "message" }, item.message),
    item.exception ? h("details", {}, h("summary", {}, "traceback"), h("pre", {}, item.exception)) : null,
  );
}

function missedLine(count, noun) {
  return h(
    "div",
    { class: "log-line missed", role: "note" },
    `⚠ ${count} ${noun} were missed: they left the host's history before this page could read them.`,
  );
}
