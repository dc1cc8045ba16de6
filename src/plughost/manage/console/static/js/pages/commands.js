// Commands and permissions: the effective command registry (with a search, name conflicts and
// problems highlighted) and the permission grants, with a form to permit and buttons to cancel.
// Both refresh when plugins change (their commands and permissions come and go with them).

import { ApiError, get, post } from "../api.js";
import { badge, emptyRow, fill, h, toast } from "../ui.js";

const BUILT_IN = "console"; // the host's own commands (/help, /plugins, …) are registered as "console"
const REFRESH_DELAY_MS = 300;

export async function render(root, { live }) {
  const search = h("input", {
    id: "command-search",
    type: "search",
    autocomplete: "off",
    placeholder: "name, plugin, description",
  });
  const count = h("span", { class: "muted command-count", "aria-live": "polite" });
  const issues = h("div", { class: "command-issues" });
  const commandRows = h("tbody");
  const grantRows = h("tbody");
  const registeredRows = h("tbody");
  const registeredCount = h("span");
  const choices = h("datalist", { id: "permission-choices" });
  const who = h("input", {
    id: "permit-who",
    name: "permittee",
    required: true,
    autocomplete: "off",
    placeholder: "u456, m123.456, g123, *",
    "aria-describedby": "permit-hint",
  });
  const what = h("input", {
    id: "permit-what",
    name: "permission",
    required: true,
    autocomplete: "off",
    list: "permission-choices",
    placeholder: "plughost:*, dice:roll",
  });
  const permitButton = h("button", { type: "submit", class: "primary" }, "Permit");
  const formError = h("p", { id: "permit-error", class: "error", role: "alert", hidden: true });
  let registry = { commands: [], conflicts: [], problems: [] };
  let permissions = { permissions: {}, grants: {} };

  fill(
    root,
    h("h1", {}, "Commands and permissions"),
    h(
      "section",
      { class: "card", "aria-labelledby": "commands-heading" },
      h("div", { class: "spread" }, h("h2", { id: "commands-heading" }, "Commands"), count),
      h("div", { class: "field" }, h("label", { for: "command-search" }, "Search commands"), search),
      issues,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "commands" },
          h(
            "thead",
            {},
            h("tr", {}, h("th", {}, "Command"), h("th", {}, "Plugin"), h("th", { class: "num hide-narrow" }, "Priority"), h("th", {}, "Description and usage")),
          ),
          commandRows,
        ),
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "grants-heading" },
      h("h2", { id: "grants-heading" }, "Permission grants"),
      h(
        "form",
        {
          class: "permit-form",
          "aria-label": "Grant a permission",
          onsubmit: (event) => {
            event.preventDefault();
            permit();
          },
        },
        field("permit-who", "Permittee", who),
        field("permit-what", "Permission", what),
        permitButton,
        choices,
      ),
      h(
        "p",
        { id: "permit-hint", class: "hint" },
        "Permittees: u<user>, g<group>, m<group>.<user> (a member of a group), f<user> (a friend), console, * (everyone); m123.* is every member of group 123.",
      ),
      formError,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "grants" },
          h("thead", {}, h("tr", {}, h("th", {}, "Permittee"), h("th", {}, "Permission"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))),
          grantRows,
        ),
      ),
      h(
        "details",
        { class: "registered" },
        h("summary", {}, "Registered permissions (", registeredCount, ")"),
        h(
          "div",
          { class: "table-wrap" },
          h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Permission"), h("th", {}, "Description"))), registeredRows),
        ),
      ),
    ),
  );

  search.addEventListener("input", showCommands);
  for (const input of [who, what]) {
    input.addEventListener("input", () => {
      input.removeAttribute("aria-invalid");
      formError.hidden = true;
    });
  }

  function showCommands() {
    const query = search.value.trim().toLowerCase();
    const matching = registry.commands.filter((command) => !query || haystack(command).includes(query));
    count.textContent = query
      ? `${matching.length} of ${registry.commands.length} commands`
      : `${registry.commands.length} commands`;
    fill(
      commandRows,
      matching.length ? matching.map((command) => commandRow(command, conflictsOf(command, registry.conflicts))) : emptyRow(4, query ? "No command matches." : "No commands."),
    );
    const items = [
      ...registry.conflicts.map((conflict) =>
        h("li", { class: "conflict" }, badge("conflict"), " ", h("code", {}, conflict.name), `: ${conflict.winner} wins over ${conflict.loser} (${conflict.reason})`),
      ),
      ...registry.problems.map((problem) => h("li", { class: "problem" }, badge("error"), ` ${problem}`)),
    ];
    fill(
      issues,
      items.length ? h("div", { class: "issues", role: "region", "aria-label": "Command conflicts and problems" }, h("h3", {}, "Conflicts and problems"), h("ul", {}, items)) : null,
    );
  }

  function showPermissions() {
    const grants = Object.entries(permissions.grants).flatMap(([permittee, list]) => list.map((permission) => [permittee, permission]));
    fill(
      grantRows,
      grants.length
        ? grants.map(([permittee, permission]) =>
            h(
              "tr",
              { dataset: { permittee, permission } },
              h("td", {}, h("code", {}, permittee)),
              h("td", {}, h("code", {}, permission), described(permission)),
              h(
                "td",
                { class: "num" },
                h(
                  "button",
                  {
                    type: "button",
                    class: "danger",
                    "aria-label": `Cancel ${permission} for ${permittee}`,
                    onclick: (event) => cancel(event.currentTarget, permittee, permission),
                  },
                  "Cancel",
                ),
              ),
            ),
          )
        : emptyRow(3, "Nothing is granted: only owners and the console may run restricted commands."),
    );
    const registered = Object.entries(permissions.permissions);
    registeredCount.textContent = String(registered.length);
    fill(
      registeredRows,
      registered.map(([permission, description]) => h("tr", {}, h("td", {}, h("code", {}, permission)), h("td", {}, description))),
    );
    fill(choices, registered.map(([permission, description]) => h("option", { value: permission }, description)));
  }

  function described(permission) {
    const description = permissions.permissions[permission];
    return description ? h("div", { class: "muted" }, description) : null;
  }

  async function loadCommands() {
    registry = await get("/api/v1/commands");
    showCommands();
  }

  async function loadPermissions() {
    permissions = await get("/api/v1/permissions");
    showPermissions();
  }

  async function permit() {
    formError.hidden = true;
    permitButton.disabled = true;
    const grant = { permittee: who.value.trim(), permission: what.value.trim() };
    try {
      const result = await post("/api/v1/permissions/permit", grant);
      toast(result.changed ? `Granted ${grant.permission} to ${grant.permittee}.` : `${grant.permittee} already had ${grant.permission}.`, "ok");
      who.value = "";
      what.value = "";
      await loadPermissions();
      who.focus();
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 401) return;
      formError.textContent = failure.message;
      formError.hidden = false;
      if (failure instanceof ApiError && failure.status === 422) {
        const target = /permittee/i.test(failure.message) ? who : /permission/i.test(failure.message) ? what : null;
        target?.setAttribute("aria-invalid", "true");
        target?.setAttribute("aria-errormessage", "permit-error");
      }
      permitButton.disabled = false;
      (who.getAttribute("aria-invalid") ? who : what.getAttribute("aria-invalid") ? what : permitButton).focus();
    } finally {
      permitButton.disabled = false;
    }
  }

  async function cancel(button, permittee, permission) {
    button.disabled = true;
    try {
      const result = await post("/api/v1/permissions/cancel", { permittee, permission });
      toast(result.changed ? `Cancelled ${permission} for ${permittee}.` : `${permittee} did not have ${permission}.`, "ok");
      await loadPermissions();
      (grantRows.querySelector("button") ?? who).focus();
    } catch (failure) {
      button.disabled = false;
      if (!(failure instanceof ApiError && failure.status === 401)) toast(failure.message, "error");
    }
  }

  let timer = null;
  const onEvent = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      loadCommands().catch(() => {});
      loadPermissions().catch(() => {});
    }, REFRESH_DELAY_MS);
  };
  live.addEventListener("event", onEvent);
  try {
    await Promise.all([loadCommands(), loadPermissions()]);
  } catch (failure) {
    live.removeEventListener("event", onEvent);
    throw failure;
  }
  return () => {
    clearTimeout(timer);
    live.removeEventListener("event", onEvent);
  };
}

function field(id, label, control) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function haystack(command) {
  return [command.name, ...command.names, command.plugin_id, command.description, ...command.usage].join("\n").toLowerCase();
}

/** The conflicts a command is part of: it won one of its names, or lost its own name. */
function conflictsOf(command, conflicts) {
  return conflicts.filter(
    (conflict) =>
      (command.names.includes(conflict.name) && command.plugin_id === conflict.winner) ||
      (command.plugin_id === conflict.loser && command.name === conflict.name),
  );
}

function commandRow(command, conflicts) {
  const aliases = command.names.filter((name) => name !== command.name);
  const lostName = !command.names.includes(command.name);
  const plugin =
    command.plugin_id === BUILT_IN
      ? h("span", {}, badge("built-in"))
      : h("a", { href: `#/plugins/${encodeURIComponent(command.plugin_id)}` }, command.plugin_id);
  return h(
    "tr",
    { class: conflicts.length ? "conflict" : null, dataset: { command: command.name, plugin: command.plugin_id } },
    h(
      "td",
      {},
      h("code", { class: "command-name" }, `/${command.name}`),
      lostName ? h("div", { class: "muted" }, `answers only to ${command.names.map((name) => `/${name}`).join(", ") || "nothing"}`) : null,
      aliases.length && !lostName ? h("div", { class: "muted" }, `also ${aliases.map((name) => `/${name}`).join(", ")}`) : null,
      conflicts.map((conflict) =>
        h("div", {}, badge("conflict"), " ", conflict.winner === command.plugin_id ? `won /${conflict.name} over ${conflict.loser}` : `lost /${conflict.name} to ${conflict.winner}`, ` (${conflict.reason})`),
      ),
    ),
    h("td", {}, plugin),
    h("td", { class: "num hide-narrow" }, String(command.priority)),
    h(
      "td",
      {},
      command.description ? h("div", {}, command.description) : null,
      command.usage.length ? h("ul", { class: "usage" }, command.usage.map((line) => h("li", {}, h("code", {}, line)))) : null,
    ),
  );
}
