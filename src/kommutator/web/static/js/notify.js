// Desktop notifications and a short sound (WebAudio, nothing downloaded) for what needs the agent now.

let audio = null;

/** Ask for permission; must run inside a user gesture (a click or the login submit). */
export function askPermission() {
  if (!("Notification" in window) || Notification.permission !== "default") return;
  try {
    const asked = Notification.requestPermission();
    if (asked && asked.catch) asked.catch(() => {});
  } catch {
    // old browsers take a callback; nothing to do
  }
  unlockAudio();
}

/** Browsers start audio only after a gesture: create the context then, reuse it later. */
export function unlockAudio() {
  if (audio) return;
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  try {
    audio = new Ctx();
  } catch {
    audio = null;
  }
}

export function beep() {
  if (!audio) return;
  try {
    if (audio.state === "suspended") audio.resume();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(880, audio.currentTime);
    osc.frequency.setValueAtTime(660, audio.currentTime + 0.12);
    gain.gain.setValueAtTime(0.0001, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.3);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.32);
  } catch {
    // a sound is a nicety; never let it break the screen
  }
}

/** A desktop notification (when allowed) and a beep; clicking it focuses the tab and runs onClick. */
export function alertAgent(title, body, onClick) {
  beep();
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  try {
    const n = new Notification(title, { body, tag: `kommutator-${title}` });
    n.onclick = () => {
      window.focus();
      if (onClick) onClick();
      n.close();
    };
  } catch {
    // some platforms allow notifications only from a service worker; the beep still sounded
  }
}
