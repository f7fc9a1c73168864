// What the control page and the room display share: the socket, the server-corrected clock,
// step timers. Plain ES module, no build step.

// Milliseconds to add to this screen's clock to get the server's (TVs often keep bad time).
let offsetMs = 0;

export function syncClock(state) {
  if (state && state.server_now) {
    offsetMs = Date.parse(state.server_now) - Date.now();
  }
}

export function serverNow() {
  return Date.now() + offsetMs;
}

// Seconds left of the current step: the full time before it starts, negative once over.
export function secondsLeft(state) {
  const total = (state.step_minutes || 0) * 60;
  if (!state.step_started_at || !state.started) { return total; }
  return total - Math.floor((serverNow() - Date.parse(state.step_started_at)) / 1000);
}

export function minSec(seconds) {
  const s = Math.abs(seconds);
  const m = Math.floor(s / 60);
  return m + ":" + String(s % 60).padStart(2, "0");
}

// A running time in words: "45 min", "1 h 05 min" (never "1:05", which reads like a countdown).
export function durationWords(seconds) {
  const m = Math.max(0, Math.floor(seconds / 60));
  return m < 60 ? m + " min" : Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
}

// A Socket.IO connection that joins the session on every (re)connect, so a server restart
// or a network drop ends with the current state from the database, without a reload.
// A room display's token goes in the connect URL too: the server checks it before accepting the
// connection. The server refuses a connection it cannot admit (a sign-in that ended, a display link
// that expired) with a 401 to the handshake, and closes the screens of a sign-in that ends; the page
// then asks for itself again to learn why (signed out, link ended) or, when the server is only
// unreachable for a moment, tries again.
export function connectLive({ sessionId, auth, onState, onStep, onConnection, onRefused, handlers }) {
  const query = auth && auth.display_token ? { display_token: auth.display_token } : {};
  const socket = window.io({ auth: auth || {}, query, reconnectionDelay: 500, reconnectionDelayMax: 2000 });
  const retryLater = () => setTimeout(() => socket.connect(), 5000);
  function recheck() {
    socket.disconnect();
    fetch(window.location.href, { redirect: "manual", cache: "no-store", credentials: "same-origin" })
      .then((page) => {
        if (page.type === "opaqueredirect" || page.status === 401) {
          if (onRefused) { onRefused({ code: "signed_out", message: "You were signed out. Please sign in again." }); }
        } else if (page.status === 403 || page.status === 410) {
          if (onRefused) { onRefused({ code: "display_ended" }); }
        } else {
          retryLater();
        }
      })
      .catch(retryLater);
  }
  socket.on("connect", () => {
    onConnection(true);
    socket.emit("join", { session_id: sessionId });
  });
  socket.on("disconnect", (reason) => {
    onConnection(false);
    if (reason === "io server disconnect") { recheck(); }
  });
  socket.on("connect_error", (err) => {
    onConnection(false);
    if (err && err.description === 401) { recheck(); return; }
    if (!socket.active) {
      // The server refused us (signed out, link ended): say so, and try again later in case it was
      // a restart that had not yet loaded everything.
      if (onRefused) { onRefused(err && err.data); }
      setTimeout(() => socket.connect(), 5000);
    }
  });
  socket.on("state", (state) => { syncClock(state); onState(state); });
  socket.on("step", (state) => { syncClock(state); (onStep || onState)(state); });
  for (const [name, fn] of Object.entries(handlers || {})) { socket.on(name, fn); }
  // A tab woken from sleep may have missed steps: ask again.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && socket.connected) {
      socket.emit("state", { session_id: sessionId });
    }
  });
  return socket;
}
