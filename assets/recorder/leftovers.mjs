// What an earlier page of this browser left behind (a reload, a crashed tab): Web Locks tell which recordings are
// still alive in another tab, so each leftover is uploaded by exactly one page.

const STALE_WITHOUT_LOCKS_MS = 15000; // without Web Locks, a recording untouched this long is taken as abandoned

const lockName = (localId) => `vr-session-${localId}`;

/** Holds the recording's lock until `untilFinished` settles: other tabs and the next page leave it alone. */
export function holdLock(localId, untilFinished) {
  navigator.locks?.request(lockName(localId), () => untilFinished);
}

/** Calls `claimed()` (which returns a promise that holds the lock) when no other page holds the recording. */
export function claimLeftover(record, claimed) {
  if (navigator.locks) {
    navigator.locks.request(lockName(record.localId), { ifAvailable: true }, (lock) => (lock ? claimed() : null));
  } else if (Date.now() - (record.updatedAt || 0) > STALE_WITHOUT_LOCKS_MS) {
    claimed();
  }
}
