// The recorder's transition table: every state change the component makes goes through it.

import assert from "node:assert/strict";
import { test } from "node:test";

import { busy, can, capturing, INITIAL_STATE, nextState, TRANSITIONS } from "../../assets/recorder/state_machine.mjs";

const STATES = Object.keys(TRANSITIONS);

test("a recording goes from record to saved through the table", () => {
  let state = INITIAL_STATE;
  for (const event of ["record", "opened", "pause", "resume", "stop", "finalize", "saved", "record"]) {
    state = nextState(state, event);
    assert.ok(state, `"${event}" is allowed`);
  }
  assert.equal(state, "starting");
});

test("what the table does not allow changes nothing", () => {
  assert.equal(nextState("uploading", "pause"), null);
  assert.equal(nextState("recording", "record"), null);
  assert.equal(nextState("starting", "saved"), null, "an earlier recording saved while the microphone opens");
  assert.equal(nextState("error", "finalize"), null);
  assert.equal(nextState("nonsense", "record"), null);
});

test("every state leads somewhere known, and failing is possible from each", () => {
  for (const state of STATES) {
    for (const next of Object.values(TRANSITIONS[state])) assert.ok(STATES.includes(next), `${state} -> ${next}`);
    assert.equal(nextState(state, "fail"), "error");
  }
  assert.ok(Object.isFrozen(TRANSITIONS));
});

test("recording may start again only when nothing is under way", () => {
  const startable = STATES.filter((state) => can(state, "record"));
  assert.deepEqual(startable.sort(), ["error", "idle", "saved"]);
  for (const state of STATES) assert.equal(busy(state), !can(state, "record"), state);
  assert.deepEqual(STATES.filter(capturing).sort(), ["paused", "recording"]);
});
