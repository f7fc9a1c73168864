// The room display: follows the facilitator's step live, keeps the step timer, shows the headcount.
// It never receives a name. When the connection drops the content stays and a small mark says so;
// on reconnect the server sends the current state from the database.
import { connectLive, minSec, secondsLeft, syncClock } from "./live-common.js";

const data = JSON.parse(document.getElementById("display-data").textContent);
const $ = (id) => document.getElementById(id);
let state = data.state;
let shownKey = stepKey(state);
syncClock(state);

function stepKey(s) {
  return [s.module_id, s.step_index, s.started].join("|");
}

function show(next) {
  state = next;
  const key = stepKey(state);
  const changed = key !== shownKey;
  shownKey = key;
  const apply = () => {
    $("step-title").textContent = state.step_title || "Welcome";
    // The server renders the curriculum's markup (escaped), the same HTML as the first paint.
    $("step-room").innerHTML = state.step_room_html || "";
    $("position").textContent = !state.step_count ? "" :
      (state.started ? `Step ${state.step_index + 1} of ${state.step_count}` : "Starting soon");
    $("headcount").textContent = state.headcount;
    $("timer-box").hidden = !state.started;
    tick();
  };
  const step = $("step");
  if (changed && !window.matchMedia("(prefers-reduced-motion: reduce)").matches) {
    // A quick, calm cross-fade: out, swap, in.
    step.classList.add("leaving");
    setTimeout(() => { apply(); step.classList.remove("leaving"); }, 180);
  } else {
    apply();
  }
}

function tick() {
  const left = secondsLeft(state);
  $("timer").textContent = minSec(left);
  $("timer-label").textContent = left < 0 ? "over" : "left";
  $("timer-box").classList.toggle("over", left < 0);
}
setInterval(tick, 1000);

function ended(message) {
  $("step-title").textContent = message || "This group has ended. Thank you for coming.";
  $("step-room").replaceChildren();
  $("position").textContent = "";
  $("timer-box").hidden = true;
}

connectLive({
  sessionId: state.session_id,
  auth: { display_token: data.token },
  onState: (next) => { syncClock(next); show(next); },
  onConnection: (online) => { $("reconnecting").hidden = online; },
  onRefused: (error) => {
    if (error && error.code === "display_ended") { ended(error.message); }
  },
  handlers: {
    headcount: (payload) => { $("headcount").textContent = payload.count; },
    closed: () => ended(),
    error: (error) => { if (error && error.code === "display_ended") { ended(error.message); } },
  },
});
show(state);
