// The level meter: how often it draws and what it tells a screen reader, on a fake clock of animation frames.

import assert from "node:assert/strict";
import { test } from "node:test";

import { LevelMeter } from "../../assets/recorder/level_meter.mjs";

/** The browser's parts the meter uses: 60 animation frames a second, a microphone whose loudness the test sets. */
function fakeBrowser() {
  const frames = [];
  const world = { loudness: 0.1, drawings: 0, told: [] };
  globalThis.requestAnimationFrame = (callback) => frames.push(callback);
  globalThis.cancelAnimationFrame = () => frames.splice(0);
  globalThis.getComputedStyle = () => ({ getPropertyValue: () => "" });
  globalThis.AudioContext = class {
    resume = async () => {};
    close = () => {};
    createMediaStreamSource = () => ({ connect: () => {} });
    createAnalyser = () => ({
      fftSize: 0,
      getByteTimeDomainData: (samples) => {
        if (world.speaking) world.loudness = 0.05 + ((world.loudness + 0.01) % 0.2); // another level at each look
        samples.forEach((_, i) => (samples[i] = 128 + Math.round(world.loudness * 127) * (i % 2 ? 1 : -1)));
      },
    });
  };
  const context = { clearRect() {}, fillRect() {}, beginPath() {}, roundRect() {}, fill() { world.drawings += 1; } };
  const attributes = new Map();
  world.canvas = {
    width: 200,
    height: 8,
    getContext: () => context,
    getAttribute: (name) => attributes.get(name) ?? null,
    setAttribute: (name, value) => {
      attributes.set(name, value);
      world.told.push(value);
    },
  };
  world.runFor = (seconds) => {
    for (let frame = 0; frame < seconds * 60; frame++) {
      world.now = (world.now ?? 0) + 1000 / 60;
      const due = frames.splice(0);
      for (const callback of due) callback(world.now);
    }
  };
  return world;
}

test("the meter draws at most 20 times a second, however fast the screen refreshes", () => {
  const world = fakeBrowser();
  world.speaking = true; // a level that changes at every look, so every frame the meter takes is one it draws
  const meter = new LevelMeter(() => world.canvas, () => true);
  meter.start({});
  world.runFor(3);
  assert.ok(world.drawings >= 45 && world.drawings <= 61, `${world.drawings} drawings in 3 s`);
  meter.stop();
});

test("a paused meter draws its zero once and tells a screen reader once", () => {
  const world = fakeBrowser();
  let live = true;
  const meter = new LevelMeter(() => world.canvas, () => live);
  meter.start({});
  world.runFor(1);
  live = false;
  const [drawn, told] = [world.drawings, world.told.length];
  world.runFor(2);
  assert.equal(world.drawings - drawn, 1);
  assert.deepEqual(world.told.slice(told), ["0"]);
  meter.stop();
});
