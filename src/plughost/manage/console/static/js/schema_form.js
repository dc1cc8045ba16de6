// Forms generated from a JSON Schema: a plugin's `config_schema` and its methods' `input_schema`.
//
// Handles string, integer, number, boolean, enum (a select), arrays of scalars (a list of
// inputs), nested objects (a fieldset), `$ref` into the schema's own `$defs`, and nullable
// `anyOf: [X, {type: null}]` (what pydantic writes for `X | None`). Anything else is edited as
// JSON in a textarea. The server validates; the form only says what it cannot even encode
// (a number that is not a number, JSON that does not parse), marks required fields, and marks
// every field whose value differs from the saved one (`.field.changed`).
//
//   const form = schemaForm(schema, value, { prefix: "config", onChange: (dirty) => … });
//   parent.append(form.element);
//   const { value, problems } = form.collect();
//   form.showErrors([{ field: "repeat", message: "…" }]);   // the API's detail.fields
//   form.markSaved();

import { h } from "./ui.js";

const SCALARS = ["string", "integer", "number", "boolean", "enum"];
let serial = 0;

/**
 * Build a form for `schema` showing `value`. Options: `prefix` (element ids), `label` (the
 * field's label when the schema is not an object), `rootObject` (the value must be a JSON
 * object), `onChange(dirty)`.
 */
export function schemaForm(schema, value, { prefix = "form", label = "Value", rootObject = true, onChange } = {}) {
  const root = schema && typeof schema === "object" ? schema : {};
  const ctx = { root, prefix, leaves: [], nodes: new Map(), byElement: new WeakMap() };
  const element = h("div", { class: "schema-form" });
  const top = resolve(root, root);
  let node;
  if (kindOf(top, root) === "object") {
    // problems of the whole object (unknown keys, a schema that is broken) are shown above the fields
    const formErrors = h("p", { class: "field-error", role: "alert", hidden: true });
    element.append(h("div", { class: "field form-errors" }, formErrors));
    node = objectNode(ctx, top, [], value, value !== undefined, true, element, formErrors);
    ctx.nodes.set("", node);
  } else {
    node = leafNode(ctx, top, [], label, value, value !== undefined, false);
    element.append(node.wrapper);
  }

  let baseline = new Map();
  const snapshot = () => new Map(ctx.leaves.map((leaf) => [leaf, stable(leaf.read([]))]));
  let dirty = false;

  function refreshMarks() {
    dirty = false;
    for (const leaf of ctx.leaves) {
      const changed = baseline.get(leaf) !== stable(leaf.read([]));
      leaf.wrapper.classList.toggle("changed", changed);
      dirty ||= changed;
    }
    onChange?.(dirty);
  }
  ctx.changed = refreshMarks;

  const edited = (event) => {
    const wrapper = event.target.closest?.(".field");
    const leaf = wrapper && ctx.byElement.get(wrapper);
    leaf?.clearError();
    refreshMarks();
  };
  element.addEventListener("input", edited);
  element.addEventListener("change", edited);
  baseline = snapshot();

  const clearErrors = () => {
    for (const item of ctx.nodes.values()) item.clearError();
  };

  return {
    element,
    /** The value to send, and what cannot be encoded (`[{field, message}]`, shown by showErrors). */
    collect() {
      const problems = [];
      let result = node.read(problems);
      if (result === undefined && rootObject) result = {};
      if (rootObject && (result === null || typeof result !== "object" || Array.isArray(result))) {
        problems.push({ field: "", message: "must be a JSON object" });
      }
      return { value: result, problems };
    },
    get dirty() {
      return dirty;
    },
    /** The current values are the saved ones now: no field is marked changed. */
    markSaved() {
      baseline = snapshot();
      refreshMarks();
    },
    clearErrors,
    /** Show each problem at its field (dotted paths, as the API names them); returns how many. */
    showErrors(problems) {
      clearErrors();
      let first = null;
      const messages = new Map();
      for (const problem of problems ?? []) {
        const target = locate(ctx.nodes, String(problem.field ?? ""));
        const list = messages.get(target) ?? [];
        list.push(problem.message);
        messages.set(target, list);
        first ??= target;
      }
      for (const [target, list] of messages) target.setError(list.join("; "));
      first?.focus();
      return messages.size;
    },
  };
}

/** The node at `path`, else the nearest one above it (an array item's error goes to the list). */
function locate(nodes, path) {
  const parts = path ? path.split(".") : [];
  while (parts.length) {
    const node = nodes.get(parts.join("."));
    if (node) return node;
    parts.pop();
  }
  return nodes.get("");
}

/** JSON with sorted keys (two equal values give the same text); undefined stays distinguishable. */
export function stable(value) {
  if (value === undefined) return "\u0000undefined";
  return JSON.stringify(value, (key, item) =>
    item && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(Object.keys(item).sort().map((name) => [name, item[name]]))
      : item,
  );
}

/** `$ref` into the document, nullable `anyOf`/`oneOf`/type lists and one-item `allOf`, resolved. */
export function resolve(schema, root, depth = 0) {
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) return {};
  if (depth > 10) return schema;
  if (typeof schema.$ref === "string") {
    const target = pointer(root, schema.$ref);
    if (target) {
      const { $ref, ...rest } = schema;
      return resolve({ ...target, ...rest }, root, depth + 1);
    }
  }
  for (const key of ["anyOf", "oneOf"]) {
    if (!Array.isArray(schema[key])) continue;
    const options = schema[key].filter((option) => !(option && option.type === "null"));
    if (options.length === 1) {
      const { [key]: dropped, ...rest } = schema;
      return resolve({ ...resolve(options[0], root, depth + 1), ...rest, nullable: true }, root, depth + 1);
    }
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length === 1) {
    const { allOf, ...rest } = schema;
    return resolve({ ...resolve(allOf[0], root, depth + 1), ...rest }, root, depth + 1);
  }
  if (Array.isArray(schema.type)) {
    const types = schema.type.filter((type) => type !== "null");
    if (types.length === 1) return { ...schema, type: types[0], nullable: true };
  }
  return schema;
}

function pointer(root, ref) {
  if (!ref.startsWith("#/")) return ref === "#" ? root : null;
  let node = root;
  for (const part of ref.slice(2).split("/")) {
    const key = part.replace(/~1/g, "/").replace(/~0/g, "~");
    if (!node || typeof node !== "object" || !(key in node)) return null;
    node = node[key];
  }
  return node && typeof node === "object" ? node : null;
}

function kindOf(schema, root = {}) {
  if (Array.isArray(schema.enum) && schema.enum.length) return "enum";
  if ("const" in schema) return "enum";
  switch (schema.type) {
    case "string":
    case "integer":
    case "number":
    case "boolean":
      return schema.type;
    case "array": {
      if (!schema.items || Array.isArray(schema.items)) return "json";
      const items = resolve(schema.items, root);
      return SCALARS.includes(kindOf(items, root)) ? "list" : "json";
    }
    case "object":
      return schema.properties ? "object" : "json";
    default:
      return schema.properties ? "object" : "json";
  }
}

function nextId(ctx) {
  serial += 1;
  return `${ctx.prefix}-f${serial}`;
}

function titleOf(schema, name) {
  return schema.title || name;
}

/** A short line of what the schema allows: "integer, 1 – 10", "at least 1 character", the default. */
function hints(schema, kind, root) {
  const parts = [];
  if (schema.description) parts.push(schema.description);
  const range = [];
  if (schema.minimum !== undefined && schema.maximum !== undefined) range.push(`${schema.minimum} – ${schema.maximum}`);
  else if (schema.minimum !== undefined) range.push(`at least ${schema.minimum}`);
  else if (schema.maximum !== undefined) range.push(`at most ${schema.maximum}`);
  if (schema.exclusiveMinimum !== undefined) range.push(`more than ${schema.exclusiveMinimum}`);
  if (schema.exclusiveMaximum !== undefined) range.push(`less than ${schema.exclusiveMaximum}`);
  if (kind === "integer" || kind === "number") parts.push([kind, ...range].join(", "));
  if (schema.minLength) parts.push(`at least ${schema.minLength} character${schema.minLength === 1 ? "" : "s"}`);
  if (schema.maxLength) parts.push(`at most ${schema.maxLength} characters`);
  if (schema.pattern) parts.push(`pattern ${schema.pattern}`);
  if (schema.format) parts.push(schema.format);
  if (kind === "list") {
    const items = resolve(schema.items, root);
    parts.push(`a list of ${items.type ?? "values"}`);
    if (schema.minItems) parts.push(`at least ${schema.minItems}`);
    if (schema.maxItems !== undefined) parts.push(`at most ${schema.maxItems}`);
  }
  if (kind === "json") parts.push("JSON");
  if (schema.default !== undefined && schema.default !== null && kind !== "boolean") parts.push(`default ${JSON.stringify(schema.default)}`);
  return parts.filter(Boolean).join(" · ");
}

// ---- objects --------------------------------------------------------------------------------

function objectNode(ctx, schema, path, value, present, required, container, containerError = null) {
  const object = value && typeof value === "object" && !Array.isArray(value) ? value : {};
  const properties = schema.properties ?? {};
  const needed = new Set(Array.isArray(schema.required) ? schema.required : []);
  const children = [];
  let wrapper = container;
  let error = containerError;
  if (!container) {
    const legendText = titleOf(schema, path[path.length - 1]);
    error = h("p", { class: "field-error", hidden: true });
    wrapper = h(
      "fieldset",
      { class: "field object", dataset: { field: path.join(".") } },
      h("legend", { class: required ? "required" : null }, legendText),
      schema.description ? h("p", { class: "description" }, schema.description) : null,
      error,
    );
  }
  for (const [name, raw] of Object.entries(properties)) {
    const child = resolve(raw, ctx.root);
    const childPath = [...path, name];
    const has = Object.hasOwn(object, name);
    let node;
    if (kindOf(child, ctx.root) === "object") {
      node = objectNode(ctx, child, childPath, object[name], has, needed.has(name), null);
    } else {
      node = leafNode(ctx, child, childPath, titleOf(child, name), object[name], has, needed.has(name));
    }
    wrapper.append(node.wrapper);
    children.push([name, node]);
  }
  const extras = Object.fromEntries(Object.entries(object).filter(([name]) => !Object.hasOwn(properties, name)));
  let extraNode = null;
  if (Object.keys(extras).length) {
    // keys the schema does not describe: kept, and editable as JSON rather than silently dropped
    extraNode = leafNode(ctx, { description: "keys the schema does not describe" }, [...path, "*"], "Other keys", extras, true, false);
    wrapper.append(extraNode.wrapper);
  }
  const node = {
    kind: "object",
    wrapper,
    read(problems) {
      const result = {};
      if (extraNode) {
        const more = extraNode.read(problems);
        if (more && typeof more === "object" && !Array.isArray(more)) Object.assign(result, more);
        else if (more !== undefined) problems.push({ field: [...path, "*"].join("."), message: "must be a JSON object" });
      }
      for (const [name, child] of children) {
        const item = child.read(problems);
        if (item !== undefined) result[name] = item;
      }
      if (!Object.keys(result).length && !present && !required) return undefined;
      return result;
    },
    setError(message) {
      if (!error) return;
      error.textContent = message;
      error.hidden = false;
    },
    clearError() {
      if (!error) return;
      error.textContent = "";
      error.hidden = true;
    },
    focus() {
      if (container) error?.scrollIntoView?.({ block: "nearest" }); // the whole form's problem: its message
      else wrapper.querySelector("input, select, textarea")?.focus();
    },
  };
  if (path.length) ctx.nodes.set(path.join("."), node);
  return node;
}

// ---- leaves: one labelled control --------------------------------------------------------------

function leafNode(ctx, schema, path, labelText, value, present, required) {
  const kind = kindOf(schema, ctx.root);
  const id = nextId(ctx);
  const description = hints(schema, kind, ctx.root);
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const about = description ? h("p", { class: "description", id: `${id}-about` }, description) : null;
  const initial = present ? value : schema.default;
  let control;
  let wrapper;
  if (kind === "list") {
    control = listControl(ctx, schema, id, labelText, initial, Array.isArray(initial));
    wrapper = h(
      "fieldset",
      { class: `field list`, dataset: { field: path.join(".") } },
      h("legend", { class: required ? "required" : null }, labelText),
      control.element,
      about,
      error,
    );
  } else {
    control = scalarControl(schema, kind, id, initial, present || schema.default !== undefined, required);
    wrapper = h(
      "div",
      { class: `field ${kind}`, dataset: { field: path.join(".") } },
      h("label", { for: id, class: required ? "required" : null }, labelText),
      control.element,
      about,
      error,
    );
    const described = [about?.id, error.id].filter(Boolean).join(" ");
    control.input.setAttribute("aria-describedby", described);
    if (required) control.input.setAttribute("aria-required", "true");
  }
  const field = path.join(".");
  const node = {
    kind,
    wrapper,
    read: (problems) => control.read(problems, field),
    setError(message) {
      error.textContent = message;
      error.hidden = false;
      for (const input of control.inputs()) input.setAttribute("aria-invalid", "true");
    },
    clearError() {
      error.textContent = "";
      error.hidden = true;
      for (const input of control.inputs()) input.removeAttribute("aria-invalid");
    },
    focus() {
      control.inputs()[0]?.focus();
    },
  };
  ctx.leaves.push(node);
  ctx.byElement.set(wrapper, node);
  ctx.nodes.set(field, node);
  return node;
}

/** One input for a scalar (or a JSON textarea): {element, input, inputs(), read(problems, field)}. */
function scalarControl(schema, kind, id, initial, present, required) {
  let input;
  let read;
  switch (kind) {
    case "boolean": {
      input = h("input", { id, type: "checkbox", checked: initial === true });
      let touched = false;
      input.addEventListener("change", () => {
        touched = true;
      });
      read = () => (input.checked ? true : present || touched || required ? false : undefined);
      break;
    }
    case "enum": {
      const values = Array.isArray(schema.enum) ? schema.enum : [schema.const];
      if (initial === null && !values.includes(null)) initial = undefined; // a nullable choice: "not set"
      input = h("select", { id });
      const known = values.some((item) => stable(item) === stable(initial));
      if (!required || initial === undefined || !known) input.append(h("option", { value: "" }, required ? "Choose…" : "— not set —"));
      values.forEach((item, index) => {
        input.append(h("option", { value: String(index) }, typeof item === "string" ? item : JSON.stringify(item)));
      });
      if (initial !== undefined && !known) {
        // a stored value the schema does not allow: shown and kept until changed, not silently replaced
        input.append(h("option", { value: "current" }, `${JSON.stringify(initial)} (current)`));
      }
      input.value = initial === undefined ? "" : known ? String(values.findIndex((item) => stable(item) === stable(initial))) : "current";
      read = () => {
        if (input.value === "") return undefined;
        if (input.value === "current") return initial;
        return values[Number(input.value)];
      };
      break;
    }
    case "integer":
    case "number": {
      input = h("input", {
        id,
        type: "number",
        inputmode: kind === "integer" ? "numeric" : "decimal",
        step: kind === "integer" ? "1" : "any",
        min: schema.minimum !== undefined ? String(schema.minimum) : null,
        max: schema.maximum !== undefined ? String(schema.maximum) : null,
      });
      input.value = typeof initial === "number" ? String(initial) : "";
      read = (problems, field) => {
        if (input.validity.badInput) {
          problems.push({ field, message: kind === "integer" ? "enter a whole number" : "enter a number" });
          return undefined;
        }
        if (input.value.trim() === "") return initial === null && present ? null : undefined;
        return Number(input.value);
      };
      break;
    }
    case "string": {
      const secret = schema.format === "password" || schema.writeOnly === true;
      // a value with line breaks gets a textarea: an <input> would drop them on save
      const multiline = !secret && typeof initial === "string" && /[\r\n]/.test(initial);
      const long =
        (schema.maxLength ?? 0) > 200 || schema.format === "textarea" || schema.contentMediaType || multiline;
      input = long
        ? h("textarea", { id, rows: 4 })
        : h("input", { id, type: secret ? "password" : "text", autocomplete: secret ? "new-password" : "off" });
      if (schema.maxLength) input.maxLength = schema.maxLength;
      input.value = typeof initial === "string" ? initial : initial === undefined || initial === null ? "" : String(initial);
      read = () => {
        if (input.value !== "") return input.value;
        if (present && initial === "") return "";
        return present && initial === null ? null : undefined;
      };
      break;
    }
    default: {
      input = h("textarea", { id, rows: 6, class: "mono", spellcheck: "false" });
      input.value = initial === undefined ? "" : JSON.stringify(initial, null, 2);
      read = (problems, field) => {
        const text = input.value.trim();
        if (!text) return undefined;
        try {
          return JSON.parse(text);
        } catch (error) {
          problems.push({ field, message: `not valid JSON: ${error.message}` });
          return undefined;
        }
      };
    }
  }
  return { element: input, input, inputs: () => [input], read };
}

/** An editable list of scalars: one input per item, Add and Remove buttons. */
function listControl(ctx, schema, id, labelText, initial, present) {
  const itemSchema = resolve(schema.items, ctx.root);
  const itemKind = kindOf(itemSchema, ctx.root);
  const items = h("div", { class: "list-items" });
  const rows = [];
  let touched = false;

  function renumber() {
    rows.forEach((row, index) => {
      row.control.input.setAttribute("aria-label", `${labelText} ${index + 1}`);
      row.remove.setAttribute("aria-label", `Remove ${labelText} ${index + 1}`);
    });
  }

  function add(value, focus) {
    const control = scalarControl(itemSchema, itemKind, nextId(ctx), value, value !== undefined, true);
    const row = { control };
    row.remove = h(
      "button",
      {
        type: "button",
        class: "remove",
        onclick: () => {
          const index = rows.indexOf(row);
          rows.splice(index, 1);
          row.element.remove();
          touched = true;
          renumber();
          (rows[Math.min(index, rows.length - 1)]?.control.input ?? addButton).focus();
          ctx.changed?.();
        },
      },
      "Remove",
    );
    row.element = h("div", { class: "list-item" }, control.element, row.remove);
    rows.push(row);
    items.append(row.element);
    renumber();
    if (focus) control.input.focus();
  }

  const addButton = h(
    "button",
    {
      type: "button",
      class: "add",
      onclick: () => {
        touched = true;
        add(undefined, true);
        ctx.changed?.();
      },
    },
    `Add ${labelText}`,
  );
  for (const item of Array.isArray(initial) ? initial : []) add(item, false);
  return {
    element: h("div", { class: "list-control", id }, items, addButton),
    inputs: () => rows.map((row) => row.control.input),
    read(problems, field) {
      const values = [];
      rows.forEach((row, index) => {
        const item = row.control.read(problems, `${field}.${index}`);
        if (item !== undefined) values.push(item);
      });
      if (!values.length && !present && !touched) return undefined;
      return values;
    },
  };
}
