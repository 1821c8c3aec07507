// Opening the microphone and a MediaRecorder on it, with every failure put in plain words for the status line.

const MIME_TYPES = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4;codecs=mp4a.40.2", "audio/mp4"];

const DENIALS = {
  NotAllowedError: "Microphone access was denied. Allow it in your browser's site settings and try again.",
  NotFoundError: "No microphone was found. Connect one and try again.",
  NotReadableError: "The microphone is busy in another application.",
};

/** Why this page cannot record at all, or null. */
export function cannotRecordHere() {
  if (window.isSecureContext && navigator.mediaDevices?.getUserMedia && window.MediaRecorder) return null;
  return "This page cannot use the microphone: open it over https (or on localhost) in a current browser.";
}

/** The microphone's stream; throws an Error whose message is the user's explanation. */
export async function openMicrophone() {
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
  } catch (error) {
    throw new Error(DENIALS[error.name] || `The microphone could not be opened (${error.message}).`);
  }
}

/** A MediaRecorder in the first format this browser offers, and the type its audio will have. */
export function recorderFor(stream) {
  const wanted = MIME_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
  const recorder = new MediaRecorder(stream, wanted ? { mimeType: wanted } : {});
  return { recorder, mimeType: recorder.mimeType || wanted || "audio/webm" };
}
