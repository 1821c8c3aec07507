// When an audio URL was signed, on this browser's clock: what the player's "swap it before it expires" counts from.

import assert from "node:assert/strict";
import { test } from "node:test";

import { signedAt } from "../../assets/recorder/signed_url.mjs";

const LIFETIME_S = 3600;
const PAGE_LOADED = Date.UTC(2026, 11, 7, 12, 0, 0);
const app = (signedMs) => `/api/recordings/1/audio?expires=${Math.floor(signedMs / 1000) + LIFETIME_S}&signature=ab`;
const s3 = (signedMs) => {
  const stamp = new Date(signedMs).toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
  return `https://bucket.example/key?X-Amz-Date=${stamp}&X-Amz-Expires=${LIFETIME_S}&X-Amz-Signature=ab`;
};

test("a player made seconds after its URL was signed counts from the signing, not from itself", () => {
  const signed = PAGE_LOADED + 60_000;
  const playerMade = signed + 3_000; // a row opened on a busy page
  assert.equal(signedAt(app(signed), LIFETIME_S, PAGE_LOADED, playerMade), signed);
  assert.equal(signedAt(s3(signed), LIFETIME_S, PAGE_LOADED, playerMade), signed);
});

test("a browser clock that is off is held between the page's load and now", () => {
  const now = PAGE_LOADED + 60_000;
  // ahead of the server by an hour: the URL looks older than the page, so it counts from the page's load
  assert.equal(signedAt(app(now - 3_600_000), LIFETIME_S, PAGE_LOADED, now), PAGE_LOADED);
  // behind: the URL looks signed in the future, so it counts from now, as before
  assert.equal(signedAt(app(now + 600_000), LIFETIME_S, PAGE_LOADED, now), now);
});

test("a URL that says nothing of its signing counts from now", () => {
  const now = PAGE_LOADED + 5_000;
  assert.equal(signedAt("/audio/plain.webm", LIFETIME_S, PAGE_LOADED, now), now);
  assert.equal(signedAt("https://x/k?X-Amz-Date=yesterday", LIFETIME_S, PAGE_LOADED, now), now);
  assert.equal(signedAt("http://[bad", LIFETIME_S, PAGE_LOADED, now), now);
});
