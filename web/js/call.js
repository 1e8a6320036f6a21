// The call: a mesh of RTCPeerConnections, one per remote participant, keyed by peer id.
// No DOM here; ui.js listens to the events below.
//
// Negotiation (docs/protocol.md, "Who offers"):
// - the newcomer offers to every peer listed in `welcome`;
// - later renegotiation (screen share on/off, ICE restart) is perfect negotiation: the peer with
//   the smaller id is polite and rolls back its own offer on glare, the other ignores the
//   colliding offer;
// - every offer/answer/ice-candidate carries `pc`, the id of the connection it belongs to. An
//   offer with a new `pc` replaces our connection to that peer (the sender started over);
//   answers and candidates for a `pc` that is not current are dropped.
//
// Resilience:
// - when the signaling socket is down, connections are left alone, so media keeps flowing;
//   after the socket is back (same id), live connections are kept and lost offers re-sent;
// - when ICE fails, restart ICE; if that does not help, the impolite side starts over.
//
// Sealed signaling (protocol version 2, seal.js): names come with `peer-named` (a peer has no
// name until its sealed `hi`); a `peer-refused` peer keeps a tile saying why but never gets an
// RTCPeerConnection (one it had is closed), and nothing from it is taken.
//
// Events (CustomEvent, `detail.peer` unless noted):
//   peer-added, peer-removed, peer-updated (state, name, quality), peer-media (tracks changed),
//   local-media (our own mic, camera or screen changed; detail {}), notice ({text})
//
// Offers and answers say what each video m-line carries (`media`: mid -> "camera" or
// "screen", docs/protocol.md), so a receiver can show a screen before a camera.
//
// Frame encryption (docs/protocol.md, "Frame encryption"; e2ee.js): every transceiver's sender
// seals and its receiver opens with the ring of the peer the connection is with, set up as the
// transceiver appears (before any frame can flow), and transceivers negotiate only the codecs
// frame encryption covers: Opus, and H.264 for video (also between browsers, which would
// otherwise pick VP8).

import { allowedCodecs, withoutTransportCc } from './e2ee.js';

const STATS_INTERVAL_MS = 2000;
const TICK_MS = 1000;
const NETWORK_SETTLE_MS = 1000; // after an online/connection change event, before ICE restarts
const DISCONNECTED_GRACE_MS = 8000; // 'disconnected' this long counts as failed
const RESTART_ESCALATE_MS = 12000; // ICE restart did not help: impolite side starts over
const POLITE_ESCALATE_MS = 30000; // polite side starts over only if the other did not
const UNCONFIRMED_DROP_MS = 15000; // peer missing after our re-join and its connection dead
const LEFT_GRACE_MS = 8000; // peer-left while media still flows: wait this long for it to come back
const CONNECT_TIMEOUT_MS = 20000; // a new connection that never connects counts as failed
const REMOTE_CLOSED_IMPOLITE_MS = 2000; // the other side closed its connection: start over after
const REMOTE_CLOSED_POLITE_MS = 6000;

export function randomId(len = 10) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.getRandomValues(new Uint8Array(len));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

/** The DTLS transport's state where the browser exposes RTCDtlsTransport, else null. */
export function dtlsState(pc) {
  if (!pc) return null;
  const t = pc.getSenders().find((x) => x.transport)?.transport
    ?? pc.getReceivers().find((x) => x.transport)?.transport;
  return t?.state ?? null;
}

/** What connectionState says, with iceConnectionState as fallback for older browsers. */
export function pcState(pc) {
  if (!pc) return 'none';
  if (pc.connectionState) return pc.connectionState;
  const ice = pc.iceConnectionState;
  return ice === 'completed' ? 'connected' : ice === 'checking' ? 'connecting' : ice;
}

export class Call extends EventTarget {
  /**
   * @param {object} opts
   * @param {import('./seal.js').SealedSignaling} opts.signaling (or a version 1 `Signaling`)
   * @param {MediaStream|null} opts.micStream
   * @param {import('./e2ee.js').FrameEncryption|null} [opts.e2ee] frame encryption
   */
  constructor({ signaling, micStream = null, e2ee = null }) {
    super();
    this.signaling = signaling;
    this.e2ee = e2ee;
    /** Transceivers whose codecs were restricted. */
    this._prepared = new WeakSet();
    this.selfId = null;
    this.iceServers = [];
    /** @type {Map<string, Peer>} */
    this.peers = new Map();
    this.micStream = micStream;
    this.muted = false;
    this.screenStream = null;
    this.cameraStream = null;
    this.closed = false;
    /** What negotiation had to do, for people and tests. */
    this.counters = { offersSent: 0, glare: 0, ignoredOffers: 0, startOvers: 0, iceRestarts: 0 };

    this._onWelcome = (e) => this._welcome(e.detail);
    this._onJoined = (e) => this._peerJoined(e.detail.peer);
    this._onLeft = (e) => this._peerLeft(e.detail.id);
    this._onSignal = (e) => this._signal(e.detail);
    this._onIceServers = (e) => this._iceServers(e.detail.iceServers);
    this._onNamed = (e) => this._peerNamed(e.detail);
    this._onRefused = (e) => this._peerRefused(e.detail);
    signaling.addEventListener('peer-named', this._onNamed);
    signaling.addEventListener('peer-refused', this._onRefused);
    signaling.addEventListener('welcome', this._onWelcome);
    signaling.addEventListener('ice-servers', this._onIceServers);
    signaling.addEventListener('peer-joined', this._onJoined);
    signaling.addEventListener('peer-left', this._onLeft);
    signaling.addEventListener('signal', this._onSignal);

    // The browser's own network changed (Wi-Fi to cable, a new address, back online): every
    // call restarts ICE at once rather than waiting for the old path to fail.
    this._onNetwork = () => this.networkChanged();
    globalThis.addEventListener?.('online', this._onNetwork);
    globalThis.navigator?.connection?.addEventListener?.('change', this._onNetwork);
    this._tick = setInterval(() => this._housekeeping(), TICK_MS);
    this._statsTimer = setInterval(() => this._pollStats(), STATS_INTERVAL_MS);
  }

  get micTrack() {
    return this.micStream?.getAudioTracks()[0] ?? null;
  }

  /** A read-only summary, for tests and debugging. */
  peerList() {
    return [...this.peers.values()].map((p) => ({
      id: p.id,
      name: p.name,
      kind: p.kind,
      polite: p.polite,
      refused: p.refused,
      pc: p.pcId,
      state: pcState(p.pc),
      dtls: dtlsState(p.pc),
      away: !!p.leftAt,
      signalingState: p.pc?.signalingState ?? null,
      quality: { ...p.quality },
      hasVideo: !!p.videoTrack,
    }));
  }

  // ---- local media ----------------------------------------------------------------------

  setMuted(muted) {
    this.muted = muted;
    const t = this.micTrack;
    if (t) t.enabled = !muted;
    this._emit('local-media', {});
  }

  /** Switch microphones: the new track replaces the old one on every connection. */
  async setMicStream(stream) {
    const old = this.micStream;
    this.micStream = stream;
    const track = this.micTrack;
    if (track) track.enabled = !this.muted;
    await Promise.all([...this.peers.values()].map(async (p) => {
      if (p.micSender) {
        try { await p.micSender.replaceTrack(track); } catch (err) { console.warn('replaceTrack', err); }
      }
    }));
    if (old && old !== stream) old.getTracks().forEach((t) => t.stop());
    this._emit('local-media', {});
  }

  /** Send a screen (video, and audio when the stream has it) to everyone. */
  startScreen(stream) {
    this._startVideo('screen', stream);
  }

  stopScreen() {
    this._stopVideo('screen');
  }

  /** Send a camera to everyone. */
  startCamera(stream) {
    this._startVideo('camera', stream);
  }

  stopCamera() {
    this._stopVideo('camera');
  }

  _startVideo(kind, stream) {
    if (this[`${kind}Stream`]) this._stopVideo(kind);
    this[`${kind}Stream`] = stream;
    for (const t of stream.getVideoTracks()) {
      t.addEventListener('ended', () => {
        // Stopped from the browser's own UI ("Stop sharing" bar) or the device went away.
        if (this[`${kind}Stream`] === stream) this._stopVideo(kind);
      });
    }
    for (const p of this.peers.values()) if (p.pc) this._attachVideo(p, kind);
    this._emit('local-media', {});
  }

  _stopVideo(kind) {
    const stream = this[`${kind}Stream`];
    if (!stream) return;
    this[`${kind}Stream`] = null;
    for (const p of this.peers.values()) this._detachVideo(p, kind);
    stream.getTracks().forEach((t) => t.stop());
    this._emit('local-media', {});
  }

  /** Leave: close every connection and stop local media. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this._tick);
    clearInterval(this._statsTimer);
    clearTimeout(this._networkTimer);
    globalThis.removeEventListener?.('online', this._onNetwork);
    globalThis.navigator?.connection?.removeEventListener?.('change', this._onNetwork);
    const s = this.signaling;
    s.removeEventListener('welcome', this._onWelcome);
    s.removeEventListener('ice-servers', this._onIceServers);
    s.removeEventListener('peer-joined', this._onJoined);
    s.removeEventListener('peer-left', this._onLeft);
    s.removeEventListener('signal', this._onSignal);
    s.removeEventListener('peer-named', this._onNamed);
    s.removeEventListener('peer-refused', this._onRefused);
    for (const id of [...this.peers.keys()]) this._removePeer(id);
    if (this.screenStream) this.stopScreen();
    if (this.cameraStream) this.stopCamera();
    this.micStream?.getTracks().forEach((t) => t.stop());
  }

  // ---- signaling events -----------------------------------------------------------------

  /** Renewed TURN credentials: new connections and every ICE restart from now use them. */
  _iceServers(iceServers) {
    this.iceServers = iceServers;
    for (const p of this.peers.values()) {
      try {
        p.pc?.setConfiguration({ ...p.pc.getConfiguration(), iceServers });
      } catch (err) {
        console.warn('cannot update ICE servers', err);
      }
    }
  }

  _welcome({ id, peers, iceServers, resumed, sameId }) {
    this.iceServers = iceServers ?? [];
    if (!resumed || !sameId) {
      // A fresh identity: whatever we had is meaningless to the others.
      for (const pid of [...this.peers.keys()]) this._removePeer(pid);
    }
    this.selfId = id;
    for (const p of this.peers.values()) p.polite = this.selfId < p.id;

    const listed = new Set();
    for (const info of peers) {
      if (!info || info.id === this.selfId) continue;
      listed.add(info.id);
      let peer = this.peers.get(info.id);
      if (peer) {
        peer.update(info);
        peer.unconfirmedSince = 0;
        peer.leftAt = 0;
        if (info.refused) this._refuse(peer, info.refused);
        this._emit('peer-updated', { peer });
        if (peer.refused) continue;
        if (this._usable(peer)) {
          this._resync(peer);
          continue;
        }
      } else {
        peer = this._addPeer(info);
        if (peer.refused) continue;
      }
      // We are the newcomer towards this peer: we offer.
      this._startOver(peer);
    }
    // Peers we knew but the server did not list: they may still re-join (server restart);
    // keep their connections while media flows, drop them if it does not.
    for (const peer of this.peers.values()) {
      if (!listed.has(peer.id)) peer.unconfirmedSince = peer.unconfirmedSince || Date.now();
    }
  }

  _peerJoined(info) {
    if (!info || info.id === this.selfId) return;
    let peer = this.peers.get(info.id);
    if (peer && info.refused) {
      this._refuse(peer, info.refused);
      return;
    }
    if (peer && !peer.refused) {
      // A peer we still have a connection to came back (our server restarted, or its socket
      // dropped): keep the connection if it lives, else start over (should it start over too,
      // the two new connections meet the glare rule in _handleSignal).
      peer.update(info);
      peer.unconfirmedSince = 0;
      peer.leftAt = 0;
      if (this._usable(peer)) this._resync(peer);
      else this._startOver(peer);
      this._emit('peer-updated', { peer });
      return;
    }
    if (peer) {
      // Refused, and announced again without leaving first: it stays refused.
      peer.update(info);
      this._emit('peer-updated', { peer });
      return;
    }
    peer = this._addPeer(info);
    // The newcomer offers; we wait.
  }

  /** The peer's sealed `hi`: who it says it is. */
  _peerNamed({ id, name, kind }) {
    const peer = this.peers.get(id);
    if (!peer) return;
    peer.name = name;
    if (kind) peer.kind = kind;
    this._emit('peer-updated', { peer });
  }

  /** Sealed signaling refused this peer (docs/protocol.md, "Refused peers"). */
  _peerRefused({ id, reason }) {
    const peer = this.peers.get(id);
    if (peer) this._refuse(peer, reason);
  }

  _refuse(peer, reason) {
    if (peer.refused) return;
    peer.refused = reason || 'refused';
    peer.leftAt = 0;
    peer.unconfirmedSince = 0;
    this._closePc(peer); // emits peer-media and peer-updated
    this.e2ee?.forgetPeer(peer.id);
    this._emit('notice', { text: `${peer.name ?? 'A participant'} was refused: ${peer.refused}.` });
  }

  _peerLeft(id) {
    const peer = this.peers.get(id);
    if (!peer) return;
    // Its socket closed, but media may still flow (a network blip on its side): keep the
    // connection a few seconds in case it comes back with the same id. A peer that left on
    // purpose has closed its connection, and then it goes at once.
    if (peer.everConnected && pcState(peer.pc) === 'connected' && this._usable(peer)) {
      peer.leftAt = Date.now();
      this._emit('peer-updated', { peer });
      return;
    }
    this._removePeer(id);
  }

  _signal(msg) {
    const peer = this.peers.get(msg.from);
    if (!peer || peer.refused) return; // a stale message from someone who left, or refused
    peer.queue = peer.queue
      .then(() => this._handleSignal(peer, msg))
      .catch((err) => console.warn(`signal ${msg.type} from ${peer.id}:`, err));
  }

  async _handleSignal(peer, msg) {
    if (!this.peers.has(peer.id) || this.closed || peer.refused) return;
    if (msg.type === 'offer') {
      if (typeof msg.sdp !== 'string') return;
      if (msg.pc !== peer.pcId || !peer.pc) {
        const pc = peer.pc;
        const ourStartOverPending = pc && peer.ownPc && !peer.everConnected
          && pc.signalingState === 'have-local-offer';
        if (!peer.polite && ourStartOverPending) return; // our own new connection wins the glare
        this._createPc(peer, msg.pc, { own: false });
      }
      const pc = peer.pc;
      const collision = peer.makingOffer || pc.signalingState !== 'stable';
      peer.ignoreOffer = !peer.polite && collision;
      if (collision) this.counters.glare += 1;
      if (peer.ignoreOffer) {
        this.counters.ignoredOffers += 1;
        return;
      }
      peer.labelRemoteMedia(msg.media);
      await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp }); // rolls back ours if needed
      if (!peer.tracksAttached) this._attachLocalTracks(peer);
      this._prepareTransceivers(peer, pc);
      await pc.setLocalDescription();
      this._send(peer, { type: 'answer', sdp: pc.localDescription.sdp });
    } else if (msg.type === 'answer') {
      if (msg.pc !== peer.pcId || !peer.pc || typeof msg.sdp !== 'string') return;
      if (peer.pc.signalingState !== 'have-local-offer') return; // a duplicate or stale answer
      peer.labelRemoteMedia(msg.media);
      await peer.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
      this._prepareTransceivers(peer, peer.pc);
    } else if (msg.type === 'view') {
      if (msg.pc !== peer.pcId || !peer.pc || !msg.videos || typeof msg.videos !== 'object') return;
      await this._applyView(peer, msg.videos);
    } else if (msg.type === 'ice-candidate') {
      if (msg.pc !== peer.pcId || !peer.pc || !msg.candidate) return;
      try {
        await peer.pc.addIceCandidate(msg.candidate);
      } catch (err) {
        if (!peer.ignoreOffer) console.warn('addIceCandidate', err);
      }
    }
  }

  // ---- peers and connections ------------------------------------------------------------

  _addPeer(info) {
    const peer = new Peer(info, this.selfId);
    if (info.refused) peer.refused = info.refused;
    this.peers.set(peer.id, peer);
    this._emit('peer-added', { peer });
    return peer;
  }

  _removePeer(id) {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    this._closePc(peer);
    this.e2ee?.forgetPeer(id);
    this._emit('peer-removed', { peer });
  }

  _closePc(peer) {
    const pc = peer.pc;
    peer.pc = null;
    peer.pcId = null;
    peer.micSender = null;
    peer.videoSenders = { screen: [], camera: [] };
    peer.remoteMedia = {};
    peer.tracksAttached = false;
    peer.everConnected = false;
    peer.badSince = 0;
    peer.restartedAt = 0;
    peer.remoteClosedSince = 0;
    if (pc) {
      pc.onnegotiationneeded = pc.onicecandidate = pc.ontrack = null;
      pc.onconnectionstatechange = pc.oniceconnectionstatechange = null;
      try { pc.close(); } catch { /* already closed */ }
    }
    peer.setRemoteTracks([]);
    this._emit('peer-media', { peer });
    this._emit('peer-updated', { peer });
  }

  /** The connection can still carry media: not failed, not closed by either side. */
  _usable(peer) {
    const s = pcState(peer.pc);
    const d = dtlsState(peer.pc);
    return !!peer.pc && s !== 'failed' && s !== 'closed' && d !== 'closed' && d !== 'failed';
  }

  /** Throw away our connection to this peer and offer a new one. */
  _startOver(peer) {
    if (peer.refused) return;
    this.counters.startOvers += 1;
    this._createPc(peer, randomId(), { own: true });
    this._attachLocalTracks(peer); // fires negotiationneeded: we offer
  }

  /** After the signaling socket is back: re-send what may have been lost while it was down. */
  _resync(peer) {
    const pc = peer.pc;
    if (!pc) return;
    if (pc.signalingState === 'have-local-offer' && pc.localDescription) {
      this._send(peer, { type: 'offer', sdp: pc.localDescription.sdp });
    }
    const s = pcState(pc);
    if (s === 'failed' || (s === 'disconnected' && peer.badSince
        && Date.now() - peer.badSince > DISCONNECTED_GRACE_MS)) {
      this._restartIce(peer);
    }
  }

  _createPc(peer, pcId, { own }) {
    if (peer.refused) throw new Error(`no connection to a refused peer (${peer.refused})`);
    this._closePc(peer);
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, ...(this.e2ee?.pcConfig() ?? {}) });
    peer.pc = pc;
    peer.pcId = pcId;
    peer.ownPc = own;
    peer.makingOffer = false;
    peer.ignoreOffer = false;
    peer.createdAt = Date.now();

    pc.onnegotiationneeded = async () => {
      if (peer.pc !== pc) return;
      try {
        peer.makingOffer = true;
        this._prepareTransceivers(peer, pc);
        await pc.setLocalDescription();
        if (peer.pc === pc && pc.signalingState === 'have-local-offer') {
          this.counters.offersSent += 1;
          this._send(peer, { type: 'offer', sdp: pc.localDescription.sdp });
        }
      } catch (err) {
        console.warn('negotiation', err);
      } finally {
        peer.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (peer.pc !== pc || !candidate) return;
      this._send(peer, { type: 'ice-candidate', candidate: candidate.toJSON() });
    };
    pc.ontrack = ({ track }) => {
      if (peer.pc !== pc) return;
      this._prepareTransceivers(peer, pc);
      const refresh = () => {
        if (peer.pc !== pc) return;
        peer.setRemoteTracks(pc.getTransceivers()
          .filter((x) => x.receiver.track?.readyState === 'live')
          .map((x) => ({ track: x.receiver.track, mid: x.mid })));
        this._emit('peer-media', { peer });
      };
      track.addEventListener('mute', refresh);
      track.addEventListener('unmute', refresh);
      track.addEventListener('ended', refresh);
      refresh();
    };
    const onState = () => {
      if (peer.pc !== pc) return;
      const s = pcState(pc);
      if (s === 'connected') {
        peer.everConnected = true;
        peer.badSince = 0;
        peer.restartedAt = 0;
      } else if (s === 'failed' || s === 'disconnected') {
        peer.badSince = peer.badSince || Date.now();
        if (s === 'failed' && !peer.restartedAt) this._restartIce(peer);
      }
      this._emit('peer-updated', { peer });
    };
    pc.onconnectionstatechange = onState;
    pc.oniceconnectionstatechange = onState;
    this._emit('peer-updated', { peer });
    return pc;
  }

  _attachLocalTracks(peer) {
    const pc = peer.pc;
    peer.tracksAttached = true;
    const mic = this.micTrack;
    if (mic) {
      peer.micSender = pc.addTrack(mic, this.micStream);
    } else {
      // Listen-only (no microphone): still ask for the others' audio.
      const existing = pc.getTransceivers().find((t) => t.receiver.track?.kind === 'audio');
      if (!existing) pc.addTransceiver('audio', { direction: 'recvonly' });
    }
    this._prepareTransceivers(peer, pc);
    if (this.cameraStream) this._attachVideo(peer, 'camera');
    if (this.screenStream) this._attachVideo(peer, 'screen');
  }

  /**
   * Every transceiver of this connection: only the codecs frame encryption covers, and its
   * sender and receiver through the frame transforms (e2ee.js). Called as transceivers appear:
   * after addTrack, in ontrack and after a remote offer, before any description is set.
   */
  _prepareTransceivers(peer, pc) {
    if (peer.pc !== pc || pc.signalingState === 'closed') return;
    for (const t of pc.getTransceivers()) {
      const kind = t.receiver.track?.kind;
      if (!kind || t.currentDirection === 'stopped') continue;
      if (!this._prepared.has(t)) {
        this._prepared.add(t);
        if (kind === 'audio') withoutTransportCc(t);
        const codecs = allowedCodecs(kind);
        if (codecs && typeof t.setCodecPreferences === 'function') {
          try { t.setCodecPreferences(codecs); } catch (err) { console.warn('setCodecPreferences', err); }
        }
      }
      // As early as possible: in Chromium a receiver's transform set only once the answer
      // had come never saw a frame (the audio played as it came, unopened); set when the
      // transceiver is made (ours), or in ontrack of a remote offer (theirs), it sees them all.
      this.e2ee?.attachSender(t.sender, kind);
      this.e2ee?.attachReceiver(t.receiver, peer.id);
    }
  }

  /** Sends our camera or screen stream (`kind`) on this peer's connection. */
  _attachVideo(peer, kind) {
    const pc = peer.pc;
    const stream = this[`${kind}Stream`];
    if (!pc || !stream || !peer.tracksAttached) return;
    for (const track of stream.getTracks()) {
      if (track.readyState !== 'live') continue;
      peer.videoSenders[kind].push(pc.addTrack(track, stream));
    }
    this._prepareTransceivers(peer, pc);
  }

  _detachVideo(peer, kind) {
    const pc = peer.pc;
    const senders = peer.videoSenders[kind];
    peer.videoSenders[kind] = [];
    if (!pc || pc.signalingState === 'closed') return;
    for (const s of senders) {
      try { pc.removeTrack(s); } catch (err) { console.warn('removeTrack', err); }
    }
  }

  /**
   * The network changed under us: after a short settle (interfaces come up in steps), every
   * call that has connected restarts ICE, so it gathers on the new network.
   */
  networkChanged() {
    clearTimeout(this._networkTimer);
    this._networkTimer = setTimeout(() => {
      if (this.closed) return;
      this.counters.networkChanges = (this.counters.networkChanges ?? 0) + 1;
      for (const peer of this.peers.values()) {
        if (peer.pc && peer.everConnected && peer.pc.signalingState !== 'closed') this._restartIce(peer);
      }
    }, NETWORK_SETTLE_MS);
  }

  _restartIce(peer) {
    const pc = peer.pc;
    if (!pc) return;
    peer.restartedAt = Date.now();
    this.counters.iceRestarts += 1;
    if (!this.signaling.connected) return; // retried after the socket is back (_resync)
    if (typeof pc.restartIce === 'function') {
      pc.restartIce(); // negotiationneeded follows
    } else if (!peer.makingOffer && pc.signalingState === 'stable') {
      pc.createOffer({ iceRestart: true })
        .then((o) => pc.setLocalDescription(o))
        .then(() => this._send(peer, { type: 'offer', sdp: pc.localDescription.sdp }))
        .catch((err) => console.warn('ice restart', err));
    }
  }

  _send(peer, msg) {
    const labels = msg.type === 'offer' || msg.type === 'answer' ? { media: this._mediaLabels(peer) } : {};
    return this.signaling.send({ ...msg, ...labels, to: peer.id, pc: peer.pcId });
  }

  /**
   * The peer shows our videos this big at most (`view`: mid -> {width, height, fps}, a room
   * box's display): scale each down to fit and cap its frame rate, on this connection only.
   */
  async _applyView(peer, videos) {
    for (const t of peer.pc.getTransceivers()) {
      const wish = videos[t.mid];
      const track = t.sender.track;
      if (!wish || track?.kind !== 'video') continue;
      const { width, height } = track.getSettings();
      if (!(wish.width > 0 && wish.height > 0 && wish.fps > 0)) continue;
      const scale = width && height ? Math.max(1, width / wish.width, height / wish.height) : 1;
      const params = t.sender.getParameters();
      if (!params.encodings?.length) continue;
      params.encodings[0].scaleResolutionDownBy = scale;
      params.encodings[0].maxFramerate = wish.fps;
      try {
        await t.sender.setParameters(params);
      } catch (err) {
        console.warn('view', err);
      }
    }
  }

  /** What our video m-lines on this peer's connection carry: mid -> "camera" or "screen". */
  _mediaLabels(peer) {
    const labels = {};
    for (const t of peer.pc?.getTransceivers() ?? []) {
      const track = t.sender.track;
      if (!t.mid || track?.kind !== 'video') continue;
      for (const kind of ['camera', 'screen']) {
        if (peer.videoSenders[kind].includes(t.sender)) labels[t.mid] = kind;
      }
    }
    return labels;
  }

  // ---- periodic work --------------------------------------------------------------------

  _housekeeping() {
    if (this.closed) return;
    const now = Date.now();
    for (const peer of [...this.peers.values()]) {
      if (peer.refused) continue; // no connection, nothing to keep alive
      const usable = this._usable(peer);
      // Announced gone: remove once the grace is over or its media stops.
      if (peer.leftAt) {
        if (!usable || pcState(peer.pc) !== 'connected' || now - peer.leftAt > LEFT_GRACE_MS) {
          this._removePeer(peer.id);
        }
        continue;
      }
      // Not listed after our re-join (server restart) and its connection is dead: gone.
      if (peer.unconfirmedSince) {
        if (!usable && now - peer.unconfirmedSince > UNCONFIRMED_DROP_MS) this._removePeer(peer.id);
        continue;
      }
      const pc = peer.pc;
      if (!this.signaling.connected) continue;
      if (!pc) {
        // The newcomer's offer never came: offer ourselves.
        if (now - peer.createdAt > CONNECT_TIMEOUT_MS) this._startOver(peer);
        continue;
      }
      const s = pcState(pc);
      const d = dtlsState(pc);

      // The other side closed its connection (it dropped us, or is leaving): start over, the
      // impolite side first so two new connections rarely cross.
      if (d === 'closed' || d === 'failed' || s === 'closed') {
        peer.remoteClosedSince = peer.remoteClosedSince || now;
        const wait = peer.polite ? REMOTE_CLOSED_POLITE_MS : REMOTE_CLOSED_IMPOLITE_MS;
        if (now - peer.remoteClosedSince > wait) this._startOver(peer);
        continue;
      }

      const stuck = !peer.everConnected && (s === 'new' || s === 'connecting')
        && now - peer.createdAt > CONNECT_TIMEOUT_MS;
      const bad = s === 'failed' || stuck
        || (s === 'disconnected' && peer.badSince && now - peer.badSince > DISCONNECTED_GRACE_MS);
      if (!bad) continue;
      if (!peer.restartedAt) {
        this._restartIce(peer);
      } else {
        const since = now - peer.restartedAt;
        if ((!peer.polite && since > RESTART_ESCALATE_MS) || since > POLITE_ESCALATE_MS) {
          this._startOver(peer);
        }
      }
    }
  }

  async _pollStats() {
    if (this.closed) return;
    await Promise.all([...this.peers.values()].map(async (peer) => {
      const pc = peer.pc;
      if (!pc || pc.signalingState === 'closed') return;
      try {
        const report = await pc.getStats();
        if (peer.pc !== pc) return;
        peer.quality = summarizeStats(report, peer._lastCounters);
        peer._lastCounters = peer.quality.counters;
        this._emit('peer-updated', { peer });
      } catch { /* closed meanwhile */ }
    }));
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

export class Peer {
  constructor(info, selfId) {
    this.id = info.id;
    /** Undefined until the peer's sealed `hi` names it (version 2). */
    this.name = info.name;
    this.kind = info.kind;
    /** Why sealed signaling refused this peer (human text), or null. */
    this.refused = null;
    this.polite = selfId !== null && selfId < info.id;
    this.pc = null;
    this.pcId = null;
    this.ownPc = false;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.tracksAttached = false;
    this.everConnected = false;
    this.micSender = null;
    /** Our senders of each video on this connection. */
    this.videoSenders = { screen: [], camera: [] };
    /** What the peer says its m-lines carry (mid -> "camera" | "screen"). */
    this.remoteMedia = {};
    this.queue = Promise.resolve();
    this.badSince = 0;
    this.restartedAt = 0;
    this.unconfirmedSince = 0;
    this.leftAt = 0;
    this.remoteClosedSince = 0;
    this.createdAt = Date.now();
    this.audioTracks = [];
    this.videoTrack = null;
    this.quality = { level: 'unknown', rttMs: null, lossPct: null };
    this._lastCounters = null;
  }

  update(info) {
    if (typeof info.name === 'string') this.name = info.name;
    if (info.kind) this.kind = info.kind;
  }

  /** The peer's labels from an offer or answer; anything but an object of strings is ignored. */
  labelRemoteMedia(media) {
    if (!media || typeof media !== 'object') return;
    for (const [mid, label] of Object.entries(media)) {
      if (label === 'camera' || label === 'screen') this.remoteMedia[mid] = label;
    }
  }

  /** `tracks`: [{track, mid}] of the live receivers. The tile shows a screen before a camera. */
  setRemoteTracks(tracks) {
    this.audioTracks = tracks.filter(({ track }) => track.kind === 'audio').map(({ track }) => track);
    const videos = tracks.filter(({ track }) => track.kind === 'video' && !track.muted);
    const screen = videos.find(({ mid }) => this.remoteMedia[mid] !== 'camera');
    this.videoTrack = (screen ?? videos[0])?.track ?? null;
  }
}

/**
 * Round-trip time and packet loss from a getStats report. Works with what both Chromium and
 * Firefox report: the selected candidate pair's RTT, else remote-inbound-rtp's; loss from
 * inbound-rtp counters since the previous report.
 */
export function summarizeStats(report, last) {
  let rtt = null;
  let selectedPairId = null;
  const pairs = [];
  let packetsReceived = 0;
  let packetsLost = 0;
  let framesDecoded = 0;
  let remoteRtt = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) selectedPairId = s.selectedCandidatePairId;
    else if (s.type === 'candidate-pair') pairs.push(s);
    else if (s.type === 'inbound-rtp') {
      packetsReceived += s.packetsReceived ?? 0;
      packetsLost += Math.max(0, s.packetsLost ?? 0);
      if (s.kind === 'video') framesDecoded += s.framesDecoded ?? 0;
    } else if (s.type === 'remote-inbound-rtp' && typeof s.roundTripTime === 'number') {
      remoteRtt = remoteRtt === null ? s.roundTripTime : Math.min(remoteRtt, s.roundTripTime);
    }
  });
  const pair = pairs.find((p) => p.id === selectedPairId)
    ?? pairs.find((p) => p.selected)
    ?? pairs.find((p) => p.nominated && p.state === 'succeeded');
  if (pair && typeof pair.currentRoundTripTime === 'number') rtt = pair.currentRoundTripTime;
  else if (remoteRtt !== null) rtt = remoteRtt;

  let lossPct = null;
  if (last) {
    const got = packetsReceived - last.packetsReceived;
    const lost = packetsLost - last.packetsLost;
    if (got + lost > 0) lossPct = (100 * Math.max(0, lost)) / (got + lost);
    else if (got === 0 && lost === 0) lossPct = last.lossPct ?? null;
  }
  const rttMs = rtt === null ? null : Math.round(rtt * 1000);
  // The path: through a TURN relay if either end of the selected pair is a relay candidate.
  let path = null;
  if (pair) {
    const ends = [report.get?.(pair.localCandidateId), report.get?.(pair.remoteCandidateId)];
    if (ends.every(Boolean)) path = ends.some((c) => c.candidateType === 'relay') ? 'relayed' : 'direct';
  }
  let level = 'unknown';
  if (rttMs !== null || lossPct !== null) {
    const r = rttMs ?? 0;
    const l = lossPct ?? 0;
    level = r < 300 && l < 2 ? 'good' : r < 600 && l < 8 ? 'fair' : 'poor';
  }
  return {
    level,
    rttMs,
    lossPct,
    path,
    counters: { packetsReceived, packetsLost, framesDecoded, lossPct },
  };
}
