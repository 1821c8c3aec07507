// When the server signed an audio URL, on this browser's clock, so that a player swaps the URL before it expires:
// what the URL itself says (the app's `expires` less the URL lifetime, or S3's X-Amz-Date), kept between `earliest`
// (a moment before the URL was asked for) and `now`. A player made a while after its URL was signed (a row opened on
// a busy page) so no longer takes its own start for the URL's; a clock that is off costs at worst a swap that comes
// early, or one that comes late and the retry after a 403 makes up for.

export function signedAt(url, lifetimeS, earliest, now = Date.now()) {
  let params;
  try {
    params = new URL(url, "http://localhost").searchParams;
  } catch {
    return now;
  }
  const expires = params.get("expires");
  const said = expires ? (Number(expires) - lifetimeS) * 1000 : amzDate(params.get("X-Amz-Date"));
  if (!Number.isFinite(said)) return now;
  return Math.min(now, Math.max(earliest, said));
}

function amzDate(value) {
  const parts = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(value || "");
  if (!parts) return NaN;
  const [year, month, day, hours, minutes, seconds] = parts.slice(1).map(Number);
  return Date.UTC(year, month - 1, day, hours, minutes, seconds);
}
