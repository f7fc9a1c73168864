/* The kiosk page: a scanner types a card's code and Enter into one focused field; the answer
   shows for a few seconds and leaves no trace. Scans made while the server cannot be reached
   wait in localStorage (with their own id and time) and are sent in order when it is back. */
(function () {
  "use strict";
  var root = document.getElementById("kiosk");
  if (!root) return;
  var input = document.getElementById("scan-input");
  var words = JSON.parse(document.getElementById("kiosk-words").textContent);
  var QUEUE_KEY = "iop-kiosk-queue";
  var LANG_KEY = "iop-kiosk-lang";
  var SHOW_FOR = { in: 5000, out: 5000, already: 4000, problem: 6000, saved: 4000, help: 8000, confirm: 8000 };
  var REPEAT_MINUTES = Number(root.dataset.repeatMinutes) || 5; // a second scan this long after the first asks "Leaving now?"
  var SPINNER_AFTER = 150;
  var REQUEST_TIMEOUT = 8000;
  var RETRY_EVERY = 15000;
  var lang = root.dataset.lang;
  var state = "ready";
  var resetTimer = null;
  var serverOffset = Date.parse(root.dataset.now) - Date.now(); // server clock minus ours
  var busy = Promise.resolve();
  var lastCode = "", lastCodeAt = 0;
  var flushing = false;
  var asking = null; // while "Leaving now?" shows: { code, checkedInAt } of the card it asks about (in memory only)
  // Check-ins the server answered here, by card, until their session ends: { at, until } (in memory only), so a
  // second scan while offline asks "Leaving now?" as the server would.
  var present = {};

  // ---- words ------------------------------------------------------------------------------
  function t(key, values) {
    var text = (words.catalogs[lang] || {})[key] || words.catalogs.en[key] || "";
    return text.replace(/\{(\w+)\}/g, function (_m, name) { return values && name in values ? values[name] : ""; });
  }
  function applyLang(next) {
    lang = words.catalogs[next] ? next : "en";
    document.documentElement.lang = lang;
    try { localStorage.setItem(LANG_KEY, lang); } catch (e) { /* private mode: the choice lasts this page */ }
    document.cookie = "iop_kiosk_lang=" + lang + "; path=/kiosk; max-age=31536000; samesite=strict";
    document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll("[data-i18n-aria]").forEach(function (el) { el.setAttribute("aria-label", t(el.dataset.i18nAria)); });
    document.querySelectorAll("[data-welcome]").forEach(function (el) { el.textContent = words.welcome[lang] || t("ready.welcome"); });
    document.querySelectorAll("[data-set-lang]").forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.setLang === lang)); });
    document.title = t("page.title");
    if (state === "confirm") askInWords(); // the question in the language just chosen
    showPending();
    tick();
  }

  // ---- hours in words a client reads at a glance: "45 min", "9 h", "11 h 29 min" --------------
  function hoursText(minutes) {
    var h = Math.floor(minutes / 60), m = minutes % 60;
    return h && m ? h + " h " + m + " min" : h ? h + " h" : m + " min";
  }

  // ---- states -----------------------------------------------------------------------------
  function slot(name) { return root.querySelector('[data-slot="' + name + '"]'); }
  function clearSlots() {
    // No trace of the last person: every name, group and number leaves the page.
    root.querySelectorAll("[data-slot]").forEach(function (el) {
      if (el.dataset.slot === "pending-text") return;
      if (el.getAttribute("role") === "progressbar") {
        el.firstElementChild.style.width = "0";
        ["aria-valuenow", "aria-valuemax", "aria-valuetext"].forEach(function (a) { el.removeAttribute(a); });
        return;
      }
      el.textContent = "";
    });
    document.getElementById("kiosk-announce").textContent = "";
  }
  function show(next, holdFor) {
    clearTimeout(resetTimer);
    if (state === "camera" && next !== "camera" && window.IOPCamera) window.IOPCamera.stop(); // a scanner was faster
    state = next;
    if (next !== "confirm") asking = null;
    root.querySelectorAll(".state").forEach(function (el) { el.hidden = el.id !== "state-" + next; });
    if (holdFor) resetTimer = setTimeout(ready, holdFor);
    keepFocus();
  }
  function ready() {
    clearSlots();
    show("ready");
  }
  function announce(text) { document.getElementById("kiosk-announce").textContent = text; }

  function timeText(iso) {
    // The program's local time, as the kiosk's clock shows it ("9:02 AM"; "9:02" in Spanish).
    try {
      return new Intl.DateTimeFormat(lang === "es" ? "es" : "en-US", { hour: "numeric", minute: "2-digit", timeZone: root.dataset.tz })
        .format(new Date(iso));
    } catch (e) { return ""; }
  }
  // "You checked in at 9:02. Leaving now?": nothing is written unless the person says so.
  function askToLeave(name, checkedInAt, code) {
    clearSlots();
    slot("confirm-name").textContent = name || "";
    asking = { code: code, checkedInAt: checkedInAt };
    askInWords();
    show("confirm", SHOW_FOR.confirm);
    announce(slot("confirm-question").textContent);
  }
  function askInWords() {
    if (asking) slot("confirm-question").textContent = t("confirm.question", { time: timeText(asking.checkedInAt) });
  }
  function leave() {
    if (!asking) return;
    var scan = { code: asking.code, scan_id: newScanId(), scanned_at: new Date(Date.now() + serverOffset).toISOString(),
                 action: "check_out" };
    asking = null;
    clearTimeout(resetTimer); // the answer (or "Saved") replaces the question
    busy = busy.then(function () { return send(scan); }, function () { return send(scan); });
  }

  function greet(answer, scan) {
    var name = answer.client.display_name;
    if (answer.result === "confirm_check_out") { askToLeave(name, answer.check_in_at, scan.code); return; }
    clearSlots();
    if (answer.result === "checked_in") {
      slot("in-name").textContent = t("in.welcome", { name: name });
      var s = answer.session;
      slot("in-where").textContent = s.room ? t("in.where", { group: s.group, room: s.room }) : s.group;
      var w = answer.week, bar = slot("in-bar");
      if (w.target_minutes > 0) {
        var met = w.attended_minutes >= w.target_minutes;
        var text = t(met ? "week.met" : "week.progress",
                     { attended: hoursText(w.attended_minutes), target: hoursText(w.target_minutes) });
        slot("in-mark").textContent = met ? "✓" : "";  // a mark and words, never the bar's colour alone
        bar.hidden = false;
        bar.setAttribute("aria-valuemax", w.target_minutes);
        bar.setAttribute("aria-valuenow", Math.min(w.attended_minutes, w.target_minutes));
        bar.setAttribute("aria-valuetext", text);
        bar.firstElementChild.style.width = Math.min(100, 100 * w.attended_minutes / w.target_minutes) + "%";
        slot("in-week").textContent = text;
      } else {
        bar.hidden = true;
        slot("in-week").textContent = t("week.progress_no_target", { attended: hoursText(w.attended_minutes) });
      }
      slot("in-cheer").textContent = t("cheer." + Math.floor(Math.random() * 6));
      show("in", SHOW_FOR.in);
      announce(slot("in-name").textContent);
      chime();
    } else if (answer.result === "checked_out") {
      slot("out-name").textContent = t("out.goodbye", { name: name });
      slot("out-today").textContent = t("out.today", { minutes: hoursText((answer.today || {}).attended_minutes || 0) });
      show("out", SHOW_FOR.out);
      announce(slot("out-name").textContent);
      chime();
    } else {
      slot("already-name").textContent = t("already.here", { name: name });
      show("already", SHOW_FOR.already);
      announce(slot("already-name").textContent);
    }
  }
  function problem(code, message) {
    clearSlots();
    // Words from the catalogue by the stable code; never a code or a name on screen.
    slot("problem-text").textContent = t("error." + code) || message || t("error.bad_request");
    show("problem", SHOW_FOR.problem);
    announce(slot("problem-text").textContent);
  }

  // ---- the optional soft chime (per kiosk, off by default) --------------------------------
  var audio = null;
  function chime() {
    if (root.dataset.chime !== "1" || !window.AudioContext) return;
    try {
      audio = audio || new AudioContext();
      var osc = audio.createOscillator(), gain = audio.createGain(), now = audio.currentTime;
      osc.type = "sine";
      osc.frequency.setValueAtTime(660, now);
      osc.frequency.linearRampToValueAtTime(880, now + 0.15);
      gain.gain.setValueAtTime(0.0001, now);
      gain.gain.exponentialRampToValueAtTime(0.08, now + 0.03);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.45);
      osc.connect(gain).connect(audio.destination);
      osc.start(now);
      osc.stop(now + 0.5);
    } catch (e) { /* no sound is fine */ }
  }

  // ---- talking to the server --------------------------------------------------------------
  function newScanId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // crypto.randomUUID needs a secure context; a kiosk on plain HTTP over the LAN has only getRandomValues.
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function post(url, body) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, REQUEST_TIMEOUT);
    return fetch(url, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body), signal: controller ? controller.signal : undefined
    }).then(function (response) {
      clearTimeout(timer);
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    }, function (error) { clearTimeout(timer); throw error; });
  }
  // Worth trying again later: the server was unreachable, failing, or asked us to slow down.
  function retryable(status) { return status === 0 || status >= 500 || status === 429 || status === 408; }

  // ---- the offline queue ------------------------------------------------------------------
  function loadQueue() {
    try { return JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]"); } catch (e) { return []; }
  }
  function saveQueue(queue) {
    try { localStorage.setItem(QUEUE_KEY, JSON.stringify(queue)); } catch (e) { /* storage full: keep what we have */ }
    showPending();
  }
  function showPending() {
    var count = loadQueue().length, box = document.getElementById("pending");
    box.hidden = count === 0;
    slot("pending-text").textContent = count ? t("pending.count", { count: count }) : "";
  }
  function enqueue(scan) {
    var queue = loadQueue();
    scan.scanned_at = scan.scanned_at || new Date(Date.now() + serverOffset).toISOString();
    queue.push(scan);
    saveQueue(queue);
  }
  // Offline, a second scan of a card is asked about as the server would ask: about the check-in waiting
  // in the queue (the card's last scan here), or else the one the server answered here, while its
  // session lasts; either at least REPEAT_MINUTES before. The time it was checked in, or null.
  function earlierCheckIn(scan) {
    var same = loadQueue().filter(function (s) { return s.code === scan.code; });
    var last = same[same.length - 1], known = present[scan.code], at = null;
    var scannedAt = Date.parse(scan.scanned_at);
    if (last) at = last.action ? null : last.scanned_at;
    else if (known && scannedAt < known.until) at = known.at;
    return at && scannedAt - Date.parse(at) >= REPEAT_MINUTES * 60000 ? at : null;
  }
  // What the server said of a scan's card: checked in (remembered until the session ends), or out.
  function remember(scan, answer) {
    if (answer.result === "checked_out") { delete present[scan.code]; return; }
    var at = answer.result === "checked_in" ? scan.scanned_at : answer.check_in_at;
    if (at && answer.session) present[scan.code] = { at: at, until: sessionEnd(answer.session.ends) };
  }
  // When a session ending at "HH:MM" (the program's time) ends, from now on the kiosk's clock.
  function sessionEnd(ends) {
    var now = Date.now() + serverOffset;
    var local = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23",
                                                   timeZone: root.dataset.tz }).format(new Date(now));
    var minutes = function (hhmm) { var p = hhmm.split(":"); return Number(p[0]) * 60 + Number(p[1]); };
    return now + Math.max(0, minutes(ends) - minutes(local)) * 60000;
  }
  // Send waiting scans oldest first; stop at the first that cannot be sent yet (order matters:
  // a check-in must reach the server before the same person's check-out).
  function flush() {
    if (flushing) return Promise.resolve();
    var queue = loadQueue();
    if (!queue.length) return Promise.resolve();
    flushing = true;
    function next() {
      var queue = loadQueue();
      if (!queue.length) return Promise.resolve();
      return post(root.dataset.scanUrl, queue[0]).then(function (r) {
        if (retryable(r.status)) return;
        if (r.status === 403 && r.data.error && r.data.error.code === "not_enrolled") { location.reload(); return; }
        if (r.status === 200 && r.data.result) remember(queue[0], r.data);
        if (r.status === 409) delete present[queue[0].code];
        saveQueue(loadQueue().filter(function (s) { return s.scan_id !== queue[0].scan_id; }));
        return next();
      }, function () { /* still offline */ });
    }
    return next().then(function () { flushing = false; }, function () { flushing = false; });
  }

  // ---- one scan ---------------------------------------------------------------------------
  function submit(raw) {
    var code = (raw || "").trim();
    if (!code) return;
    var now = Date.now();
    if (code === lastCode && now - lastCodeAt < 3000) return; // one card read twice by the scanner
    lastCode = code; lastCodeAt = now;
    if (state === "confirm" && asking && asking.code === code) { leave(); return; } // the same card again: "Check out"
    var scan = { code: code, scan_id: newScanId(), scanned_at: new Date(now + serverOffset).toISOString() };
    busy = busy.then(function () { return send(scan); }, function () { return send(scan); });
  }
  function send(scan) {
    var spinner = setTimeout(function () { show("checking"); }, SPINNER_AFTER);
    function offline() {
      clearTimeout(spinner);
      var earlier = scan.action ? null : earlierCheckIn(scan);
      if (earlier) { askToLeave("", earlier, scan.code); return; } // asked here; only a "Check out" is kept
      if (scan.action) delete present[scan.code];
      enqueue(scan);
      show("saved", SHOW_FOR.saved);
      announce(t("saved.title"));
    }
    // Earlier scans go first; if they still cannot be sent, this one waits behind them.
    return flush().then(function () {
      if (loadQueue().length || navigator.onLine === false) { offline(); return; }
      // An online scan is timed by the server; only a queued one carries the kiosk's time.
      var online = { code: scan.code, scan_id: scan.scan_id };
      if (scan.action) online.action = scan.action;
      return post(root.dataset.scanUrl, online).then(function (r) {
        clearTimeout(spinner);
        if (retryable(r.status) && r.status !== 429) { offline(); return; }
        if (r.status === 200 && r.data.result) { remember(scan, r.data); greet(r.data, scan); return; }
        var error = r.data.error || {};
        if (error.code === "not_enrolled") { location.reload(); return; }
        if (r.status === 409) delete present[scan.code]; // checked out elsewhere, by staff, or the session is over
        problem(error.code || "server_error", error.message);
      }, offline);
    });
  }

  // ---- help, camera, language ------------------------------------------------------------
  document.getElementById("help-button").addEventListener("click", function () {
    show("help", SHOW_FOR.help);
    post(root.dataset.helpUrl, {}).catch(function () { /* staff can still be reached in person */ });
  });
  document.querySelectorAll("[data-set-lang]").forEach(function (button) {
    button.addEventListener("click", function () { applyLang(button.dataset.setLang); });
  });
  var cameraLoading = null;
  function loadCamera() {
    // The decoder is heavy, so it loads only when the camera is asked for.
    cameraLoading = cameraLoading || new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = root.dataset.cameraSrc;
      script.onload = resolve;
      script.onerror = function () { cameraLoading = null; reject(); };
      document.head.appendChild(script);
    });
    return cameraLoading;
  }
  document.getElementById("camera-button").addEventListener("click", function () {
    show("camera", 30000);
    loadCamera().then(function () {
      return window.IOPCamera.start(document.getElementById("camera-video"), root.dataset.workerSrc, function (code) {
        ready();
        submit(code);
      });
    }).catch(function () {
      if (state !== "camera") return;
      if (window.IOPCamera) window.IOPCamera.stop();
      clearSlots();
      slot("problem-text").textContent = t("camera.unavailable");
      show("problem", SHOW_FOR.problem);
    });
  });
  document.getElementById("camera-cancel").addEventListener("click", ready);
  document.getElementById("confirm-check-out").addEventListener("click", leave);
  document.getElementById("confirm-stay").addEventListener("click", ready);
  // Browsers offer the camera only over HTTPS (or on the server itself): no button that cannot work.
  if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) document.getElementById("camera-button").hidden = true;

  // ---- the scanner's field keeps focus ----------------------------------------------------
  function keepFocus() {
    if (document.activeElement !== input) input.focus({ preventScroll: true });
  }
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      var value = input.value;
      input.value = "";
      submit(value);
    }
  });
  // A scanner may start typing while a button still has focus (a client taps "Español", then
  // scans at once): its characters go to the field all the same, so no card is read short. Space
  // and Enter on a button stay the button's (card codes hold neither).
  document.addEventListener("keydown", function (event) {
    if (event.target === input || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key.length === 1 && event.key !== " ") {
      event.preventDefault();
      keepFocus();
      input.value += event.key;
    } else if (event.key === "Enter" && input.value) {
      event.preventDefault();
      keepFocus();
      var value = input.value;
      input.value = "";
      submit(value);
    }
  });
  input.addEventListener("blur", function () { setTimeout(keepFocus, 0); });
  document.addEventListener("click", function () { setTimeout(keepFocus, 0); });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { keepFocus(); refresh(); } });
  window.addEventListener("focus", keepFocus);

  // ---- clock, heartbeat, retries ----------------------------------------------------------
  var clockFormat = null;
  function tick() {
    try {
      clockFormat = new Intl.DateTimeFormat(lang === "es" ? "es" : "en-US", { hour: "numeric", minute: "2-digit", timeZone: root.dataset.tz });
      document.getElementById("kiosk-clock").textContent = clockFormat.format(new Date(Date.now() + serverOffset));
    } catch (e) { /* an unknown zone name: no clock rather than a wrong one */ }
  }
  function refresh() {
    return fetch(root.dataset.statusUrl, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
      if (response.status === 403) { location.reload(); return; }
      return response.json().then(function (data) {
        if (data.now) serverOffset = Date.parse(data.now) - Date.now();
        return flush();
      });
    }).catch(function () { /* offline: the queue waits */ });
  }
  window.addEventListener("online", function () { busy = busy.then(flush, flush); });
  setInterval(tick, 10000);
  setInterval(function () { busy = busy.then(refresh, refresh); }, RETRY_EVERY);

  var stored = null;
  try { stored = localStorage.getItem(LANG_KEY); } catch (e) { /* none */ }
  applyLang(stored || lang);
  show("ready");
  flush();
})();
