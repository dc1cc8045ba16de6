// Overview: uptime, memory, plugins by state and runtime, bots, event rate, shed counts and open
// breakers — refreshed as plugin events arrive and every few seconds for the counters.

import { get } from "../api.js";
import { badge, fill, formatBytes, formatDuration, h } from "../ui.js";

const REFRESH_MS = 5000;
const RATE_WINDOW_S = 60;

export async function render(root, { live }) {
  const stats = h("div", { class: "grid" });
  const bots = h("div", { class: "card" });
  const breakers = h("div", { class: "card" });
  const recent = h("ul", { class: "recent" });
  fill(
    root,
    h("h1", {}, "Overview"),
    stats,
    h("div", { class: "grid" }, bots, breakers),
    h("div", { class: "card" }, h("h2", {}, "Latest plugin events"), recent),
  );
  const arrivals = [];

  async function refresh() {
    const [status, botList, events] = await Promise.all([
      get("/api/v1/status"),
      get("/api/v1/bots"),
      get("/api/v1/events?limit=8"),
    ]);
    const now = Date.now() / 1000;
    while (arrivals.length && arrivals[0] < now - RATE_WINDOW_S) arrivals.shift();
    const shed = botList.bots.reduce((total, bot) => total + (bot.shed ?? 0), 0);
    fill(
      stats,
      stat("Uptime", formatDuration(status.uptime_s), `pid ${status.pid}, version ${status.version}`),
      stat("Memory", formatBytes(status.memory_rss_bytes), "resident"),
      stat("Plugins", sum(status.plugins), describeCounts(status.plugins), "plugins"),
      stat("Runtimes", Object.keys(status.runtimes).length, describeCounts(status.runtimes)),
      stat("Events / min", arrivals.length, "plugin events in the last minute", "event-rate"),
      stat("Shed", shed, "bot events dropped because a lane was full", "shed"),
    );
    fill(
      bots,
      h("h2", {}, "Bots"),
      botList.bots.length
        ? h(
            "ul",
            {},
            botList.bots.map((bot) =>
              h("li", {}, h("strong", {}, bot.bot), " ", badge(bot.attached ? "running" : "disconnected"),
                ` ${bot.processed ?? 0} events, ${bot.answered ?? 0} answered, ${bot.shed ?? 0} shed, ${bot.queued ?? 0} queued`),
            ),
          )
        : h("p", { class: "muted" }, "No bot is connected. Configure [[bots]] in plughost.toml, or try the chat sandbox."),
    );
    fill(
      breakers,
      h("h2", {}, "Open circuit breakers"),
      status.open_breakers.length
        ? h("ul", { class: "open-breakers" }, status.open_breakers.map((id) => h("li", {}, h("a", { href: `#/plugins/${encodeURIComponent(id)}` }, id), " ", badge("open"))))
        : h("p", { class: "muted" }, "None: every plugin is answering."),
    );
    fill(
      recent,
      events.events
        .slice()
        .reverse()
        .map((event) => h("li", {}, badge(event.type), " ", h("strong", {}, event.plugin_id), ` ${event.message}`)),
    );
  }

  const onEvent = () => {
    arrivals.push(Date.now() / 1000);
    refresh().catch(() => {});
  };
  live.addEventListener("event", onEvent);
  const timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
  await refresh();
  return () => {
    clearInterval(timer);
    live.removeEventListener("event", onEvent);
  };
}

function stat(label, value, detail, name) {
  return h("div", { class: "card", dataset: { stat: name ?? label.toLowerCase() } },
    h("div", { class: "stat-label" }, label), h("div", { class: "stat" }, value), h("div", { class: "muted" }, detail));
}

function sum(counts) {
  return Object.values(counts).reduce((total, count) => total + count, 0);
}

function describeCounts(counts) {
  return Object.entries(counts).map(([key, count]) => `${count} ${key}`).join(", ") || "none";
}
