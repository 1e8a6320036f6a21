// An in-memory signaling server for tests of web/js/seal.js: transports with the API of
// web/js/signaling.js's `Signaling` (connect, leave, send, id, state, events), meeting in one
// room of a hub that relays like roombox-signal does, with a tap in the middle that can alter,
// drop, replay, reorder or inject messages, as a dishonest server could.

let hubCount = 0;

export class FakeHub {
  constructor() {
    this.hub = ++hubCount;
    this.nextId = 1;
    /** id -> FakeTransport, the members in the room. */
    this.members = new Map();
    /**
     * The server in the middle: (msg, {from, to}) -> a message, null (dropped), or a list of
     * messages delivered in that order. `msg` is what the receiver would get (with `from`).
     */
    this.tap = null;
    /** Rewrites a peer's info in the `welcome` or `peer-joined` sent to `to`: (peer, to) -> peer. */
    this.announceTap = null;
    /** Every message the hub relayed, as delivered: [{to, msg}]. */
    this.log = [];
  }

  transport(opts) {
    return new FakeTransport(this, opts);
  }

  _join(t) {
    if (!t.id) t.id = `p${this.hub}-${this.nextId++}`;
    const others = [...this.members.values()].filter((o) => o !== t);
    const resumed = t.everJoined;
    const known = this.members.get(t.id) === t;
    this.members.set(t.id, t);
    t.everJoined = true;
    t._deliver({
      type: 'welcome',
      id: t.id,
      resumeToken: 'token',
      room: t.room,
      peers: others.map((o) => this._announce(o.info(), t.id)),
      iceServers: [],
      maxPeers: 6,
      resumed,
      sameId: resumed,
    });
    if (!known) {
      for (const o of others) o._deliver({ type: 'peer-joined', peer: this._announce(t.info(), o.id) });
    }
  }

  _announce(info, to) {
    return this.announceTap ? this.announceTap(structuredClone(info), to) : info;
  }

  _leave(t) {
    if (this.members.get(t.id) !== t) return;
    this.members.delete(t.id);
    for (const o of this.members.values()) o._deliver({ type: 'peer-left', id: t.id });
  }

  _relay(from, msg) {
    const dest = this.members.get(msg.to);
    if (!dest) return;
    let out = { ...structuredClone(msg), from: from.id };
    if (this.tap) out = this.tap(out, { from: from.id, to: dest.id });
    if (!out) return;
    for (const m of Array.isArray(out) ? out : [out]) dest._deliver(m);
  }

  /** Send `msg` to member `to` as if the server did (with whatever `from` it carries). */
  inject(to, msg) {
    this.members.get(to)?._deliver(msg);
  }
}

export class FakeTransport extends EventTarget {
  constructor(hub, { room, kind = 'browser', key, name }) {
    super();
    this.hub = hub;
    this.room = room;
    this.kind = kind;
    this.key = key;
    this.name = name;
    this.id = null;
    this.state = 'idle';
    this.maxPeers = null;
    this.iceServers = [];
    this.reconnects = 0;
    this.lastError = null;
    this.everJoined = false;
    this.up = false;
    this.sentRaw = [];
    this._ws = null;
  }

  get connected() {
    return this.state === 'connected';
  }

  info() {
    const info = { id: this.id, kind: this.kind };
    if (this.key) {
      info.v = 2;
      info.key = this.key;
    } else {
      info.name = this.name;
    }
    return info;
  }

  connect() {
    this.up = true;
    this._setState(this.everJoined ? 'reconnecting' : 'connecting');
    setImmediate(() => {
      if (this.up) this.hub._join(this);
    });
  }

  /** The socket drops and comes back: the server lets us resume with our id. */
  drop() {
    this.up = false;
    this._setState('reconnecting');
    setImmediate(() => {
      this.up = true;
      this.reconnects += 1;
      this.hub._join(this);
    });
  }

  leave() {
    this.up = false;
    this.hub._leave(this);
    this.id = null;
    this._setState('closed');
  }

  send(msg) {
    if (!this.up || this.state !== 'connected') return false;
    this.sentRaw.push(msg);
    const copy = structuredClone(msg);
    setImmediate(() => this.hub._relay(this, copy));
    return true;
  }

  _deliver(msg) {
    setImmediate(() => {
      if (!this.up) return;
      this.hub.log.push({ to: this.id, msg });
      switch (msg.type) {
        case 'welcome':
          this.id = msg.id;
          this.maxPeers = msg.maxPeers;
          this._setState('connected');
          this._emit('welcome', msg);
          break;
        case 'peer-joined':
          this._emit('peer-joined', { peer: msg.peer });
          break;
        case 'peer-left':
          this._emit('peer-left', { id: msg.id });
          break;
        case 'sealed':
          this._emit('sealed', msg);
          break;
        default:
          this._emit('signal', msg);
      }
    });
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
