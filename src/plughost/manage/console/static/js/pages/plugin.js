// One plugin: key facts and manifest, guard metrics and recent errors (with "Clear breaker"), the
// configuration editor generated from its config_schema, a form to call its methods, its menu
// pages (framed sandboxed, without allow-same-origin: plugin HTML cannot reach the console's
// session storage), its descriptor, its recent events and its log. Sections follow the live event
// stream for this plugin; a form being edited is never replaced under the operator's hands.

import { ApiError, get, post, put, withQuery } from "../api.js";
import { follow } from "../stream.js";
import { badge, fill, formatTime, h, toast } from "../ui.js";
import { schemaForm, stable } from "../schema_form.js";
import { coalesce, lifecycleControls, pluginPath } from "./plugins.js";

const REFRESH_MS = 5000;
const LOG_LINES = 300;
const EVENT_LINES = 15;
/** Resource pages may run their scripts and submit forms, but in an opaque origin of their own. */
const RESOURCE_SANDBOX = "allow-scripts allow-forms";

export async function render(root, context) {
  let inner = null;
  let stopped = false;
  let shown = false;
  /** (Re)draw the page: after a load or an unload it switches between the detail and "not loaded". */
  async function show() {
    inner?.();
    inner = null;
    try {
      const done = await renderPlugin(root, context, show);
      if (stopped) done?.();
      else inner = done;
    } catch (error) {
      if (!shown) throw error; // the first drawing's failure is the app's to show
      if (!(error instanceof ApiError && error.status === 401)) {
        fill(root, h("div", { class: "card error", role: "alert" }, `This page failed to refresh: ${error.message}`));
      }
    }
    shown = true;
  }
  await show();
  return () => {
    stopped = true;
    inner?.();
  };
}

async function renderPlugin(root, { params, live }, again) {
  const id = params.id;
  let early = false; // an event about this plugin while the page loads: read again once it is shown
  const onEarly = (event) => {
    if (event.type === "missed" || event.detail?.plugin_id === id) early = true;
  };
  live.addEventListener("event", onEarly);
  live.addEventListener("missed", onEarly);
  let detail;
  try {
    detail = await get(pluginPath(id));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return renderMissing(root, id, live, again);
    throw error;
  } finally {
    live.removeEventListener("event", onEarly);
    live.removeEventListener("missed", onEarly);
  }

  const stateBadge = h("span", { class: "plugin-state" });
  const subtitle = h("p", { class: "muted subtitle" });
  const controls = lifecycleControls(() => schedule(0));
  const facts = factsSection();
  const health = healthSection(id, () => schedule(0));
  const config = configSection(id);
  const call = callSection(id);
  const pages = resourceSection();
  const descriptor = descriptorSection();
  const events = h("ul", { class: "plugin-events" });
  const logs = logSection(id);
  fill(
    root,
    h("p", {}, h("a", { href: "#/plugins" }, "← Plugins")),
    h(
      "div",
      { class: "spread plugin-head" },
      h("div", {}, h("h1", {}, id, " ", stateBadge), subtitle),
      controls.element,
    ),
    h(
      "div",
      { class: "detail-grid" },
      facts.element,
      health.element,
      config.element,
      call.element,
      pages.element,
      h("section", { class: "card", "aria-labelledby": "events-title" }, h("h2", { id: "events-title" }, "Recent events"), events),
      descriptor.element,
      logs.element,
    ),
  );

  function update(next) {
    detail = next;
    fill(stateBadge, badge(next.state));
    const summary = next.summary ?? {};
    subtitle.textContent = [summary.name !== id ? summary.name : null, summary.version && `version ${summary.version}`, summary.description]
      .filter(Boolean)
      .join(" · ");
    controls.update({ id, state: next.state, status: "available", path: summary.path });
    facts.update(next);
    health.update(next);
    config.update(next);
    call.update(next);
    pages.update(next);
    descriptor.update(next);
  }

  function showEvents(recent) {
    fill(
      events,
      recent.events.length
        ? recent.events
            .slice()
            .reverse()
            .map((event) =>
              h(
                "li",
                { dataset: { type: event.type } },
                h("span", { class: "muted" }, formatTime(event.timestamp)),
                " ",
                badge(event.type),
                " ",
                event.message,
                event.error ? h("span", { class: "error" }, ` — ${event.error}`) : null,
              ),
            )
        : h("li", { class: "muted" }, "No events yet."),
    );
  }

  const recentEvents = () => get(withQuery("/api/v1/events", { plugin_id: id, limit: EVENT_LINES }));
  async function refresh() {
    let next;
    try {
      next = await get(pluginPath(id));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        again();
        return;
      }
      throw error;
    }
    update(next);
    showEvents(await recentEvents());
  }
  const schedule = coalesce(refresh);
  // listen before the first reads: what happens while they run is fetched again afterwards
  const onEvent = (event) => {
    if (event.detail?.plugin_id === id) schedule();
  };
  const onMissed = () => schedule();
  live.addEventListener("event", onEvent);
  live.addEventListener("missed", onMissed);
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") schedule(0);
  }, REFRESH_MS);
  if (early) schedule(0);
  update(detail);
  try {
    showEvents(await recentEvents());
    await logs.start();
  } catch (error) {
    clearInterval(timer);
    schedule.cancel();
    logs.stop();
    live.removeEventListener("event", onEvent);
    live.removeEventListener("missed", onMissed);
    throw error;
  }
  return () => {
    clearInterval(timer);
    schedule.cancel();
    logs.stop();
    live.removeEventListener("event", onEvent);
    live.removeEventListener("missed", onMissed);
  };
}

/** The plugin is not loaded (or unknown): what discovery knows of it, with Load/Build if it can be. */
async function renderMissing(root, id, live, again) {
  const list = await get(withQuery("/api/v1/plugins", { q: id }));
  const row = list.plugins.find((item) => item.id === id);
  const controls = lifecycleControls((result) => {
    if (result) again();
  });
  let body;
  if (!row) {
    body = h("p", {}, `No plugin “${id}” is loaded or was found in the plugin directories.`);
  } else {
    controls.update(row);
    body = [
      h("p", {}, badge(row.status), " ", h("code", {}, row.path)),
      row.errors?.length ? h("ul", { class: "errors" }, row.errors.map((text) => h("li", { class: "error" }, text))) : null,
      row.status === "invalid" ? null : controls.element,
    ];
  }
  fill(
    root,
    h("p", {}, h("a", { href: "#/plugins" }, "← Plugins")),
    h("h1", {}, id),
    h("section", { class: "card" }, h("h2", {}, "Not loaded"), body),
  );
  const onEvent = (event) => {
    if (event.detail?.plugin_id === id) again();
  };
  live.addEventListener("event", onEvent);
  return () => live.removeEventListener("event", onEvent);
}

// ---- sections -------------------------------------------------------------------------------

function card(name, title, ...children) {
  return h("section", { class: `card ${name}`, "aria-labelledby": `${name}-title` }, h("h2", { id: `${name}-title` }, title), ...children);
}

function json(value) {
  return h("pre", {}, JSON.stringify(value, null, 2));
}

function collapsible(summary, value, className) {
  return h("details", { class: className }, h("summary", {}, summary), json(value));
}

function factsSection() {
  const list = h("dl", { class: "facts" });
  const manifest = h("div");
  const element = card("about", "About", list, manifest);
  let last = "";
  return {
    element,
    update(detail) {
      const key = stable([detail.summary, detail.manifest]);
      if (key === last) return;
      last = key;
      const s = detail.summary ?? {};
      const fact = (label, value) =>
        value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)
          ? null
          : [h("dt", {}, label), h("dd", {}, value)];
      fill(
        list,
        fact("Name", s.name),
        fact("Version", s.version),
        fact("Runtime", s.runtime),
        fact("Isolation", s.isolation),
        fact("State", s.state),
        fact("Priority", s.priority),
        fact("Type", s.type),
        fact("Description", s.description),
        fact("Tags", s.tags?.join(", ")),
        fact("Path", s.path ? h("code", {}, s.path) : null),
        fact("Found in", s.origin),
        fact("Error", s.error ? h("span", { class: "error" }, s.error) : null),
      );
      fill(manifest, collapsible("Manifest (JSON)", detail.manifest, "manifest"));
    },
  };
}

const ms = (value) => (value === null || value === undefined ? "–" : `${value} ms`);
const NARROW_HIDDEN = new Set([3, 4, 6]); // timeouts, p50, last error: not on a phone

function healthSection(id, after) {
  const breaker = h("span", { class: "breaker-state" });
  const about = h("span", { class: "muted" });
  const clear = h("button", { type: "button", class: "clear-breaker" }, "Clear breaker");
  const handlers = h("tbody");
  const errors = h("ul", { class: "recent-errors" });
  clear.addEventListener("click", async () => {
    clear.disabled = true;
    try {
      await post(`/api/v1/dynamic-errors/${encodeURIComponent(id)}/clear`);
      toast(`${id}: circuit breaker cleared`, "ok");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) toast(error.message, "error");
    } finally {
      clear.disabled = false;
      after();
    }
  });
  const element = card(
    "health",
    "Health",
    h("p", { class: "row" }, h("span", {}, "Circuit breaker: "), breaker, about, clear),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "handlers" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Handler", "Calls", "Failures", "Timeouts", "p50", "p99", "Last error"].map((text, index) =>
              h("th", { scope: "col", class: [index && index < 6 ? "num" : "", NARROW_HIDDEN.has(index) ? "hide-narrow" : ""].join(" ").trim() || null }, text),
            ),
          ),
        ),
        handlers,
      ),
    ),
    h("h3", {}, "Recent errors"),
    errors,
  );
  return {
    element,
    update(detail) {
      const guard = detail.guard ?? {};
      const state = guard.breaker ?? {};
      fill(breaker, badge(state.state ?? "closed"));
      const parts = [];
      if (state.consecutive_failures) parts.push(`${state.consecutive_failures} consecutive failures`);
      if (state.isolated_for_s) parts.push(`isolated for ${Math.ceil(state.isolated_for_s)} s more`);
      if (state.isolations) parts.push(`${state.isolations} isolation${state.isolations === 1 ? "" : "s"} so far`);
      about.textContent = parts.join(", ");
      const rows = Object.entries(guard.handlers ?? {});
      fill(
        handlers,
        rows.length
          ? rows.map(([name, m]) =>
              h(
                "tr",
                { dataset: { handler: name } },
                h("td", {}, h("code", {}, name)),
                h("td", { class: "num" }, m.calls),
                h("td", { class: "num" }, m.failures),
                h("td", { class: "num hide-narrow" }, m.timeouts),
                h("td", { class: "num hide-narrow" }, ms(m.p50_ms)),
                h("td", { class: "num" }, ms(m.p99_ms)),
                h("td", { class: `${m.last_error ? "error" : "muted"} hide-narrow` }, m.last_error ?? "–"),
              ),
            )
          : h("tr", {}, h("td", { colSpan: 7, class: "empty" }, "No calls yet.")),
      );
      const recent = rows
        .flatMap(([, m]) => m.recent_errors ?? [])
        .sort((a, b) => b.timestamp - a.timestamp)
        .slice(0, 10);
      fill(
        errors,
        recent.length
          ? recent.map((item) =>
              h(
                "li",
                {},
                h("span", { class: "muted" }, formatTime(item.timestamp)),
                " ",
                h("code", {}, item.handler),
                " ",
                h("span", { class: "error" }, item.message),
                item.at ? h("span", { class: "muted" }, " at ", h("code", {}, item.at)) : null,
                item.error_id ? h("span", { class: "muted" }, ` (${item.error_id})`) : null,
              ),
            )
          : h("li", { class: "muted" }, "None."),
      );
    },
  };
}

/** A native plugin without a config_schema may declare CLIProxyAPI ConfigFields: a schema from them. */
function configFieldsSchema(detail) {
  const fields = detail.descriptor?.metadata?.plugin?.ConfigFields;
  if (!Array.isArray(fields) || !fields.length) return null;
  const types = { int: "integer", integer: "integer", float: "number", number: "number", double: "number", bool: "boolean", boolean: "boolean" };
  const properties = {};
  for (const field of fields) {
    if (!field?.Name) continue;
    const property = { type: types[String(field.Type).toLowerCase()] ?? "string" };
    if (Array.isArray(field.EnumValues) && field.EnumValues.length) property.enum = field.EnumValues;
    if (field.Description) property.description = field.Description;
    properties[field.Name] = property;
  }
  return { type: "object", properties };
}

function configSection(id) {
  const holder = h("div");
  const origin = h("p", { class: "hint" });
  const status = h("p", { class: "config-status", role: "status" });
  const stale = h("p", { class: "hint stale", hidden: true }, "The configuration changed on the host while you were editing; saving replaces it.");
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const discard = h("button", { type: "button", disabled: true }, "Discard changes");
  const form = h("form", { class: "config-form", novalidate: true }, origin, holder, stale, h("div", { class: "form-actions" }, save, discard, status));
  const element = card("config", "Configuration", form);
  let editor = null;
  let schemaKey = null;
  let savedKey = null;
  let saved = {};
  let schema = null;

  function build() {
    const withSchema = schema !== null;
    editor = withSchema
      ? schemaForm(schema, saved, { prefix: "config", onChange: changed })
      : schemaForm({}, saved, { prefix: "config", label: "Configuration (JSON object)", onChange: changed });
    fill(holder, editor.element);
    stale.hidden = true;
    discard.disabled = true;
  }

  function changed(dirty) {
    discard.disabled = !dirty;
    if (dirty && status.dataset.state === "saved") {
      status.textContent = "";
      delete status.dataset.state;
    }
  }

  discard.addEventListener("click", () => {
    build();
    status.textContent = "";
    delete status.dataset.state;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    editor.clearErrors();
    const { value, problems } = editor.collect();
    if (problems.length) {
      editor.showErrors(problems);
      status.textContent = "Not saved: fix the marked fields.";
      status.dataset.state = "error";
      return;
    }
    save.disabled = true;
    status.textContent = "Saving…";
    status.dataset.state = "saving";
    try {
      const result = await put(`${pluginPath(id)}/config`, value);
      saved = result.config;
      savedKey = stable(result.config);
      editor.markSaved();
      stale.hidden = true;
      status.textContent = result.applied ? "Saved and applied." : "Saved; it applies when the plugin is loaded.";
      status.dataset.state = "saved";
      toast(`${id}: configuration saved${result.applied ? " and applied" : ""}`, "ok");
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      const fields = error instanceof ApiError ? error.detail?.fields : null;
      if (Array.isArray(fields) && fields.length) editor.showErrors(fields);
      status.textContent = `Not saved: ${error.message}`;
      status.dataset.state = "error";
      toast(`${id}: configuration not saved`, "error");
    } finally {
      save.disabled = false;
    }
  });

  return {
    element,
    update(detail) {
      const declared = detail.config_schema ?? null;
      const fromFields = declared ? null : configFieldsSchema(detail);
      const nextSchema = declared ?? fromFields;
      const nextSchemaKey = stable(nextSchema);
      const nextKey = stable(detail.config ?? {});
      if (editor && nextSchemaKey === schemaKey && nextKey === savedKey) return;
      if (editor?.dirty && nextSchemaKey === schemaKey) {
        stale.hidden = false; // keep what the operator typed
        saved = detail.config ?? {};
        savedKey = nextKey;
        return;
      }
      schema = nextSchema;
      schemaKey = nextSchemaKey;
      saved = detail.config ?? {};
      savedKey = nextKey;
      origin.textContent = declared
        ? "Generated from the plugin's config_schema; the host checks it again when you save."
        : fromFields
          ? "Generated from the plugin's declared config fields."
          : "This plugin declares no config_schema: edit its configuration as JSON.";
      build();
    },
  };
}

function callSection(id) {
  const select = h("select", { id: "call-method", name: "method" });
  const about = h("p", { class: "description" });
  const args = h("div", { class: "call-args" });
  const timeout = h("input", { id: "call-timeout", type: "number", min: "0.001", step: "any", inputmode: "decimal", placeholder: "default" });
  const submit = h("button", { type: "submit", class: "primary" }, "Call");
  const result = h("div", { class: "call-result", role: "status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "call-form", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "call-method" }, "Method"), select, about),
    args,
    h("div", { class: "field" }, h("label", { for: "call-timeout" }, "Timeout (s)"), timeout),
    h("div", { class: "form-actions" }, submit),
  );
  const none = h("p", { class: "muted" }, "This plugin has no methods to call.");
  const element = card("call", "Call a method", form, none, result);
  let methods = [];
  let editor = null;
  let last = null;

  function choose() {
    const method = methods.find((item) => item.key === select.value);
    if (!method) return;
    about.textContent = method.description || "";
    about.hidden = !method.description;
    if (method.name === null) {
      editor = schemaForm({}, undefined, { prefix: "args", label: "Input (JSON)", rootObject: false });
    } else {
      const schema = method.input_schema ?? { type: "object", properties: {} };
      editor = schemaForm(schema, {}, { prefix: "args" });
    }
    const empty = method.name !== null && !Object.keys(method.input_schema?.properties ?? {}).length;
    fill(args, empty ? h("p", { class: "muted no-args" }, "No arguments.") : editor.element);
    result.replaceChildren();
  }
  select.addEventListener("change", choose);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const method = methods.find((item) => item.key === select.value);
    if (!method || !editor) return;
    editor.clearErrors();
    const { value, problems } = editor.collect();
    if (problems.length) {
      editor.showErrors(problems);
      return;
    }
    const seconds = timeout.value.trim() ? Number(timeout.value) : null;
    submit.disabled = true;
    fill(result, h("p", { class: "muted" }, "Calling…"));
    try {
      const body = { method: method.name, args: method.name === null ? (value ?? null) : value };
      if (seconds) body.timeout_s = seconds;
      const answer = await post(`${pluginPath(id)}/execute`, body);
      const took = `${(answer.execution_time * 1000).toFixed(1)} ms`;
      result.dataset.success = String(answer.success);
      fill(
        result,
        h("p", {}, badge(answer.success ? "ok" : "error"), ` ${method.label} answered in ${took}`),
        answer.success
          ? json(answer.result)
          : [h("p", { class: "error" }, answer.error ?? "failed"), answer.metadata ? collapsible("Details", answer.metadata) : null],
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      result.dataset.success = "false";
      const fields = error instanceof ApiError ? error.detail?.fields : null;
      if (Array.isArray(fields)) editor.showErrors(fields);
      fill(result, h("p", { class: "error" }, `The call was not made: ${error.message}`));
    } finally {
      submit.disabled = false;
    }
  });

  return {
    element,
    update(detail) {
      const descriptor = detail.descriptor;
      const list = (descriptor?.methods ?? []).map((method) => ({ ...method, key: method.name, label: method.name }));
      if ((descriptor?.capabilities ?? []).includes("execute")) {
        list.push({ key: "\u0000execute", name: null, label: "execute()", description: "The plugin's execute() with a JSON input." });
      }
      const key = stable(list);
      if (key === last) return;
      last = key;
      methods = list;
      form.hidden = !list.length;
      none.hidden = list.length > 0;
      const previous = select.value;
      fill(select, list.map((method) => h("option", { value: method.key }, method.label)));
      if (list.some((method) => method.key === previous)) select.value = previous;
      if (list.length) choose();
    },
  };
}

function resourceSection() {
  const menu = h("ul", { class: "resource-menu" });
  const note = h("p", { class: "hint" });
  const frame = h("iframe", {
    class: "resource",
    sandbox: RESOURCE_SANDBOX,
    referrerpolicy: "no-referrer",
    title: "Plugin page",
    id: "resource-frame",
    hidden: true,
  });
  const element = card("pages", "Pages", note, menu, frame);
  element.hidden = true;
  let last = null;
  let chosen = null;
  return {
    element,
    update(detail) {
      const resources = (detail.descriptor?.http ?? []).filter((entry) => entry.kind === "resource");
      const enabled = detail.state === "enabled" || detail.state === "isolated";
      const key = stable([resources, enabled]);
      if (key === last) return;
      last = key;
      element.hidden = !resources.length;
      note.textContent = enabled
        ? "The plugin's own pages, shown in a sandboxed frame: they cannot reach this console or its key."
        : "The plugin serves its pages only while it is enabled.";
      const buttons = [];
      fill(
        menu,
        resources.map((entry) => {
          const button = h(
            "button",
            {
              type: "button",
              "aria-pressed": String(entry.path === chosen),
              "aria-controls": "resource-frame",
              disabled: !enabled,
              onclick: () => {
                chosen = entry.path;
                for (const other of buttons) other.setAttribute("aria-pressed", String(other === button));
                frame.title = entry.menu || entry.path;
                frame.hidden = false;
                frame.src = entry.path;
              },
            },
            entry.menu || entry.path,
          );
          buttons.push(button);
          return h("li", {}, button, entry.description ? h("span", { class: "muted" }, ` ${entry.description}`) : null, " ", h("code", { class: "muted" }, entry.path));
        }),
      );
      if (!enabled || !resources.some((entry) => entry.path === chosen)) {
        chosen = null;
        frame.hidden = true;
        frame.removeAttribute("src");
      }
    },
  };
}

function table(className, headings, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: className },
      h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows),
    ),
  );
}

function descriptorSection() {
  const holder = h("div");
  const element = card("descriptor", "Descriptor", holder);
  let last = null;
  return {
    element,
    update(detail) {
      const d = detail.descriptor;
      const key = stable(d);
      if (key === last) return;
      last = key;
      if (!d) {
        fill(holder, h("p", { class: "muted" }, "Not loaded: the descriptor comes from the running plugin."));
        return;
      }
      const commands = d.commands ?? [];
      const methods = d.methods ?? [];
      const http = d.http ?? [];
      const routes = d.routes ?? [];
      const interceptors = d.interceptors ?? [];
      fill(
        holder,
        h("h3", {}, "Capabilities"),
        (d.capabilities ?? []).length ? h("p", { class: "row capabilities" }, d.capabilities.map((name) => badge(name))) : h("p", { class: "muted" }, "None."),
        h("h3", {}, `Commands (${commands.length})`),
        commands.length
          ? table(
              "descriptor-commands",
              ["Command", "Usage", "Description", "Role"],
              commands.map((command) =>
                h(
                  "tr",
                  {},
                  h("td", {}, h("code", {}, command.name), command.aliases?.length ? h("div", { class: "muted" }, `also ${command.aliases.join(", ")}`) : null),
                  h("td", {}, command.usage ? h("code", {}, command.usage) : "–"),
                  h("td", {}, command.description || "–"),
                  h("td", {}, command.role ?? "–"),
                ),
              ),
            )
          : h("p", { class: "muted" }, "None."),
        h("h3", {}, `Methods (${methods.length})`),
        methods.length
          ? h(
              "ul",
              { class: "methods" },
              methods.map((method) =>
                h(
                  "li",
                  {},
                  h("code", {}, method.name),
                  method.description ? ` — ${method.description}` : null,
                  collapsible("Input schema", method.input_schema ?? {}, "schema"),
                  method.output_schema ? collapsible("Output schema", method.output_schema, "schema") : null,
                ),
              ),
            )
          : h("p", { class: "muted" }, "None."),
        h("h3", {}, `HTTP routes and resources (${http.length})`),
        http.length
          ? table(
              "http",
              ["Kind", "Method", "Path", "Menu", "Description"],
              http.map((entry) =>
                h(
                  "tr",
                  {},
                  h("td", {}, entry.kind),
                  h("td", {}, entry.method),
                  h("td", {}, h("code", {}, entry.path)),
                  h("td", {}, entry.menu || "–"),
                  h("td", {}, entry.description || "–"),
                ),
              ),
            )
          : h("p", { class: "muted" }, "None."),
        h("h3", {}, `Bot routes (${routes.length})`),
        routes.length
          ? table(
              "routes",
              ["Kind", "Events", "Handler"],
              routes.map((route) => h("tr", {}, h("td", {}, route.kind), h("td", {}, (route.events ?? []).join(", ") || "all"), h("td", {}, h("code", {}, route.handler)))),
            )
          : h("p", { class: "muted" }, "None."),
        h("h3", {}, `Interceptors (${interceptors.length})`),
        interceptors.length
          ? table("interceptors", ["Stage", "Handler"], interceptors.map((item) => h("tr", {}, h("td", {}, item.stage), h("td", {}, h("code", {}, item.handler)))))
          : h("p", { class: "muted" }, "None."),
        collapsible("Descriptor (JSON)", d, "descriptor-json"),
      );
    },
  };
}

function logSection(id) {
  const lines = h("div", { class: "log", role: "log", "aria-live": "off" });
  const empty = h("p", { class: "muted" }, "No log lines from this plugin yet (info and above).");
  const element = card("logs", "Log", empty, lines);
  let stream = null;

  function line(record) {
    return h(
      "div",
      { class: `log-line level-${record.level}` },
      `${formatTime(record.timestamp)} `,
      badge(record.level),
      ` ${record.message}`,
      record.exception ? h("pre", {}, record.exception) : null,
    );
  }

  function add(records) {
    if (!records.length) return;
    empty.hidden = true;
    const atBottom = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 4;
    lines.append(...records.map(line));
    while (lines.childElementCount > LOG_LINES) lines.firstElementChild.remove();
    if (atBottom) lines.scrollTop = lines.scrollHeight;
  }

  return {
    element,
    async start() {
      const page = await get(withQuery("/api/v1/logs", { plugin_id: id, limit: LOG_LINES }));
      add(page.records);
      stream = follow(withQuery("/api/v1/logs/stream", { plugin_id: id }), { event: (record) => add([record]) }, { startAfter: page.last_id });
    },
    stop() {
      stream?.close();
      stream = null;
    },
  };
}
