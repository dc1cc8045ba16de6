// Server-Sent Events over fetch (EventSource cannot send the Authorization header).
// Reconnects with `Last-Event-ID`, so nothing is lost across a dropped connection; a `missed`
// event from the server says how many aged out before we could resume.

import { authHeaders } from "./api.js";

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10000;

/**
 * Follow `path`. `handlers.event(data, id)` gets every event, `handlers.missed(count)` gaps,
 * `handlers.state("live" | "reconnecting" | "paused" | "stopped")` the connection's state.
 * Returns {pause(), resume(), close(), get lastId()}.
 */
export function follow(path, handlers, { startAfter = null } = {}) {
  let lastId = startAfter;
  let controller = null;
  let stopped = false;
  let paused = false;
  let retry = RETRY_MIN_MS;
  let generation = 0; // pause() and close() end the running loop; resume() starts one new loop

  const setState = (state) => handlers.state?.(state);

  async function connect(mine) {
    const current = () => mine === generation && !stopped && !paused;
    while (current()) {
      controller = new AbortController();
      const headers = { ...authHeaders(), Accept: "text/event-stream" };
      if (lastId !== null) headers["Last-Event-ID"] = String(lastId);
      try {
        const response = await fetch(path, { headers, signal: controller.signal });
        if (response.status === 401) {
          setState("stopped");
          handlers.unauthorized?.();
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        setState("live");
        retry = RETRY_MIN_MS;
        await read(response.body);
      } catch {
        if (!current()) return;
      }
      if (!current()) return;
      setState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, retry));
      retry = Math.min(retry * 2, RETRY_MAX_MS);
    }
  }

  async function read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  function dispatch(block) {
    let id = null;
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") kind = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    const payload = JSON.parse(data.join("\n"));
    if (kind === "missed") {
      handlers.missed?.(payload.missed);
      return;
    }
    if (id !== null) lastId = Number(id);
    handlers.event(payload, lastId);
  }

  connect(generation);
  return {
    get lastId() {
      return lastId;
    },
    pause() {
      paused = true;
      generation += 1;
      controller?.abort();
      setState("paused");
    },
    resume() {
      if (!paused || stopped) return;
      paused = false;
      connect(generation);
    },
    close() {
      stopped = true;
      generation += 1;
      controller?.abort();
      setState("stopped");
    },
  };
}
