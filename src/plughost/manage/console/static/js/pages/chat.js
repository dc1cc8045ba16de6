// Chat sandbox: talk to the bot as a chosen user in a chosen group or private chat (what the
// console's `/as` does), through POST /api/v1/sandbox/events — the real dispatcher on a simulated
// bot. The user's messages and the bot's replies are chat bubbles; everything else the bot did
// (approvals, other actions), unanswered events and errors are notes. Plugin text stays text.

import { ApiError, post } from "../api.js";
import { fill, h } from "../ui.js";

const SCENE = "plughost.chat.scene";
const DEFAULT_SCENE = { chat: "group", group_id: "10001", user_id: "20002", role: "member" };
const KEEP = 300; // bubbles kept in the conversation
const SENDS = new Set(["send_group_msg", "send_private_msg", "send_msg"]);

export async function render(root) {
  const scene = loadScene();
  const kind = h(
    "select",
    { id: "chat-kind", name: "chat" },
    h("option", { value: "group" }, "Group chat"),
    h("option", { value: "private" }, "Private chat"),
  );
  const group = h("input", {
    id: "chat-group",
    name: "group_id",
    inputmode: "numeric",
    autocomplete: "off",
    placeholder: "e.g. 123",
  });
  const user = h("input", { id: "chat-user", name: "user_id", inputmode: "numeric", autocomplete: "off", placeholder: "e.g. 456" });
  const role = h(
    "select",
    { id: "chat-role", name: "role" },
    ["member", "admin", "owner"].map((value) => h("option", { value }, value)),
  );
  kind.value = scene.chat;
  group.value = scene.group_id;
  user.value = scene.user_id;
  role.value = scene.role;
  const groupField = field("chat-group", "Group id", group);
  const roleField = field("chat-role", "Role in the group", role);
  const summary = h("p", { class: "chat-scene-summary muted" });

  const log = h("div", { class: "chat-log", role: "log", "aria-label": "Conversation", tabindex: "0" });
  const text = h("textarea", {
    id: "chat-text",
    name: "text",
    rows: 2,
    "aria-label": "Message",
    placeholder: "Type a message — /pic, hello, [CQ:at,qq=10000] /help …",
    "aria-describedby": "chat-text-hint",
  });
  const sendButton = h("button", { type: "submit", class: "primary" }, "Send");
  const error = h("p", { id: "chat-error", class: "error chat-error", role: "alert", hidden: true });
  const comment = h("input", { id: "chat-comment", name: "comment", autocomplete: "off", placeholder: "optional" });
  const requestType = h(
    "select",
    { id: "chat-request-type", name: "request_type" },
    h("option", { value: "add" }, "asks to join"),
    h("option", { value: "invite" }, "invites the bot"),
  );
  const pokeButton = h("button", { type: "button", onclick: () => send("poke") }, "Poke the bot");
  const friendButton = h("button", { type: "button", onclick: () => send("friend_request") }, "Friend request");
  const groupButton = h("button", { type: "button", onclick: () => send("group_request") }, "Group request");
  const inputs = { group_id: group, user_id: user, text, chat: kind, role };

  fill(
    root,
    h("h1", {}, "Chat sandbox"),
    h(
      "div",
      { class: "card" },
      h(
        "form",
        { class: "chat-scene", "aria-label": "Scene", onsubmit: (event) => event.preventDefault() },
        field("chat-kind", "Chat", kind),
        groupField,
        field("chat-user", "User id", user),
        roleField,
      ),
      summary,
      log,
      h(
        "form",
        {
          class: "composer",
          "aria-label": "Compose",
          onsubmit: (event) => {
            event.preventDefault();
            send("message");
          },
        },
        text,
        sendButton,
      ),
      h(
        "p",
        { id: "chat-text-hint", class: "hint" },
        "Enter sends, Shift+Enter starts a new line. CQ codes are allowed: [CQ:at,qq=10000] mentions the bot.",
      ),
      error,
      h(
        "div",
        { class: "chat-actions", role: "group", "aria-label": "Other things the user can do" },
        pokeButton,
        field("chat-comment", "Request comment", comment),
        field("chat-request-type", "Group request kind", requestType),
        friendButton,
        groupButton,
        h("button", { type: "button", class: "chat-clear", onclick: () => log.replaceChildren() }, "Clear"),
      ),
    ),
  );
  note("Events go through the real dispatcher on a simulated bot: nothing reaches a real chat.");
  updateScene();

  for (const input of [kind, group, user, role]) {
    input.addEventListener("change", updateScene);
    input.addEventListener("input", () => {
      input.removeAttribute("aria-invalid");
      saveScene();
    });
  }
  text.addEventListener("input", () => text.removeAttribute("aria-invalid"));
  text.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    send("message");
  });

  function updateScene() {
    const isGroup = kind.value === "group";
    groupField.hidden = !isGroup;
    roleField.hidden = !isGroup;
    groupButton.disabled = !isGroup;
    groupButton.title = isGroup ? "" : "group requests need a group chat";
    saveScene();
  }

  function currentScene() {
    return { chat: kind.value, group_id: group.value.trim(), user_id: user.value.trim(), role: role.value };
  }

  function saveScene() {
    const now = currentScene();
    sessionStorage.setItem(SCENE, JSON.stringify(now));
    summary.textContent =
      now.chat === "group"
        ? `You are user ${now.user_id || "?"} (${now.role}) in group ${now.group_id || "?"}.`
        : `You are user ${now.user_id || "?"} in a private chat with the bot.`;
  }

  let busy = false;

  async function send(what) {
    if (busy) return;
    const now = currentScene();
    const body = {
      chat: now.chat,
      user_id: number(now.user_id),
      group_id: now.chat === "group" ? number(now.group_id) : null,
      role: now.role,
      kind: what,
      text: what === "message" ? text.value : what === "poke" ? "" : comment.value,
      request_type: requestType.value,
    };
    if (what === "message" && !text.value.trim()) {
      showError("Type a message first.", ["text"]);
      return;
    }
    clearError();
    const pending = userSide(what, body);
    busy = true; // buttons stay enabled (disabling one moves the keyboard focus away); a second send meanwhile is ignored
    log.setAttribute("aria-busy", "true");
    try {
      const result = await post("/api/v1/sandbox/events", body);
      showResult(result, what);
      if (what === "message") text.value = "";
      else if (what !== "poke") comment.value = "";
    } catch (failure) {
      pending.remove();
      if (failure instanceof ApiError && failure.status === 401) return;
      if (failure instanceof ApiError && (failure.status === 422 || failure.status === 400)) {
        const [message, fields] = describeInvalid(failure);
        showError(message, fields);
      } else {
        showError(`The sandbox failed: ${failure.message}`, []);
      }
    } finally {
      busy = false;
      log.removeAttribute("aria-busy");
    }
  }

  function showError(message, fields) {
    error.textContent = message;
    error.hidden = false;
    for (const name of fields) {
      const input = inputs[name];
      if (!input) continue;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-errormessage", "chat-error");
    }
  }

  function clearError() {
    error.hidden = true;
    error.textContent = "";
    for (const input of Object.values(inputs)) input.removeAttribute("aria-invalid");
  }

  function userSide(what, body) {
    const who = body.chat === "group" ? `${body.user_id} (${body.role}) in group ${body.group_id}` : `${body.user_id}`;
    if (what === "message") {
      return add(h("div", { class: "bubble user", dataset: { kind: "user" } }, h("span", { class: "bubble-meta" }, who), segmentNodes(parseCq(body.text))));
    }
    const said = body.text ? `: “${body.text}”` : "";
    const description = {
      poke: `${body.user_id} poked the bot`,
      friend_request: `${body.user_id} sent a friend request${said}`,
      group_request:
        body.request_type === "invite"
          ? `${body.user_id} invited the bot to group ${body.group_id}${said}`
          : `${body.user_id} asked to join group ${body.group_id}${said}`,
    }[what];
    return note(description, "user");
  }

  function showResult(result, what) {
    for (const action of result.actions) {
      if (SENDS.has(action.action) && action.message) {
        const target = action.params.group_id ? `group ${action.params.group_id}` : `user ${action.params.user_id}`;
        const by = result.answered_by ? ` · ${result.answered_by}` : "";
        add(
          h(
            "div",
            { class: "bubble bot", dataset: { kind: "bot", action: action.action } },
            h("span", { class: "bubble-meta" }, `bot → ${target}${by}`),
            segmentNodes(action.message),
          ),
        );
      } else {
        note(describeAction(action), "action");
      }
    }
    if (result.status === "blocked") {
      note(`Blocked${result.answered_by ? ` by ${result.answered_by}` : ""}: no plugin saw this event.`, "result");
    } else if (!result.actions.length) {
      const subject = { message: "message", poke: "poke", friend_request: "friend request", group_request: "group request" }[what];
      note(
        result.status === "unhandled"
          ? `No plugin answered the ${subject} (unhandled).`
          : `The ${subject} was ${result.status}, with no answer.`,
        "result",
      );
    }
    for (const message of result.errors) note(`Error: ${message}`, "error");
  }

  function note(message, kind = "info") {
    return add(h("div", { class: `bubble note${kind === "error" ? " error" : ""}`, dataset: { kind } }, message));
  }

  function add(element) {
    log.append(element);
    while (log.childElementCount > KEEP) log.firstElementChild.remove();
    log.scrollTop = log.scrollHeight;
    return element;
  }
}

function field(id, label, control) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function loadScene() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SCENE) ?? "null");
    if (saved && typeof saved === "object") {
      return {
        chat: saved.chat === "private" ? "private" : "group",
        group_id: String(saved.group_id ?? ""),
        user_id: String(saved.user_id ?? ""),
        role: ["owner", "admin", "member"].includes(saved.role) ? saved.role : "member",
      };
    }
  } catch {
    // a scene this page did not write: start over
  }
  return { ...DEFAULT_SCENE };
}

/** "123" → 123; "" → null (the server says what is missing); anything else as typed (the server says why). */
function number(text) {
  if (text === "") return null;
  return /^\d{1,15}$/.test(text) ? Number(text) : text;
}

/** The server's 422/400 as one sentence, and the inputs it is about. */
function describeInvalid(failure) {
  const fields = new Set();
  let message = failure.message;
  if (Array.isArray(failure.detail) && failure.detail.length) {
    message = failure.detail
      .map((problem) => {
        const text = String(problem.message ?? "").replace(/^Value error, /, "");
        if (problem.field) fields.add(String(problem.field).split(".")[0]);
        for (const name of ["group_id", "user_id", "text"]) if (text.includes(name)) fields.add(name);
        return problem.field ? `${problem.field}: ${text}` : text;
      })
      .join("; ");
  } else if (failure.detail && typeof failure.detail === "object" && failure.detail.field) {
    fields.add(failure.detail.field);
  }
  return [message, [...fields]];
}

function describeAction(action) {
  const params = action.params ?? {};
  if (action.action === "set_friend_add_request") {
    const remark = params.approve && params.remark ? ` (remark: ${params.remark})` : "";
    return `The bot ${params.approve ? "approved" : "rejected"} the friend request${remark}.`;
  }
  if (action.action === "set_group_add_request") {
    const reason = !params.approve && params.reason ? ` (reason: ${params.reason})` : "";
    return `The bot ${params.approve ? "approved" : "rejected"} the group request${reason}.`;
  }
  return `The bot called ${action.action} ${JSON.stringify(params)}.`;
}

/** Message segments as DOM nodes: text as text, mentions, images, faces; anything else a small marker. */
function segmentNodes(segments) {
  return (segments ?? []).map((segment) => {
    const data = segment?.data ?? {};
    switch (segment?.type) {
      case "text":
        return String(data.text ?? "");
      case "at": {
        const qq = String(data.qq ?? "?");
        return h("span", { class: "mention" }, qq === "all" ? "@all" : `@${qq}`);
      }
      case "image": {
        const src = imageSource(data);
        if (!src) return h("span", { class: "segment", title: JSON.stringify(data) }, "[image]");
        return h("img", { src, alt: String(data.summary || "image"), referrerpolicy: "no-referrer" });
      }
      case "face":
        return h("span", { class: "face", title: `face ${data.id ?? ""}`, role: "img", "aria-label": `face ${data.id ?? ""}` }, `☺${data.id ?? ""}`);
      default:
        return h("span", { class: "segment", title: JSON.stringify(data) }, `[${segment?.type ?? "?"}]`);
    }
  });
}

function imageSource(data) {
  for (const candidate of [data.url, data.file]) {
    if (typeof candidate !== "string") continue;
    if (/^https?:\/\//i.test(candidate) || /^data:image\//i.test(candidate)) return candidate;
    if (candidate.startsWith("base64://")) return `data:image/png;base64,${candidate.slice(9)}`;
  }
  return null;
}

/** The user's typed text as segments, for display (the server parses it for real). */
function parseCq(text) {
  const segments = [];
  const pattern = /\[CQ:([A-Za-z0-9_.-]+)((?:,[^,\]]*)*)\]/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) segments.push({ type: "text", data: { text: unescapeCq(text.slice(last, match.index)) } });
    const data = {};
    for (const pair of match[2].split(",").slice(1)) {
      const equals = pair.indexOf("=");
      if (equals > 0) data[pair.slice(0, equals)] = unescapeCq(pair.slice(equals + 1));
    }
    segments.push({ type: match[1], data });
    last = match.index + match[0].length;
  }
  if (last < text.length) segments.push({ type: "text", data: { text: unescapeCq(text.slice(last)) } });
  return segments;
}

function unescapeCq(text) {
  return text.replaceAll("&#91;", "[").replaceAll("&#93;", "]").replaceAll("&#44;", ",").replaceAll("&amp;", "&");
}
