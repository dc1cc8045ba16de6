// Plugins: every loaded plugin with its state and guard figures, searchable and filterable, with
// lifecycle buttons; below, what discovery found but could not (or did not) load. The table follows
// the live event stream (a burst of events makes one fetch) and re-reads the counters every few
// seconds (executions are not events).

import { ApiError, get, post } from "../api.js";
import { act, badge, emptyRow, fill, h, toast } from "../ui.js";

const REFRESH_MS = 5000;
const EVENT_DELAY_MS = 40;
const STATES = ["enabled", "disabled", "isolated", "error", "unloaded"];
const COLUMNS = 11;
/** Search and filters survive leaving the page and coming back. */
const filters = { q: "", state: "", runtime: "" };

/**
 * `schedule()` runs `task` after `wait` ms; calls meanwhile join that run, and calls while it runs
 * make exactly one more run after it. `schedule(0)` runs as soon as possible; `schedule.cancel()`.
 */
export function coalesce(task, wait = EVENT_DELAY_MS) {
  let timer = null;
  let running = false;
  let again = false;
  let stopped = false;
  async function fire() {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await task();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) console.warn("refresh failed", error);
    } finally {
      running = false;
      if (again && !stopped) {
        again = false;
        schedule(0);
      }
    }
  }
  function schedule(delay = wait) {
    if (stopped) return;
    if (timer !== null) {
      if (delay > 0) return;
      clearTimeout(timer);
    }
    timer = setTimeout(fire, delay);
  }
  schedule.cancel = () => {
    stopped = true;
    clearTimeout(timer);
    timer = null;
  };
  return schedule;
}

export const pluginPath = (id) => `/api/v1/plugins/${encodeURIComponent(id)}`;
export const pluginHref = (id) => `#/plugins/${encodeURIComponent(id)}`;

/**
 * Lifecycle buttons for one plugin: Enable/Disable, Reload, Unload, or Load/Build for one that is
 * not loaded. `update(row)` shows the ones that fit the row's state; while an action runs every
 * button is disabled; `done(result)` is called after each action (success or not).
 */
export function lifecycleControls(done) {
  let row = null;
  let busy = false;
  const button = (className, onclick) => h("button", { type: "button", class: className, onclick });
  const toggle = button("toggle", () => {
    const enabling = row.state === "disabled";
    run(toggle, `${enabling ? "enable" : "disable"}`, (result) =>
      result.changed ? `${result.id} ${result.state}` : `${result.id} already was ${enabling ? "enabled" : "disabled"}`,
    );
  });
  const reload = button("reload", () => run(reload, "reload", (result) => `${result.id} reloaded (version ${result.version ?? "?"}, ${result.state})`));
  const unload = button("unload danger", () =>
    run(unload, "unload", (result) => (result.changed ? `${result.id} unloaded` : `${result.id} was not loaded`)),
  );
  const load = button("load", () => {
    const building = row.status === "source_only";
    run(load, null, (result) => `${result.id} ${building ? "built and " : ""}loaded (${result.state})`);
  });
  const element = h("div", { class: "actions" }, toggle, reload, unload, load);

  async function run(clicked, action, message) {
    const id = row.id;
    busy = true;
    clicked.setAttribute("aria-busy", "true");
    render();
    let result;
    try {
      result = action
        ? await post(`${pluginPath(id)}/${action}`)
        : await post("/api/v1/plugins/load", { path: row.path });
      toast(message(result), "ok");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) toast(`${id}: ${error.message}`, "error");
    } finally {
      busy = false;
      clicked.removeAttribute("aria-busy");
      render();
      done?.(result);
    }
  }

  function label(target, text, id) {
    target.textContent = text;
    target.setAttribute("aria-label", `${text} ${id}`);
  }

  function render() {
    if (!row) return;
    const { id, state, status } = row;
    const switchable = ["enabled", "disabled", "isolated"].includes(state);
    toggle.hidden = !switchable;
    label(toggle, state === "disabled" ? "Enable" : "Disable", id);
    toggle.classList.toggle("primary", state === "disabled");
    reload.hidden = !(switchable || state === "error");
    label(reload, "Reload", id);
    unload.hidden = !switchable;
    label(unload, "Unload", id);
    const loadable = state === "unloaded" || (state === null && ["available", "source_only"].includes(status));
    load.hidden = !loadable;
    label(load, state === null && status === "source_only" ? "Build" : "Load", id);
    for (const item of [toggle, reload, unload, load]) item.disabled = busy;
  }

  return {
    element,
    update(next) {
      row = next;
      render();
    },
  };
}

function matches(row, word) {
  if (!word) return true;
  const needle = word.toLowerCase();
  const fields = [row.id, row.name, row.description, row.path, ...(row.tags ?? [])];
  return fields.some((field) => String(field ?? "").toLowerCase().includes(needle));
}

const ms = (value) => (value === null || value === undefined ? "–" : `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`);

export async function render(root, { live }) {
  const search = h("input", { id: "plugins-q", type: "search", placeholder: "id, name, description, tag…", value: filters.q });
  const stateSelect = h(
    "select",
    { id: "plugins-state" },
    h("option", { value: "" }, "All states"),
    STATES.map((state) => h("option", { value: state }, state)),
  );
  stateSelect.value = filters.state;
  const runtimeSelect = h("select", { id: "plugins-runtime" }, h("option", { value: "" }, "All runtimes"));
  const count = h("p", { class: "muted count", role: "status" });
  const failure = h("p", { class: "error", role: "alert", hidden: true });
  const body = h("tbody");
  const head = (text, className) => h("th", { scope: "col", class: className }, text);
  const table = h(
    "table",
    { class: "plugins", "aria-label": "Loaded plugins" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        head("ID"),
        head("Version", "hide-narrow"),
        head("Runtime", "hide-narrow"),
        head("Isolation", "hide-narrow"),
        head("State"),
        head("Priority", "num hide-narrow"),
        head("Breaker"),
        head("Calls", "num hide-narrow"),
        head("Failures", "num hide-narrow"),
        head("p99", "num hide-narrow"),
        head("Actions"),
      ),
    ),
    body,
  );
  const problems = h("section", { class: "card not-loaded", "aria-labelledby": "not-loaded-title", hidden: true });
  fill(
    root,
    h("h1", {}, "Plugins"),
    h(
      "div",
      { class: "card" },
      h(
        "div",
        { class: "toolbar", role: "search" },
        h("div", { class: "field" }, h("label", { for: "plugins-q" }, "Search"), search),
        h("div", { class: "field" }, h("label", { for: "plugins-state" }, "State"), stateSelect),
        h("div", { class: "field" }, h("label", { for: "plugins-runtime" }, "Runtime"), runtimeSelect),
        count,
        h(
          "button",
          {
            type: "button",
            class: "rescan",
            title: "Scan the plugin directories again for new, changed and removed plugins",
            onclick: (event) =>
              act(event.currentTarget, async () => {
                await post("/api/v1/plugins/discover");
                await refresh();
              }, "Plugin directories scanned"),
          },
          "Rescan",
        ),
      ),
      failure,
      h("div", { class: "table-wrap" }, table),
    ),
    problems,
  );

  const rows = new Map(); // id → {tr, cells, controls}
  let catalog = [];

  async function refresh() {
    let list;
    try {
      list = await get("/api/v1/plugins");
      failure.hidden = true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) throw error;
      failure.textContent = `The plugin list could not be read: ${error.message}`;
      failure.hidden = false;
      return;
    }
    catalog = list.plugins;
    show();
  }

  function show() {
    const loaded = catalog.filter((row) => row.state !== null && row.state !== undefined);
    // the runtimes present, and the chosen one even when no plugin of it is left
    const runtimes = [...new Set([...loaded.map((row) => row.runtime), filters.runtime].filter(Boolean))].sort();
    const offered = [...runtimeSelect.options].slice(1).map((option) => option.value);
    if (runtimes.join() !== offered.join()) {
      fill(runtimeSelect, h("option", { value: "" }, "All runtimes"), runtimes.map((name) => h("option", { value: name }, name)));
    }
    runtimeSelect.value = filters.runtime;
    const visible = loaded.filter(
      (row) =>
        (!filters.state || row.state === filters.state) &&
        (!filters.runtime || row.runtime === filters.runtime) &&
        matches(row, filters.q),
    );
    const keep = new Set(visible.map((row) => row.id));
    for (const [id, entry] of rows) {
      if (!keep.has(id)) {
        entry.tr.remove();
        rows.delete(id);
      }
    }
    body.querySelector("td.empty")?.parentElement.remove();
    let previous = null;
    for (const row of visible) {
      let entry = rows.get(row.id);
      if (!entry) {
        entry = makeRow(row.id, () => schedule(0));
        rows.set(row.id, entry);
      }
      entry.update(row);
      // keep DOM order = list order without moving rows that are already in place (focus stays)
      const expected = previous ? previous.nextSibling : body.firstChild;
      if (expected !== entry.tr) body.insertBefore(entry.tr, expected);
      previous = entry.tr;
    }
    if (!visible.length) {
      body.append(emptyRow(COLUMNS, loaded.length ? "No plugin matches the search and filters." : "No plugin is loaded."));
    }
    count.textContent =
      visible.length === loaded.length
        ? `${loaded.length} plugin${loaded.length === 1 ? "" : "s"}`
        : `${visible.length} of ${loaded.length} plugins`;
    showProblems(catalog.filter((row) => row.state === null || row.state === undefined));
  }

  const discoveredControls = new Map(); // id → controls, kept while the list is redrawn (a build may be running)
  let discoveredKey = null;
  function showProblems(others) {
    const key = JSON.stringify(others);
    if (key === discoveredKey) return;
    discoveredKey = key;
    problems.hidden = !others.length;
    for (const id of discoveredControls.keys()) {
      if (!others.some((row) => row.id === id)) discoveredControls.delete(id);
    }
    if (!others.length) {
      problems.replaceChildren();
      return;
    }
    const focused = problems.contains(document.activeElement) ? document.activeElement.getAttribute("aria-label") : null;
    const invalid = others.filter((row) => row.status === "invalid");
    const buildable = others.filter((row) => row.status === "source_only");
    const available = others.filter((row) => row.status !== "invalid" && row.status !== "source_only");
    const item = (row, ...extra) => {
      let controls = discoveredControls.get(row.id);
      if (!controls) {
        controls = lifecycleControls(() => schedule(0));
        discoveredControls.set(row.id, controls);
      }
      controls.update(row);
      return h(
        "li",
        { class: `discovered ${row.status}`, dataset: { plugin: row.id } },
        h("div", { class: "spread" }, h("span", {}, h("strong", {}, row.id), " ", badge(row.status), " ", h("code", { class: "muted" }, row.path)), row.status === "invalid" ? null : controls.element),
        ...extra,
      );
    };
    fill(
      problems,
      h("h2", { id: "not-loaded-title" }, "Found but not loaded"),
      invalid.length
        ? [
            h("h3", {}, "Invalid"),
            h("ul", { class: "problems invalid-plugins" }, invalid.map((row) => item(row, h("ul", { class: "errors" }, (row.errors.length ? row.errors : [row.error ?? "invalid"]).map((text) => h("li", { class: "error" }, text)))))),
          ]
        : null,
      buildable.length
        ? [
            h("h3", {}, "Need a build"),
            h("p", { class: "hint" }, "Built with the plugin's scripts/build.sh, then loaded."),
            h("ul", { class: "problems source-only" }, buildable.map((row) => item(row))),
          ]
        : null,
      available.length ? [h("h3", {}, "Not loaded"), h("ul", { class: "problems available" }, available.map((row) => item(row)))] : null,
    );
    if (focused) problems.querySelector(`[aria-label="${CSS.escape(focused)}"]`)?.focus();
  }

  const schedule = coalesce(refresh);
  search.addEventListener("input", () => {
    filters.q = search.value.trim();
    show();
  });
  stateSelect.addEventListener("change", () => {
    filters.state = stateSelect.value;
    show();
  });
  runtimeSelect.addEventListener("change", () => {
    filters.runtime = runtimeSelect.value;
    show();
  });
  const onEvent = () => schedule();
  live.addEventListener("event", onEvent);
  live.addEventListener("missed", onEvent);
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") schedule(0);
  }, REFRESH_MS);
  await refresh();
  return () => {
    clearInterval(timer);
    schedule.cancel();
    live.removeEventListener("event", onEvent);
    live.removeEventListener("missed", onEvent);
  };
}

function makeRow(id, after) {
  const controls = lifecycleControls(after);
  const cell = (className) => h("td", { class: className });
  const cells = {
    id: cell("id"),
    version: cell("hide-narrow"),
    runtime: cell("hide-narrow"),
    isolation: cell("hide-narrow"),
    state: cell("state"),
    priority: cell("num hide-narrow"),
    breaker: cell("breaker"),
    calls: cell("num calls hide-narrow"),
    failures: cell("num failures hide-narrow"),
    p99: cell("num hide-narrow"),
    actions: h("td", {}, controls.element),
  };
  const tr = h("tr", { dataset: { plugin: id } }, Object.values(cells));
  let last = "";
  return {
    tr,
    update(row) {
      controls.update(row);
      const key = JSON.stringify([row.name, row.version, row.runtime, row.isolation, row.state, row.priority, row.breaker, row.calls, row.failures, row.p99_ms, row.error]);
      if (key === last) return;
      last = key;
      fill(
        cells.id,
        h("a", { href: pluginHref(id) }, id),
        row.name && row.name !== id ? h("div", { class: "muted" }, row.name) : null,
        row.error ? h("div", { class: "error small", title: row.error }, row.error) : null,
      );
      cells.version.textContent = row.version ?? "–";
      cells.runtime.textContent = row.runtime ?? "–";
      cells.isolation.textContent = row.isolation ?? "–";
      fill(cells.state, badge(row.state));
      cells.priority.textContent = row.priority ?? "–";
      fill(cells.breaker, badge(row.breaker));
      cells.calls.textContent = String(row.calls ?? 0);
      cells.failures.textContent = String(row.failures ?? 0);
      cells.p99.textContent = ms(row.p99_ms);
    },
  };
}
