// The workspace's live connection: one WebSocket to /api/v1/realtime, reconnected with backoff. The socket does
// not replay, so every (re)connect asks the screen to catch up from the REST API (onConnected).

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

export class LiveSocket {
  constructor({ onEvent, onState, onConnected }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.onConnected = onConnected;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.state = "offline";
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    this.open();
  }

  stop() {
    this.stopped = true;
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) this.ws.close(1000, "logout");
    this.ws = null;
    this.setState("offline");
  }

  /** Drop the connection as a network failure would and stay away holdMs before reconnecting (tests, support). */
  drop(holdMs = 0) {
    this.holdUntil = Date.now() + holdMs;
    if (this.ws) this.ws.close(4000, "dropped");
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  setState(state) {
    this.state = state;
    this.onState(state);
  }

  open() {
    if (this.stopped) return;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    const url = `${window.location.protocol === "https:" ? "wss" : "ws"}://${window.location.host}/api/v1/realtime`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (data.kind === "hello") {
        this.attempt = 0;
        this.setState("live");
        this.onConnected();
        return;
      }
      this.onEvent(data);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (event.code === 4401) {
        this.setState("offline");
        this.onEvent({ kind: "session.ended" });
        return;
      }
      const backoff = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] * (0.8 + Math.random() * 0.4);
      const wait = Math.max(backoff, (this.holdUntil || 0) - Date.now());
      this.attempt += 1;
      this.setState("reconnecting");
      this.timer = window.setTimeout(() => { this.timer = null; this.open(); }, wait);
    });
  }
}
