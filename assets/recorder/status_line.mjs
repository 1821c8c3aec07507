// The status line under the timer: one sentence on where the audio is, from the recorder's state and its uploads.

import { refusalText } from "./wording.mjs";

export const ONLY_AT_STOP_TEXT = "This browser saves the audio only when you press Stop, so keep this page open until then";

/** `sessions`: every upload (live or recovered); `live`: the one being recorded, if any; `channel`: the audio channel. */
export function statusLine({ state, notice, sessions, live, channel, onlyAtStop }) {
  if (state === "error") return notice;
  if (state === "starting") return "Opening the microphone…";
  const seconds = Math.round(sessions.reduce((sum, session) => sum + session.waitingMs, 0) / 1000);
  const problem = sessions.map((session) => session.problem).find(Boolean);
  const recovering = sessions.some((session) => session.recovered);
  if (live?.record.refused) return refusalText(live.record.refused);
  if (live && onlyAtStop) return ONLY_AT_STOP_TEXT;
  if (!live && !recovering) {
    if (state === "saved") return "All audio saved";
    return notice || "Ready to record";
  }
  if (!channel.connected && channel.refusal) {
    return `Not uploading: the server refused the connection (${channel.refusal}) – ${seconds} s waiting, kept in this browser`;
  }
  if (!channel.connected) return `Offline – ${seconds} s waiting to upload`;
  if (problem) return `${seconds} s waiting to upload (${problem})`;
  if (!live) return `Recovering an earlier recording – ${seconds} s to upload`;
  if (live.finalizing) return "Saving…";
  if (seconds >= 2) return `${seconds} seconds waiting to upload`;
  return live.pending.size > 0 && live.record.stopped ? "Saving…" : "All audio saved";
}
