// The facilitator's control page: step through the module, keep time, watch the roster live,
// check clients in or out by hand, and hear (see) when someone at the kiosk needs help.
import { connectLive, durationWords, minSec, secondsLeft, serverNow, syncClock } from "./live-common.js";

const data = JSON.parse(document.getElementById("live-data").textContent);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
const HIGHLIGHT_MS = 8000;

let state = data.state;
let wanted = state.step_index;  // where presses have asked to go (before the server has answered)
let startAsked = state.started; // a step was asked for, which starts the group (before the answer)
let knownIn = null;             // ids in the room at the last roster, to spot new arrivals
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", timeZone: data.timezone });

syncClock(state);

// ---- the step --------------------------------------------------------------------------------

function showStep(next) {
  state = Object.assign({}, state, next);
  wanted = state.step_index;
  const step = data.steps[state.step_index];
  if (step) {
    $("step-title").textContent = step.title;
    $("step-position").textContent = `Step ${state.step_index + 1} of ${data.steps.length}`;
    // Rendered by the server from the curriculum's markup (escaped), as the room display shows it.
    $("step-room").innerHTML = step.room_html;
    $("step-notes").innerHTML = step.notes_html;
  }
  document.querySelectorAll(".step-jump").forEach((button) => {
    if (Number(button.dataset.index) === state.step_index) {
      button.setAttribute("aria-current", "step");
    } else {
      button.removeAttribute("aria-current");
    }
  });
  if (state.started) {
    const start = $("start");
    if (start) { start.closest(".start-card").hidden = true; }
  }
  $("previous").disabled = !state.started || state.step_index === 0;
  $("next").disabled = data.steps.length === 0 || (state.started && state.step_index >= data.steps.length - 1);
  if (typeof state.headcount === "number") { $("headcount").textContent = state.headcount; }
  tick();
}

function goTo(index) {
  if (index < 0 || index >= data.steps.length) { return; }
  wanted = index;
  startAsked = true;
  socket.emit("step", { session_id: data.session_id, index });
}

function next() {
  // Before the group starts, Next starts it on the step shown (a clicker's first press).
  // Start then Next pressed quickly (before the server's answer) goes on to the second step.
  goTo(state.started || startAsked ? wanted + 1 : state.step_index);
}

function previous() {
  if (state.started || startAsked) { goTo(wanted - 1); }
}

$("next").addEventListener("click", next);
$("previous").addEventListener("click", previous);
if ($("start")) { $("start").addEventListener("click", () => goTo(state.step_index)); }
document.querySelectorAll(".step-jump").forEach((button) => {
  button.addEventListener("click", () => goTo(Number(button.dataset.index)));
});

// Presentation clickers send arrows and Page Up/Down; typing in a field must not step.
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (event.altKey || event.ctrlKey || event.metaKey) { return; }
  if (target.closest && target.closest("input, textarea, select, dialog, [contenteditable]")) { return; }
  if (event.key === "ArrowRight" || event.key === "PageDown") {
    event.preventDefault();
    next();
  } else if (event.key === "ArrowLeft" || event.key === "PageUp") {
    event.preventDefault();
    previous();
  }
});

// ---- clocks ----------------------------------------------------------------------------------

// Three times side by side, each in a form that cannot be taken for another: the time of day, the
// group's running time in words (h and min), and the step's countdown in minutes:seconds, labelled.
function tick() {
  $("clock-now").textContent = timeFormat.format(new Date(serverNow()));
  if (state.started && state.started_at) {
    $("elapsed").textContent = "Running " + durationWords((serverNow() - Date.parse(state.started_at)) / 1000);
  } else {
    $("elapsed").textContent = "Not started";
  }
  const left = secondsLeft(state);
  const countdown = $("countdown");
  countdown.textContent = minSec(left);
  countdown.classList.toggle("over", left < 0);
  $("countdown-label").textContent = !state.started ? "min:s for this step" : (left < 0 ? "min:s over this step's time" : "min:s left in this step");
}
setInterval(tick, 1000);

// ---- the roster ------------------------------------------------------------------------------

function badge(text, kind, icon) {
  const span = document.createElement("span");
  span.className = "badge " + kind;
  span.textContent = (icon ? icon + " " : "") + text;
  return span;
}

function actionButton(label, action, person) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button quiet small";
  button.textContent = label;
  button.addEventListener("click", () => openHand(action, person));
  return button;
}

function showRoster(roster) {
  const list = $("roster");
  const nowIn = new Set(roster.entries.filter((e) => e.state === "in").map((e) => e.id));
  const arrivals = [];
  list.replaceChildren();
  for (const entry of roster.entries) {
    const item = document.createElement("li");
    item.className = "entry " + entry.state;
    item.dataset.id = entry.id;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = entry.name;
    const when = document.createElement("span");
    when.className = "when";
    if (entry.state === "excused") {
      when.textContent = "Excused";
    } else {
      when.textContent = "In " + entry.time_in + (entry.time_out ? " · out " + entry.time_out : "");
    }
    const marks = document.createElement("span");
    marks.className = "marks";
    if (entry.late) { marks.append(badge("Late", "late", "◔")); }
    if (entry.left_early) { marks.append(badge("Left early", "late", "↩")); }
    if (entry.new_to_module) { marks.append(badge("New to this module", "new", "★")); }
    if (entry.at_risk) { marks.append(badge("Hours at risk", "at_risk", "!")); }
    if (entry.video) { marks.append(badge("By video", "video", "▭")); }
    if (entry.manual) { marks.append(badge("By hand", "quiet-badge", "")); }
    item.append(name, when, marks);
    if (entry.state === "in") { item.append(actionButton("Check out…", "check_out", entry)); }
    if (knownIn !== null && entry.state === "in" && !knownIn.has(entry.id)) {
      item.classList.add("arrived");
      arrivals.push(entry.name);
      setTimeout(() => item.classList.remove("arrived"), HIGHLIGHT_MS);
    }
    list.append(item);
  }
  $("roster-empty").hidden = roster.entries.length > 0;
  if (arrivals.length) { $("arrivals").textContent = arrivals.join(", ") + " checked in."; }
  knownIn = nowIn;

  const missing = $("not-here");
  missing.replaceChildren();
  for (const person of roster.not_here) {
    const item = document.createElement("li");
    item.className = "entry absent";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = person.name;
    item.append(name);
    if (person.at_risk) { item.append(badge("Hours at risk", "at_risk", "!")); }
    item.append(actionButton("Check in…", "check_in", person), actionButton("Joins by video…", "check_in_video", person),
      actionButton("Excused…", "excuse", person));
    missing.append(item);
  }
  $("headcount").textContent = roster.headcount;
}

// ---- check in, check out, excuse by hand -----------------------------------------------------

const dialog = $("hand-dialog");
const form = $("hand-form");
const WORDS = {
  check_in: { title: "Check in", button: "Check in", reasonNeeded: false, time: true },
  check_in_video: { title: "Check in by video", button: "Check in by video", reasonNeeded: false, time: true },
  check_out: { title: "Check out", button: "Check out", reasonNeeded: false, time: true },
  excuse: { title: "Mark excused", button: "Mark excused", reasonNeeded: true, time: false },
};

function openHand(action, person) {
  const words = WORDS[action];
  form.elements.action.value = action;
  form.elements.client.value = person.id;
  form.elements.at.value = "";
  form.elements.reason.value = "";
  form.elements.reason.required = words.reasonNeeded;
  $("hand-title").textContent = `${words.title}: ${person.name}`;
  $("hand-ok").textContent = words.button;
  $("hand-reason-need").textContent = words.reasonNeeded ? "(needed)" : "(optional)";
  $("hand-at").hidden = !words.time;
  $("hand-at-label").hidden = !words.time;
  $("hand-error").hidden = true;
  dialog.showModal();
  form.elements.reason.focus();
}

$("hand-cancel").addEventListener("click", () => dialog.close());

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    action: form.elements.action.value,
    client: form.elements.client.value,
    reason: form.elements.reason.value,
    at: form.elements.at.value,
  };
  if (WORDS[body.action].reasonNeeded && !body.reason.trim()) {
    showDialogError("Please give a reason.");
    return;
  }
  try {
    const response = await fetch(data.attendance_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      showDialogError((answer.error && answer.error.message) || "That did not work. Please try again.");
      return;
    }
    dialog.close();
    say(answer.message);
  } catch (err) {
    showDialogError("The server cannot be reached. Please try again in a moment.");
  }
});

function showDialogError(text) {
  $("hand-error").textContent = text;
  $("hand-error").hidden = false;
}

function say(text, kind) {
  const message = $("message");
  message.className = kind === "error" ? "alert" : "notice";
  message.textContent = text;
  message.hidden = false;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { message.hidden = true; }, 8000);
}

// ---- someone at the kiosk needs help ---------------------------------------------------------

function helpAlert(alert) {
  const box = document.createElement("div");
  box.className = "alert help-alert";
  box.setAttribute("role", "alert");
  const text = document.createElement("span");
  const where = alert.kiosk ? ` at the kiosk “${alert.kiosk}”` : " at the kiosk";
  text.textContent = `⚠ Someone${where} asked for help (${alert.time}).`;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "button small";
  dismiss.textContent = "Got it";
  dismiss.addEventListener("click", () => box.remove());
  box.append(text, dismiss);
  $("alerts").prepend(box);
}

// ---- close -----------------------------------------------------------------------------------

let closing = false;  // this page sent the close: its own answer leads to the summary

$("close-form").addEventListener("submit", (event) => {
  if (!window.confirm($("close-form").dataset.confirm)) {
    event.preventDefault();
  } else {
    closing = true;
  }
});

// ---- the connection --------------------------------------------------------------------------

function connection(online) {
  const mark = $("connection");
  mark.textContent = online ? "Live" : "Reconnecting…";
  mark.classList.toggle("down", !online);
}

const socket = connectLive({
  sessionId: data.session_id,
  onState: (next) => {
    showStep(next);
    if (next.roster) { showRoster(next.roster); }
  },
  onConnection: connection,
  onRefused: (error) => {
    if (error && error.code === "signed_out") {
      // The sign-in ended (signed out elsewhere, idle, a password or role change): sign in again here.
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      return;
    }
    say((error && error.message) || "The live connection was refused. Please reload the page.", "error");
  },
  handlers: {
    roster: showRoster,
    headcount: (payload) => { $("headcount").textContent = payload.count; },
    help: helpAlert,
    closed: () => {
      // Closed from another screen (a coordinator, a second laptop): go to the summary.
      if (!closing) { window.location.assign(data.summary_url); }
    },
    error: (error) => { wanted = state.step_index; startAsked = state.started; say(error.message || "That did not work.", "error"); },
  },
});

showStep(state);
showRoster(state.roster);
