// The audio channel: the `/vr` socket.io namespace on NiceGUI's own connection, authenticated by a signed upload
// token, so uploads resume after a dropped network or a restarted server.
//
// This module is the browser side of the seam with NiceGUI's internals: it alone touches `window.socket` (NiceGUI's
// socket.io client), NiceGUI's `connect_error` handler (which reloads the page) and its `#popup` notice. They are
// listed in api/nicegui_internals.py, and tests/test_nicegui_seam.py fails loudly when a NiceGUI upgrade moves one.

// The channel's own answer while it has no connection: the upload session retries it and shows no problem.
export const OFFLINE = "offline";
const REFUSED_CONNECTION_RETRY_MS = 5000;

export class AudioChannel {
  constructor(token) {
    this.token = token;
    this.socket = null;
    this.connectListeners = [];
    this.disconnectListeners = [];
    this.refusal = null; // the server's reason when it refused the connection itself
    this.lastAttemptAt = 0;
  }
  onConnect(listener) {
    this.connectListeners.push(listener);
  }
  onDisconnect(listener) {
    this.disconnectListeners.push(listener);
  }
  ensure() {
    if (!this.socket && window.socket) {
      this.socket = window.socket.io.socket("/vr", { auth: { token: this.token } });
      this.socket.on("connect", () => {
        this.refusal = null;
        this.connectListeners.forEach((listener) => listener());
      });
      this.socket.on("connect_error", (error) => {
        if (!this.socket.active) this.refusal = error.message; // refused by the server, not a network error
      });
      this.socket.on("disconnect", () => this.disconnectListeners.forEach((listener) => listener()));
    }
    if (this.socket && !this.socket.active && Date.now() - this.lastAttemptAt > REFUSED_CONNECTION_RETRY_MS) {
      // socket.io gives up on a connection the server refused (busy, an expired token); ask again now and then.
      this.lastAttemptAt = Date.now();
      this.socket.connect();
    }
    return this.socket;
  }
  get connected() {
    return Boolean(this.socket?.connected);
  }
  /** The server's answer ({ok, ...} or {ok: false, status, error, retry}); never rejects. */
  request(event, payload, timeoutMs) {
    return new Promise((resolve) => {
      if (!this.ensure()?.connected) return resolve({ ok: false, retry: true, error: OFFLINE });
      this.socket.timeout(timeoutMs).emit(event, payload, (error, response) => {
        resolve(error ? { ok: false, retry: true, error: "no answer from the server" } : response);
      });
    });
  }
  close() {
    this.lastAttemptAt = Infinity; // for good: never connect again
    this.socket?.disconnect();
  }
}

let reloadDeferred = false;

/** NiceGUI wanted to reload the page (its server-side client is gone) while audio was unsent. */
export function reloadWasDeferred() {
  return reloadDeferred;
}

/** Wraps NiceGUI's `connect_error` handler: its page reload waits while `holdsUnsavedAudio()` says so. */
export function guardPageReloads(holdsUnsavedAudio) {
  const socket = window.socket;
  if (!socket || socket.vrGuarded) return;
  const niceguiHandlers = socket.listeners("connect_error");
  socket.off("connect_error");
  socket.on("connect_error", (error) => {
    if (holdsUnsavedAudio()) {
      console.log("keeping the page: audio is still being recorded or uploaded");
      reloadDeferred = true;
      // NiceGUI's "Connection lost. Trying to reconnect..." would stay up for good (its client is gone, it never
      // reconnects) beside a status line saying "All audio saved": the status line speaks for the connection.
      document.getElementById("popup")?.setAttribute("aria-hidden", "true");
      return;
    }
    niceguiHandlers.forEach((handler) => handler(error));
  });
  socket.vrGuarded = true;
}
