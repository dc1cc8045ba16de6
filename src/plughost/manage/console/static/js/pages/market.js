// Market: search the configured plugin indexes and install a chosen version; manage what the market
// installed (update, roll back, uninstall, history); refresh the indexes and see where each copy came
// from. Everything goes through the public /api/v1/market API. Installs and updates answer only when
// they are done, so the plugin's buttons stay disabled with a "working…" status until the answer;
// a failure is shown twice: a toast, and inline under what failed (with the server's code and detail).
// The page is drawn from its state (`state` below): every change redraws the table it concerns, and
// focus is put back on the control that had it.

import { ApiError, get, post, withQuery } from "../api.js";
import { badge, emptyRow, fill, h, toast } from "../ui.js";
import { coalesce } from "./plugins.js";

const BASE = "/api/v1/market";
const RESULT_COLUMNS = 5;
const INSTALLED_COLUMNS = 6;
const LIMIT = 50;
/** The search and the last refresh's answer survive leaving the page and coming back. */
const query = { q: "", tag: "" };
let lastRefresh = null;

const quiet = (error) => error instanceof ApiError && error.status === 401; // the sign-in page is shown

function detailLines(detail) {
  if (!detail || typeof detail !== "object") return [];
  const text = (value) => (Array.isArray(value) ? value.join(", ") : value && typeof value === "object" ? JSON.stringify(value) : String(value));
  if (Array.isArray(detail)) return detail.map(text);
  return Object.entries(detail).map(([key, value]) => `${key}: ${text(value)}`);
}

/** An inline error: what failed, the server's message and code, and its detail. */
function errorBox(what, error) {
  const lines = detailLines(error.detail);
  return h(
    "div",
    { class: "market-error error", role: "alert" },
    h("strong", {}, `${what} failed: `),
    error.message,
    error.code ? [" ", h("code", {}, error.code)] : null,
    lines.length ? h("ul", { class: "errors" }, lines.map((line) => h("li", {}, line))) : null,
  );
}

function describeChanges(report, id) {
  const changes = report.changes.map(
    (c) => `${c.action} ${c.id} ${c.previous && c.previous !== c.version ? `${c.previous} → ` : ""}${c.version}${c.state ? ` (${c.state})` : ""}`,
  );
  const failed = (report.failed ?? []).map((f) => `${f.id}: ${f.message}`);
  if (!changes.length && !failed.length) return id ? `${id}: nothing to do, it is up to date` : "Everything is up to date";
  return [...changes, ...failed].join("; ");
}

/** Redraw `container` with `build()`, putting focus back on the control (same aria-label or id) that had it. */
function redraw(container, build) {
  const active = document.activeElement;
  let selector = null;
  if (active && container.contains(active)) {
    if (active.id) selector = `#${CSS.escape(active.id)}`;
    else if (active.getAttribute("aria-label")) selector = `[aria-label="${CSS.escape(active.getAttribute("aria-label"))}"]`;
  }
  fill(container, build());
  if (selector) container.querySelector(selector)?.focus();
}

export async function render(root, { live }) {
  const state = {
    indexes: lastRefresh, // the last refresh: {indexes, warnings}
    hits: [],
    total: 0,
    searchWarnings: [],
    installed: [],
    pending: new Map(), // id (or "*" for update-all) → what runs
    errors: new Map(), // id → {what, error}
    choosing: new Map(), // id → {info, version, enable, loading}
    confirming: new Map(), // id → {purge, dependents}
    histories: new Map(), // id → History, or {loading} / {error}
  };

  // -- indexes ----------------------------------------------------------------------------------
  const indexList = h("ul", { class: "market-indexes" });
  const refreshStatus = h("span", { class: "market-status", role: "status" });
  const refreshError = h("div", { hidden: true });
  const refreshButton = h(
    "button",
    { type: "button", class: "market-refresh", title: "Fetch every configured index now", onclick: () => refreshIndexes() },
    "Refresh",
  );

  // -- search -----------------------------------------------------------------------------------
  const q = h("input", { id: "market-q", type: "search", placeholder: "id, name, description…", value: query.q });
  const tag = h("input", { id: "market-tag", type: "search", placeholder: "tag", value: query.tag, class: "market-tag-input" });
  const count = h("p", { class: "muted count", role: "status" });
  const searchError = h("div", { hidden: true });
  const searchWarnings = h("ul", { class: "market-warnings", hidden: true });
  const results = h("tbody");

  // -- installed --------------------------------------------------------------------------------
  const installedBody = h("tbody");
  const installedError = h("div", { hidden: true });
  const updateAllStatus = h("span", { class: "market-status", role: "status" });
  const updateAllButton = h(
    "button",
    { type: "button", class: "market-update-all", title: "Fetch the indexes and update every plugin the market installed", onclick: () => updateAll() },
    "Update all",
  );

  const head = (text, className) => h("th", { scope: "col", class: className }, text);
  fill(
    root,
    h("h1", {}, "Market"),
    h(
      "section",
      { class: "card market-index-card", "aria-labelledby": "market-indexes-title" },
      h("div", { class: "spread" }, h("h2", { id: "market-indexes-title" }, "Indexes"), h("div", { class: "row" }, refreshStatus, refreshButton)),
      refreshError,
      indexList,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "market-search-title" },
      h("h2", { id: "market-search-title" }, "Find plugins"),
      h(
        "form",
        {
          class: "toolbar",
          role: "search",
          onsubmit: (event) => {
            event.preventDefault();
            query.q = q.value.trim();
            query.tag = tag.value.trim();
            search();
          },
        },
        h("div", { class: "field" }, h("label", { for: "market-q" }, "Search"), q),
        h("div", { class: "field" }, h("label", { for: "market-tag" }, "Tag"), tag),
        h("button", { type: "submit", class: "primary" }, "Search"),
        count,
      ),
      searchError,
      searchWarnings,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "market-results", "aria-label": "Plugins in the indexes" },
          h("thead", {}, h("tr", {}, head("Plugin"), head("Tags", "hide-narrow"), head("Newest"), head("Installed"), head("Actions"))),
          results,
        ),
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "market-installed-title" },
      h("div", { class: "spread" }, h("h2", { id: "market-installed-title" }, "Installed"), h("div", { class: "row" }, updateAllStatus, updateAllButton)),
      installedError,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "market-installed", "aria-label": "Plugins the market installed" },
          h(
            "thead",
            {},
            h("tr", {}, head("Plugin"), head("Version"), head("Newest"), head("State"), head("Index", "hide-narrow"), head("Actions")),
          ),
          installedBody,
        ),
      ),
    ),
  );

  function setError(box, what, error) {
    if (error) fill(box, errorBox(what, error));
    box.hidden = !error;
  }

  // -- reading ----------------------------------------------------------------------------------
  async function search() {
    try {
      const found = await get(withQuery(`${BASE}/search`, { q: query.q, tag: query.tag, limit: LIMIT }));
      state.hits = found.results;
      state.total = found.total;
      state.searchWarnings = found.warnings ?? [];
      setError(searchError, null, null);
    } catch (error) {
      if (quiet(error)) return;
      setError(searchError, "Search", error);
    }
    showResults();
  }

  let installedKey = null;
  async function loadInstalled() {
    try {
      const list = await get(`${BASE}/installed`);
      state.installed = list.plugins;
      setError(installedError, null, null);
    } catch (error) {
      if (quiet(error)) return;
      setError(installedError, "Reading the installed plugins", error);
    }
    const key = JSON.stringify(state.installed);
    if (key !== installedKey) {
      installedKey = key;
      showInstalled();
    }
  }

  /** After a change: the installed list and the search's "installed" column. */
  async function reread() {
    await Promise.all([loadInstalled(), search()]);
  }

  // -- acting -----------------------------------------------------------------------------------
  /** Run one market operation for `id`: its buttons disabled and "working…" until the answer. */
  async function operate(id, what, action, message, area) {
    state.pending.set(id, what);
    state.errors.delete(id);
    showResults();
    showInstalled();
    let result;
    try {
      result = await action();
      toast(message(result), "ok");
      for (const warning of result?.warnings ?? []) toast(warning, "info");
    } catch (error) {
      if (!quiet(error)) {
        state.errors.set(id, { what, error, area });
        toast(`${what} ${id === "*" ? "" : id}: ${error.message}`.replace(/\s+/g, " "), "error");
      }
    } finally {
      state.pending.delete(id);
    }
    if (result !== undefined) {
      state.choosing.delete(id);
      state.confirming.delete(id);
      if (state.histories.has(id)) loadHistory(id);
    }
    showResults();
    showInstalled();
    await reread();
    return result;
  }

  async function refreshIndexes() {
    refreshButton.disabled = true;
    refreshButton.setAttribute("aria-busy", "true");
    refreshStatus.textContent = "working…";
    setError(refreshError, null, null);
    try {
      state.indexes = lastRefresh = await post(`${BASE}/refresh`);
      const usable = state.indexes.indexes.filter((index) => index.source !== "unavailable").length;
      toast(`Indexes refreshed (${usable} of ${state.indexes.indexes.length} usable)`, usable === state.indexes.indexes.length ? "ok" : "error");
    } catch (error) {
      if (!quiet(error)) {
        setError(refreshError, "Refresh", error);
        toast(`Refresh: ${error.message}`, "error");
      }
    } finally {
      refreshButton.disabled = false;
      refreshButton.removeAttribute("aria-busy");
      refreshStatus.textContent = "";
    }
    showIndexes();
    await reread();
  }

  async function updateAll() {
    updateAllButton.disabled = true;
    updateAllButton.setAttribute("aria-busy", "true");
    updateAllStatus.textContent = "working…";
    await operate("*", "Update all", () => post(`${BASE}/update`, { all: true }), (report) => describeChanges(report, null), "all");
    const failure = state.errors.get("*");
    setError(installedError, "Update all", failure?.error);
    updateAllButton.disabled = false;
    updateAllButton.removeAttribute("aria-busy");
    updateAllStatus.textContent = "";
  }

  async function choose(id) {
    if (state.choosing.has(id)) {
      state.choosing.delete(id);
      showResults();
      return;
    }
    const choice = { info: null, version: "", enable: true, loading: true };
    state.choosing.set(id, choice);
    showResults();
    try {
      choice.info = await get(`${BASE}/plugins/${encodeURIComponent(id)}`);
      const fitting = choice.info.versions.filter((v) => v.fits);
      choice.version = choice.info.latest ?? fitting[0]?.version ?? "";
    } catch (error) {
      if (quiet(error)) return;
      state.choosing.delete(id);
      state.errors.set(id, { what: "Reading the versions", error, area: "results" });
      toast(`${id}: ${error.message}`, "error");
    }
    choice.loading = false;
    showResults();
  }

  function install(id) {
    const choice = state.choosing.get(id);
    const body = { id, version: choice?.version || null, enable: choice?.enable ?? true };
    return operate(id, "Install", () => post(`${BASE}/install`, body), (report) => describeChanges(report, id), "results");
  }

  function update(id) {
    return operate(id, "Update", () => post(`${BASE}/update`, { id }), (report) => describeChanges(report, id), "installed");
  }

  function rollback(id, version) {
    return operate(
      id,
      "Roll back",
      () => post(`${BASE}/rollback`, { id, version: version || null }),
      (result) => `${result.id} rolled back to ${result.version} (was ${result.previous})${result.state ? `, ${result.state}` : ""}`,
      "installed",
    );
  }

  async function uninstall(id, force) {
    const confirm = state.confirming.get(id) ?? { purge: false, dependents: null };
    const result = await operate(
      id,
      "Uninstall",
      () => post(`${BASE}/uninstall`, { id, purge: confirm.purge, force }),
      (done) => `${done.id} ${done.version} uninstalled${done.purged ? ", with its configuration and data" : ""}`,
      "installed",
    );
    const failure = state.errors.get(id);
    if (result === undefined && failure?.error.code === "has_dependents" && state.confirming.has(id)) {
      confirm.dependents = failure.error.detail?.dependents ?? [];
      showInstalled();
    }
  }

  async function loadHistory(id) {
    if (!state.histories.get(id)?.entries) state.histories.set(id, { loading: true });
    showInstalled();
    try {
      state.histories.set(id, await get(`${BASE}/history/${encodeURIComponent(id)}`));
    } catch (error) {
      if (quiet(error)) return;
      state.histories.set(id, { error });
    }
    showInstalled();
  }

  function toggleHistory(id) {
    if (state.histories.has(id)) {
      state.histories.delete(id);
      showInstalled();
    } else loadHistory(id);
  }

  function toggleConfirm(id) {
    if (state.confirming.has(id)) state.confirming.delete(id);
    else state.confirming.set(id, { purge: false, dependents: null });
    showInstalled();
  }

  // -- drawing ----------------------------------------------------------------------------------
  const working = (id) => (state.pending.has(id) || state.pending.has("*") ? h("span", { class: "market-status", role: "status" }, "working…") : null);
  const busy = (id) => state.pending.has(id) || state.pending.has("*");
  const sub = (columns, className, ...children) => h("tr", { class: `market-sub ${className}` }, h("td", { colSpan: columns }, ...children));
  const errorRow = (id, columns, area) => {
    const failure = state.errors.get(id);
    return failure?.area === area ? sub(columns, "failed", errorBox(failure.what, failure.error)) : null;
  };

  function showIndexes() {
    const result = state.indexes;
    if (!result) {
      fill(indexList, h("li", { class: "muted" }, "Not refreshed from this page yet: search reads the cached copies (or fetches them when they are too old)."));
      return;
    }
    fill(
      indexList,
      result.indexes.length ? null : h("li", { class: "muted" }, "No index is configured ([market] indexes in plughost.toml)."),
      result.indexes.map((index) =>
        h(
          "li",
          { dataset: { index: index.name } },
          h("strong", {}, index.name),
          " ",
          badge(index.source),
          " ",
          h("span", { class: "muted" }, `${index.plugins} plugin${index.plugins === 1 ? "" : "s"}`),
          index.signed_by ? [" · ", h("span", { class: "muted" }, `signed by ${index.signed_by}`)] : null,
          index.fetched_at ? [" · ", h("span", { class: "muted" }, `fetched ${new Date(index.fetched_at * 1000).toLocaleString()}`)] : null,
          h("div", { class: "muted small mono" }, index.url),
          index.warning ? h("div", { class: "stale" }, index.warning) : null,
          index.error ? h("div", { class: "error" }, index.error) : null,
        ),
      ),
      result.warnings.map((warning) => h("li", { class: "stale" }, warning)),
    );
  }

  function showResults() {
    count.textContent = state.total > state.hits.length ? `${state.hits.length} of ${state.total} plugins` : `${state.hits.length} plugin${state.hits.length === 1 ? "" : "s"}`;
    searchWarnings.hidden = !state.searchWarnings.length;
    fill(searchWarnings, state.searchWarnings.map((warning) => h("li", { class: "stale" }, warning)));
    redraw(results, () => {
      if (!state.hits.length) return emptyRow(RESULT_COLUMNS, query.q || query.tag ? "No plugin matches." : "The indexes list no plugin.");
      return state.hits.map((hit) => resultRows(hit));
    });
  }

  function resultRows(hit) {
    const { id } = hit;
    const choice = state.choosing.get(id);
    const text = hit.installed ? "Versions" : "Install";
    const row = h(
      "tr",
      { class: "market-hit", dataset: { plugin: id } },
      h(
        "td",
        { class: "id" },
        h("strong", {}, hit.name || id),
        hit.name && hit.name !== id ? [" ", h("code", { class: "muted" }, id)] : null,
        hit.description ? h("div", { class: "muted description" }, hit.description) : null,
      ),
      h("td", { class: "tags hide-narrow" }, hit.tags.map((name) => h("span", { class: "tag" }, name))),
      h("td", { class: "latest" }, hit.latest),
      h("td", { class: "installed" }, hit.installed ?? "–"),
      h(
        "td",
        {},
        h(
          "div",
          { class: "actions" },
          h(
            "button",
            {
              type: "button",
              class: hit.installed ? "" : "primary",
              "aria-label": `${text} ${id}`,
              "aria-expanded": String(Boolean(choice)),
              disabled: busy(id),
              onclick: () => choose(id),
            },
            text,
          ),
          working(id),
        ),
      ),
    );
    return [row, choice ? sub(RESULT_COLUMNS, "choose", chooser(id, choice)) : null, errorRow(id, RESULT_COLUMNS, "results")];
  }

  function chooser(id, choice) {
    if (choice.loading) return h("span", { class: "market-status", role: "status" }, "reading the versions…");
    const versions = choice.info?.versions ?? [];
    const installed = choice.info?.installed?.version;
    const select = h(
      "select",
      { id: `market-version-${id}`, onchange: (event) => (choice.version = event.currentTarget.value) },
      versions.map((v) =>
        h(
          "option",
          { value: v.version, disabled: !v.fits, title: v.why_not ?? null },
          [v.version, v.version === choice.info.latest ? " (newest)" : "", v.version === installed ? " (installed)" : "", v.fits ? "" : ` — ${v.why_not}`].join(""),
        ),
      ),
    );
    select.value = choice.version;
    const enable = h("input", { type: "checkbox", id: `market-enable-${id}`, checked: choice.enable, onchange: (event) => (choice.enable = event.currentTarget.checked) });
    return h(
      "div",
      { class: "market-form" },
      h("label", { for: select.id }, "Version"),
      select,
      h("label", { class: "check" }, enable, " Enable once loaded"),
      h(
        "button",
        { type: "button", class: "primary", "aria-label": `Confirm install of ${id}`, disabled: busy(id) || !versions.some((v) => v.fits), onclick: () => install(id) },
        "Install",
      ),
      h("button", { type: "button", "aria-label": `Cancel install of ${id}`, disabled: busy(id), onclick: () => choose(id) }, "Cancel"),
      choice.info?.author ? h("span", { class: "muted" }, `by ${choice.info.author}`) : null,
    );
  }

  function showInstalled() {
    redraw(installedBody, () => {
      if (!state.installed.length) return emptyRow(INSTALLED_COLUMNS, "The market installed no plugin here.");
      return state.installed.map((row) => installedRows(row));
    });
  }

  function installedRows(row) {
    const { id } = row;
    const kept = row.kept_versions ?? [];
    const confirm = state.confirming.get(id);
    const history = state.histories.get(id);
    const disabled = busy(id);
    let rollbackTo = kept[kept.length - 1] ?? "";
    const rollbackSelect =
      kept.length > 1
        ? h(
            "select",
            { "aria-label": `Version to roll back ${id} to`, onchange: (event) => (rollbackTo = event.currentTarget.value) },
            kept.map((version) => h("option", { value: version }, version)),
          )
        : null;
    if (rollbackSelect) rollbackSelect.value = rollbackTo;
    const newer = row.latest && row.latest !== row.version;
    const tr = h(
      "tr",
      { class: "market-installed-row", dataset: { plugin: id } },
      h("td", { class: "id" }, h("strong", {}, id), row.dependency ? [" ", h("span", { class: "tag" }, "dependency")] : null),
      h("td", { class: "version" }, row.version),
      h("td", { class: "latest" }, row.latest ?? "–", newer ? [" ", badge("update")] : null),
      h("td", { class: "state" }, badge(row.state ?? "not loaded")),
      h("td", { class: "hide-narrow" }, row.index),
      h(
        "td",
        {},
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", class: newer ? "primary" : "", "aria-label": `Update ${id}`, disabled, onclick: () => update(id) }, "Update"),
          rollbackSelect,
          h(
            "button",
            {
              type: "button",
              "aria-label": `Roll back ${id}`,
              title: kept.length ? `switch back to ${rollbackSelect ? "the chosen kept version" : kept[0]}` : "no previous version is kept",
              disabled: disabled || !kept.length,
              onclick: () => rollback(id, rollbackSelect ? rollbackTo : null),
            },
            "Roll back",
          ),
          h(
            "button",
            { type: "button", class: "danger", "aria-label": `Uninstall ${id}`, "aria-expanded": String(Boolean(confirm)), disabled, onclick: () => toggleConfirm(id) },
            "Uninstall",
          ),
          h("button", { type: "button", "aria-label": `History of ${id}`, "aria-expanded": String(Boolean(history)), onclick: () => toggleHistory(id) }, "History"),
          working(id),
        ),
      ),
    );
    return [
      tr,
      confirm ? sub(INSTALLED_COLUMNS, "confirm", confirmForm(row, confirm, disabled)) : null,
      history ? sub(INSTALLED_COLUMNS, "history", historyView(history)) : null,
      errorRow(id, INSTALLED_COLUMNS, "installed"),
    ];
  }

  function confirmForm(row, confirm, disabled) {
    const { id } = row;
    const purge = h("input", { type: "checkbox", id: `market-purge-${id}`, checked: confirm.purge, onchange: (event) => (confirm.purge = event.currentTarget.checked) });
    const blocked = confirm.dependents && confirm.dependents.length;
    return h(
      "div",
      { class: "market-form" },
      h("span", {}, `Uninstall ${id} ${row.version}? It is stopped and its files are removed.`),
      h("label", { class: "check" }, purge, " Also remove its configuration and data (purge)"),
      blocked ? h("p", { class: "error", role: "alert" }, `Other plugins depend on it: ${confirm.dependents.join(", ")}.`) : null,
      h(
        "button",
        { type: "button", class: "danger", "aria-label": `Confirm uninstall of ${id}`, disabled, onclick: () => uninstall(id, false) },
        "Uninstall",
      ),
      blocked
        ? h("button", { type: "button", class: "danger", "aria-label": `Uninstall ${id} anyway`, disabled, onclick: () => uninstall(id, true) }, "Uninstall anyway")
        : null,
      h("button", { type: "button", "aria-label": `Cancel uninstall of ${id}`, disabled, onclick: () => toggleConfirm(id) }, "Cancel"),
    );
  }

  function historyView(history) {
    if (history.loading) return h("span", { class: "market-status", role: "status" }, "reading the history…");
    if (history.error) return errorBox("Reading the history", history.error);
    return h(
      "ol",
      { class: "market-history" },
      history.entries.map((entry) =>
        h(
          "li",
          {},
          h("time", { class: "muted" }, new Date(entry.at * 1000).toLocaleString()),
          " ",
          badge(entry.action),
          " ",
          entry.previous && entry.version ? `${entry.previous} → ${entry.version}` : entry.version ?? entry.previous ?? "",
          entry.index ? h("span", { class: "muted" }, ` from ${entry.index}`) : null,
        ),
      ),
    );
  }

  // -- live -------------------------------------------------------------------------------------
  const schedule = coalesce(loadInstalled, 200); // a plugin's state changed: the State column follows
  const onEvent = () => schedule();
  live.addEventListener("event", onEvent);
  live.addEventListener("missed", onEvent);

  showIndexes();
  showResults();
  showInstalled();
  await reread();
  return () => {
    schedule.cancel();
    live.removeEventListener("event", onEvent);
    live.removeEventListener("missed", onEvent);
  };
}
