// Staff screens sign out after the idle time the server uses. Activity on the page (keys, taps)
// tells the server once a minute, so a facilitator stepping through a group stays signed in.
(function () {
  "use strict";
  var seconds = parseInt(document.body.dataset.idleSeconds || "0", 10);
  if (!seconds) { return; }
  var token = document.querySelector('meta[name="csrf-token"]');
  var timer = null;
  var lastPing = Date.now();
  function signOut() { window.location.assign("/login?idle=1"); }
  function activity() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(signOut, seconds * 1000);
    if (Date.now() - lastPing > 60000) {
      lastPing = Date.now();
      fetch("/api/keepalive", {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": token ? token.content : "" }
      }).then(function (r) { if (r.status === 401) { signOut(); } }).catch(function () {});
    }
  }
  ["keydown", "pointerdown", "wheel", "touchstart"].forEach(function (name) {
    document.addEventListener(name, activity, { passive: true });
  });
  activity();
})();
