// WebSocket client for the roombox signaling protocol (docs/protocol.md): the version 1
// transport. Version 2 (sealed signaling, seal.js) runs over it: given a `key`, the join says
// `v: 2` and carries the key instead of the name, and `sealed` envelopes are passed up as they
// come. No DOM here: it only speaks the protocol, keeps the session alive and tells listeners.
//
// Events (all CustomEvent, payload in `detail`):
//   state         {state}          'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed' | 'failed'
//   welcome       {id, peers, iceServers, maxPeers, room, resumed, sameId}
//   ice-servers   {iceServers} (renewed TURN credentials)
//   peer-joined   {peer}
//   peer-left     {id}
//   signal        the relayed offer / answer / ice-candidate / view object (with `from`)
//   sealed        a relayed version 2 envelope or hello (with `from`), for seal.js
//   server-error  {code, message}

export const PROTOCOL_VERSION = 1;

// Error codes after which retrying the same join is pointless.
const FATAL_JOIN_ERRORS = new Set(['room-full', 'bad-room', 'bad-json', 'wrong-version']);

export class Signaling extends EventTarget {
  /**
   * @param {object} opts
   * @param {string} opts.url        ws:// or wss:// address of /ws
   * @param {string} opts.room
   * @param {string} [opts.name]   version 1 only: with a `key` the name travels sealed
   * @param {'browser'|'appliance'} [opts.kind]
   * @param {{pk: string, mac: string}} [opts.key] version 2: the member's announced key
   * @param {number} [opts.backoffMinMs]   first reconnect delay
   * @param {number} [opts.backoffMaxMs]   longest reconnect delay
   * @param {number} [opts.pingIntervalMs] app-level ping period
   * @param {number} [opts.silenceTimeoutMs] close and reconnect after this long without any frame
   */
  constructor({ url, room, name, kind = 'browser', key = null, backoffMinMs = 500, backoffMaxMs = 5000,
    pingIntervalMs = 10000, silenceTimeoutMs = 25000, joinTimeoutMs = 10000 }) {
    super();
    this.url = url;
    this.room = room;
    this.name = name;
    this.kind = kind;
    this.key = key;
    this.backoffMinMs = backoffMinMs;
    this.backoffMaxMs = backoffMaxMs;
    this.pingIntervalMs = pingIntervalMs;
    this.silenceTimeoutMs = silenceTimeoutMs;
    this.joinTimeoutMs = joinTimeoutMs;

    this.state = 'idle';
    this.id = null;
    this.resumeToken = null;
    this.iceServers = [];
    this.maxPeers = null;
    this.reconnects = 0; // successful re-joins after a drop, for people and tests
    this.lastError = null;

    this._ws = null;
    this._attempt = 0;
    this._retryTimer = null;
    this._pingTimer = null;
    this._joinTimer = null;
    this._lastFrameAt = 0;
    this._everJoined = false;
    this._stopped = true;
  }

  /** Open the socket and join the room; reconnects by itself until leave(). */
  connect() {
    if (!this._stopped) return;
    this._stopped = false;
    this._open();
  }

  /** Leave the room for good: tell the server, close the socket, stop reconnecting. */
  leave() {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    this._stopTimers();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      if (ws.readyState === WebSocket.OPEN) {
        try { ws.send(JSON.stringify({ type: 'leave' })); } catch { /* closing anyway */ }
      }
      try { ws.close(1000, 'leave'); } catch { /* already closed */ }
    }
    this.id = null;
    this.resumeToken = null;
    this._everJoined = false;
    this._setState('closed');
  }

  /** True while joined: relayed messages can be sent. */
  get connected() {
    return this.state === 'connected';
  }

  /**
   * Send a relay message (offer / answer / ice-candidate). Returns false when the socket is not
   * joined: the message is dropped, and the caller re-sends what matters after `welcome`.
   */
  send(msg) {
    if (this.state !== 'connected' || !this._ws || this._ws.readyState !== WebSocket.OPEN) {
      return false;
    }
    this._ws.send(JSON.stringify(msg));
    return true;
  }

  _open() {
    this._setState(this._everJoined ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.lastError = String(err);
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      if (ws !== this._ws) return;
      this._lastFrameAt = Date.now();
      const join = this.key
        ? { type: 'join', v: 2, room: this.room, kind: this.kind, key: this.key }
        : { type: 'join', room: this.room, name: this.name, kind: this.kind };
      if (this.id && this.resumeToken) join.resume = { id: this.id, token: this.resumeToken };
      ws.send(JSON.stringify(join));
      this._joinTimer = setTimeout(() => {
        // No welcome in time: start over.
        if (ws === this._ws && this.state !== 'connected') ws.close(4000, 'join timeout');
      }, this.joinTimeoutMs);
      this._startPing(ws);
    };
    ws.onmessage = (ev) => {
      if (ws !== this._ws) return;
      this._lastFrameAt = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      this._onMessage(msg);
    };
    ws.onclose = () => {
      if (ws !== this._ws) return;
      this._ws = null;
      this._stopTimers();
      if (this._stopped) return;
      this._scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  _onMessage(msg) {
    switch (msg.type) {
      case 'welcome': {
        clearTimeout(this._joinTimer);
        const previousId = this.id;
        const resumed = this._everJoined;
        this.id = msg.id;
        this.resumeToken = msg.resumeToken;
        this.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : [];
        this.maxPeers = msg.maxPeers ?? null;
        this._attempt = 0;
        if (resumed) this.reconnects += 1;
        this._everJoined = true;
        this.lastError = null;
        this._setState('connected');
        this._emit('welcome', {
          id: msg.id,
          room: msg.room,
          peers: Array.isArray(msg.peers) ? msg.peers : [],
          iceServers: this.iceServers,
          maxPeers: this.maxPeers,
          resumed,
          sameId: resumed && previousId === msg.id,
        });
        break;
      }
      case 'peer-joined':
        if (msg.peer) this._emit('peer-joined', { peer: msg.peer });
        break;
      case 'peer-left':
        this._emit('peer-left', { id: msg.id });
        break;
      case 'offer':
      case 'answer':
      case 'ice-candidate':
      case 'view':
        this._emit('signal', msg);
        break;
      case 'sealed':
        this._emit('sealed', msg);
        break;
      case 'pong':
        break;
      case 'ice-servers':
        // Renewed TURN credentials: the next connection or ICE restart uses them.
        if (Array.isArray(msg.iceServers)) {
          this.iceServers = msg.iceServers;
          this._emit('ice-servers', { iceServers: msg.iceServers });
        }
        break;
      case 'error': {
        this.lastError = `${msg.code}: ${msg.message ?? ''}`;
        this._emit('server-error', { code: msg.code, message: msg.message });
        if (this.state !== 'connected' && FATAL_JOIN_ERRORS.has(msg.code)) {
          // The join itself was refused: retrying would be refused again.
          this._stopped = true;
          clearTimeout(this._joinTimer);
          this._stopTimers();
          const ws = this._ws;
          this._ws = null;
          if (ws) ws.close(1000, 'join refused');
          this._setState('failed');
        }
        break;
      }
      default:
        break; // newer server, unknown message: ignore
    }
  }

  _startPing(ws) {
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => {
      if (ws !== this._ws || ws.readyState !== WebSocket.OPEN) return;
      if (Date.now() - this._lastFrameAt > this.silenceTimeoutMs) {
        ws.close(4001, 'silent server'); // half-open socket: reconnect
        return;
      }
      ws.send(JSON.stringify({ type: 'ping' }));
    }, this.pingIntervalMs);
  }

  _stopTimers() {
    clearInterval(this._pingTimer);
    clearTimeout(this._joinTimer);
    this._pingTimer = null;
    this._joinTimer = null;
  }

  _scheduleReconnect() {
    this._setState(this._everJoined ? 'reconnecting' : 'connecting');
    // Exponential backoff with jitter: half fixed, half random, so a room full of clients
    // that lost the same server do not all come back in the same millisecond.
    const ceiling = Math.min(this.backoffMaxMs, this.backoffMinMs * 2 ** this._attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this._attempt += 1;
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => {
      if (!this._stopped) this._open();
    }, delay);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit('state', { state });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** The /ws address on the server that served this page. */
export function defaultSignalingUrl(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}
