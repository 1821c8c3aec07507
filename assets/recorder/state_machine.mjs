// The recorder's states and the only ways between them. Every state change goes through `nextState`, so a control
// pressed at the wrong moment (Pause while saving, Record while recording) changes nothing.

// state -> event -> next state. `fail` is allowed everywhere: the reason is shown and the user may record again.
// `saved` and `empty` (nothing was recorded) end the live recording; they may come while "recording" or "paused"
// too, when MediaRecorder stops by itself (the microphone was unplugged), and in "error", when a recorder that
// failed still hands over its audio. Not in "starting": then the live recording is an earlier one, still uploading.
export const TRANSITIONS = Object.freeze({
  idle: { record: "starting", fail: "error" },
  starting: { opened: "recording", fail: "error" },
  recording: { pause: "paused", stop: "uploading", saved: "saved", empty: "idle", fail: "error" },
  paused: { resume: "recording", stop: "uploading", saved: "saved", empty: "idle", fail: "error" },
  uploading: { finalize: "finalizing", saved: "saved", empty: "idle", fail: "error" },
  finalizing: { saved: "saved", empty: "idle", fail: "error" },
  saved: { record: "starting", fail: "error" },
  error: { record: "starting", saved: "saved", empty: "idle", fail: "error" },
});

export const INITIAL_STATE = "idle";

/** The state `event` leads to from `state`, or null when the table has no such way. */
export function nextState(state, event) {
  return TRANSITIONS[state]?.[event] ?? null;
}

export function can(state, event) {
  return nextState(state, event) !== null;
}

/** The microphone is open: the screen is kept on and leaving the page asks first. */
export function capturing(state) {
  return state === "recording" || state === "paused";
}

/** Audio of the live recording is on its way: leaving the page now would lose it. */
export function busy(state) {
  return state === "starting" || capturing(state) || state === "uploading" || state === "finalizing";
}
