// The app's one duration format, as pages/formatting.py format_duration writes it: m:ss, h:mm:ss past an hour,
// whole seconds (cut, never rounded up, so a timer, a row and a player agree on the same recording).
export function clock(seconds) {
  const total = Math.max(0, Math.floor(seconds || 0));
  const [h, m, s] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60];
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}
