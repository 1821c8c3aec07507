// How the recorder writes times, names and refusals for people: one place, so the page, the titles and the saved
// files say the same thing.

const pad = (n) => String(n).padStart(2, "0");

export function localLabel(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function fileStamp(ms) {
  return localLabel(new Date(ms)).replace(" ", "-").replace(":", ""); // 2025-05-01-1432
}

export function fileExtension(mimeType) {
  if (mimeType.includes("ogg")) return "ogg";
  return mimeType.includes("mp4") ? "m4a" : "webm";
}

export function plainReason(refused) {
  return (refused.reason || "no reason was given").replace(/[.\s]+$/, "");
}

export function refusalText(refused) {
  return `The server refused part of this recording: ${plainReason(refused)}. The audio is kept in this browser.`;
}
