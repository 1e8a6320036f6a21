// DOM: the join form, the participant tiles, the controls. Knows nothing about the protocol.

import { pcState } from './call.js';

const $ = (id) => document.getElementById(id);

const SIGNAL_TEXT = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Not connected',
  failed: 'Could not join',
};

const PC_TEXT = {
  none: 'Waiting',
  new: 'Connecting…',
  connecting: 'Connecting…',
  connected: 'Connected',
  disconnected: 'Reconnecting…',
  failed: 'Connection failed',
  closed: 'Closed',
  away: 'Away…',
  securing: 'Connecting securely',
};

/** A peer's name until its sealed `hi` names it. */
const UNNAMED = '…';

const QUALITY_TEXT = { good: 'Good', fair: 'Fair', poor: 'Poor', unknown: '' };
// The path a call takes, for the quality tooltip.
const PATH_TEXT = { direct: 'direct connection', relayed: 'relayed through a TURN server' };

/** Loudness of one audio track through WebAudio, for the speaking indicator. */
export class LevelMeter {
  constructor(ctx, track) {
    this.ctx = ctx;
    this.track = track;
    this.source = ctx.createMediaStreamSource(new MediaStream([track]));
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 512;
    this.source.connect(this.analyser);
    this.buf = new Float32Array(this.analyser.fftSize);
  }

  /** RMS level, 0..1. */
  level() {
    if (this.track.readyState !== 'live' || this.track.enabled === false) return 0;
    this.analyser.getFloatTimeDomainData(this.buf);
    let sum = 0;
    for (const v of this.buf) sum += v * v;
    return Math.sqrt(sum / this.buf.length);
  }

  close() {
    try { this.source.disconnect(); } catch { /* gone */ }
  }
}

const SPEAKING_RMS = 0.015;
const SPEAKING_HOLD_MS = 400;

export class UI {
  constructor() {
    this.roomName = $('room-name');
    this.status = $('signal-status');
    this.joinView = $('join-view');
    this.joinForm = $('join-form');
    this.nameInput = $('name-input');
    this.joinButton = $('join-button');
    this.joinHint = $('join-hint');
    this.callView = $('call-view');
    this.leftView = $('left-view');
    this.leftText = $('left-text');
    this.tiles = $('tiles');
    this.notices = $('notices');
    this.muteButton = $('mute-button');
    this.cameraButton = $('camera-button');
    this.shareButton = $('share-button');
    this.shareAudio = $('share-audio');
    this.leaveButton = $('leave-button');
    this.micSelect = $('mic-select');
    this.speakerSelect = $('speaker-select');
    this.speakerHint = $('speaker-hint');
    this.audioSink = $('audio-sink');
    this.safetyCodeText = $('safety-code');
    this.compareButton = $('compare-button');
    this.compareStatus = $('compare-status');
    /** The safety code the user said they compared, and the one shown now. */
    this.comparedCode = null;
    this.safetyCode = null;
    this.compareButton?.addEventListener('click', () => {
      if (!this.safetyCode) return;
      this.comparedCode = this.safetyCode;
      this._renderSafety();
    });

    this.audioCtx = null;
    this.sinkId = '';
    /** @type {Map<string, {li: HTMLElement, els: object, meters: Map<MediaStreamTrack, LevelMeter>, audios: Map<MediaStreamTrack, HTMLAudioElement>, speakingUntil: number}>} */
    this.tileState = new Map();
    this._meterTimer = null;
  }

  setRoom(room) {
    this.roomName.textContent = room;
    document.title = `${room} · roombox`;
  }

  setSignalState(state) {
    this.status.dataset.state = state;
    this.status.textContent = SIGNAL_TEXT[state] ?? state;
    const self = this.tileState.get('self');
    if (self) this._setConn(self, state === 'connected' ? 'connected' : state === 'reconnecting' ? 'disconnected' : 'connecting', state);
  }

  showJoin({ hint } = {}) {
    this.joinView.hidden = false;
    this.callView.hidden = true;
    this.joinButton.disabled = false;
    if (hint) this.joinHint.textContent = hint;
  }

  /** A room link without its key (`#k=`): no joining, and say what to do. */
  showNoKey() {
    this.showJoin();
    this.joinButton.disabled = true;
    this.nameInput.disabled = true;
    const p = this.joinHint;
    p.classList.add('problem');
    p.replaceChildren(
      'This link lacks the room key (the part after #k= at its end), so you cannot join: ',
      'the key is what keeps the call private. Ask whoever invited you for the full link, or ',
      Object.assign(document.createElement('a'), { href: '/', textContent: 'create a new room' }),
      '.',
    );
  }

  /**
   * Whether every frame we send is sealed and every frame we play was opened (e2ee.js): the
   * call says "End-to-end encrypted" only then, else why not.
   */
  setFrameEncryption(active, reason) {
    const box = this.safetyCodeText?.closest('.e2e');
    const badge = box?.querySelector('.e2e-badge');
    if (!box || !badge) return;
    box.dataset.frames = active ? 'on' : 'off';
    badge.textContent = active ? 'End-to-end encrypted' : `Media not encrypted end to end: ${reason ?? 'unknown'}`;
  }

  /** The room's safety code (sealed signaling): shown with whether the user compared it. */
  setSafetyCode(code) {
    this.safetyCode = code;
    this._renderSafety();
  }

  _renderSafety() {
    if (!this.safetyCodeText) return;
    const code = this.safetyCode;
    this.safetyCodeText.textContent = code ?? '…';
    const state = !code ? 'none' : !this.comparedCode ? 'unchecked'
      : code === this.comparedCode ? 'compared' : 'changed';
    this.safetyCodeText.closest('.e2e').dataset.compare = state;
    this.compareStatus.textContent = {
      none: '',
      unchecked: 'Compare it with the others (read it out): the same code for everyone means nobody is listening in between.',
      compared: 'Compared.',
      changed: 'Code changed: compare again.',
    }[state];
    this.compareButton.hidden = state === 'compared' || state === 'none';
  }

  showCall() {
    this.joinView.hidden = true;
    this.leftView.hidden = true;
    this.callView.hidden = false;
  }

  showLeft(text = 'You left the room.') {
    this.clearTiles();
    this.clearNotices();
    this.callView.hidden = true;
    this.leftText.textContent = text;
    this.leftView.hidden = false;
    this.showJoin();
  }

  /** The WebAudio context; created on the Join click so browsers let it run. */
  ensureAudio() {
    if (!this.audioCtx) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx) this.audioCtx = new Ctx();
    }
    this.audioCtx?.resume?.().catch(() => {});
    if (!this._meterTimer) this._meterTimer = setInterval(() => this._updateSpeaking(), 150);
  }

  notice(text, { timeoutMs = 8000 } = {}) {
    const p = document.createElement('p');
    p.className = 'notice';
    p.textContent = text;
    this.notices.append(p);
    if (timeoutMs) setTimeout(() => p.remove(), timeoutMs);
  }

  clearNotices() {
    this.notices.replaceChildren();
  }

  setMuted(muted) {
    this.muteButton.textContent = muted ? 'Unmute' : 'Mute';
    this.muteButton.setAttribute('aria-pressed', String(muted));
    const self = this.tileState.get('self');
    if (self) self.li.classList.toggle('muted', muted);
  }

  setCamera(on) {
    this.cameraButton.textContent = on ? 'Stop camera' : 'Camera';
    this.cameraButton.classList.toggle('active', on);
    this.cameraButton.setAttribute('aria-pressed', String(on));
  }

  setSharing(sharing) {
    this.shareButton.textContent = sharing ? 'Stop sharing' : 'Share screen';
    this.shareButton.classList.toggle('active', sharing);
    this.shareAudio.disabled = sharing;
  }

  setMicAvailable(available) {
    this.muteButton.disabled = !available;
  }

  // ---- devices --------------------------------------------------------------------------

  fillDevices(devices, { micId, speakerSupported }) {
    const mics = devices.filter((d) => d.kind === 'audioinput');
    const speakers = devices.filter((d) => d.kind === 'audiooutput');
    fillSelect(this.micSelect, mics, micId, 'Microphone');
    this.micSelect.disabled = mics.length === 0;
    if (speakerSupported && speakers.length > 0) {
      fillSelect(this.speakerSelect, speakers, this.sinkId, 'Speaker');
      this.speakerSelect.disabled = false;
      this.speakerHint.hidden = true;
    } else {
      this.speakerSelect.replaceChildren(new Option('Default output', ''));
      this.speakerSelect.disabled = true;
      this.speakerHint.hidden = false;
    }
  }

  async setSinkId(sinkId) {
    this.sinkId = sinkId;
    const all = this.audioSink.querySelectorAll('audio');
    await Promise.all(Array.from(all, (a) => applySink(a, sinkId)));
  }

  // ---- tiles ----------------------------------------------------------------------------

  addSelfTile(name) {
    const t = this._makeTile('self', `${name} (you)`, 'browser');
    t.li.classList.add('self');
    this.tiles.prepend(t.li);
    this._setConn(t, 'connected', 'connected');
    return t;
  }

  /** Our own microphone (meter only, never played back) and our screen or camera preview. */
  setSelfMedia({ micTrack, screenTrack, cameraTrack }) {
    const t = this.tileState.get('self');
    if (!t) return;
    this._syncMeters(t, micTrack ? [micTrack] : []);
    this._setVideo(t, screenTrack ?? cameraTrack ?? null);
  }

  renderPeer(peer) {
    const name = peer.name ?? UNNAMED;
    let t = this.tileState.get(peer.id);
    if (!t) {
      t = this._makeTile(peer.id, name, peer.kind);
      this.tiles.append(t.li);
    }
    if (t.els.name.textContent !== name) {
      t.els.name.textContent = name;
      t.els.avatar.textContent = initials(name);
    }
    t.li.setAttribute('aria-label', name);
    t.els.kind.textContent = peer.kind === 'appliance' ? 'Room box' : 'Browser';
    t.li.dataset.kind = peer.kind;
    if (peer.refused) {
      t.els.conn.textContent = `Refused: ${peer.refused}`;
      t.li.dataset.conn = 'refused';
    } else if (peer.name === undefined || peer.name === null) {
      this._setConn(t, 'securing');
    } else {
      this._setConn(t, peer.leftAt ? 'away' : pcState(peer.pc));
    }
    const q = peer.quality ?? {};
    t.li.dataset.quality = q.level ?? 'unknown';
    const parts = [];
    if (QUALITY_TEXT[q.level]) parts.push(QUALITY_TEXT[q.level]);
    if (q.rttMs !== null && q.rttMs !== undefined) parts.push(`${q.rttMs} ms`);
    if (q.lossPct !== null && q.lossPct !== undefined) parts.push(`${q.lossPct === 0 ? '0' : q.lossPct.toFixed(q.lossPct < 10 ? 1 : 0)}% loss`);
    t.els.quality.textContent = parts.join(' · ');
    const path = PATH_TEXT[q.path];
    t.els.quality.title = parts.length ? `Connection quality: ${parts.join(', ')}${path ? `; ${path}` : ''}` : '';
    t.li.dataset.path = q.path ?? '';
    t.els.bars.dataset.level = q.level ?? 'unknown';
  }

  renderPeerMedia(peer) {
    const t = this.tileState.get(peer.id);
    if (!t) return;
    // Every remote audio track is played (microphone and shared screen audio).
    const live = new Set(peer.audioTracks);
    for (const [track, audio] of t.audios) {
      if (!live.has(track)) {
        audio.srcObject = null;
        audio.remove();
        t.audios.delete(track);
      }
    }
    for (const track of live) {
      if (t.audios.has(track)) continue;
      const audio = document.createElement('audio');
      audio.autoplay = true;
      audio.srcObject = new MediaStream([track]);
      audio.dataset.peer = peer.id;
      this.audioSink.append(audio);
      if (this.sinkId) applySink(audio, this.sinkId);
      audio.play?.().catch(() => { /* autoplay refused: plays on the next click */ });
      t.audios.set(track, audio);
    }
    this._syncMeters(t, peer.audioTracks);
    this._setVideo(t, peer.videoTrack);
  }

  removePeer(peer) {
    const t = this.tileState.get(peer.id);
    if (!t) return;
    this._disposeTile(t);
    this.tileState.delete(peer.id);
  }

  clearTiles() {
    for (const t of this.tileState.values()) this._disposeTile(t);
    this.tileState.clear();
  }

  /** Retry audio elements the browser refused to autoplay (call on any user click). */
  unlockAudio() {
    this.audioCtx?.resume?.().catch(() => {});
    for (const a of this.audioSink.querySelectorAll('audio')) if (a.paused) a.play().catch(() => {});
  }

  _makeTile(key, name, kind) {
    const li = document.createElement('li');
    li.className = 'tile';
    li.dataset.peerId = key;
    li.dataset.kind = kind;
    li.setAttribute('aria-label', name);
    li.innerHTML = `
      <div class="stage">
        <div class="avatar" aria-hidden="true"></div>
        <video playsinline muted autoplay hidden></video>
      </div>
      <div class="meta">
        <span class="speaking" role="img" aria-label="Not speaking"></span>
        <span class="name"></span>
        <span class="kind"></span>
      </div>
      <div class="meta small">
        <span class="conn"></span>
        <span class="bars" aria-hidden="true"><i></i><i></i><i></i></span>
        <span class="quality"></span>
      </div>`;
    const els = {
      name: li.querySelector('.name'),
      kind: li.querySelector('.kind'),
      avatar: li.querySelector('.avatar'),
      video: li.querySelector('video'),
      speaking: li.querySelector('.speaking'),
      conn: li.querySelector('.conn'),
      quality: li.querySelector('.quality'),
      bars: li.querySelector('.bars'),
    };
    els.name.textContent = name;
    els.kind.textContent = kind === 'appliance' ? 'Room box' : 'Browser';
    els.avatar.textContent = initials(name);
    const t = { li, els, meters: new Map(), audios: new Map(), speakingUntil: 0, speaking: false, videoTrack: null };
    this.tileState.set(key, t);
    return t;
  }

  _setConn(t, state, signalState) {
    const text = signalState ? (SIGNAL_TEXT[signalState] ?? signalState) : (PC_TEXT[state] ?? state);
    t.els.conn.textContent = text;
    t.li.dataset.conn = state;
  }

  _setVideo(t, track) {
    if (t.videoTrack === track) return;
    t.videoTrack = track;
    const v = t.els.video;
    if (track) {
      v.srcObject = new MediaStream([track]);
      v.hidden = false;
      t.li.classList.add('has-video');
      v.play?.().catch(() => {});
    } else {
      v.srcObject = null;
      v.hidden = true;
      t.li.classList.remove('has-video');
    }
  }

  _syncMeters(t, tracks) {
    if (!this.audioCtx) return;
    const want = new Set(tracks);
    for (const [track, m] of t.meters) {
      if (!want.has(track)) {
        m.close();
        t.meters.delete(track);
      }
    }
    for (const track of want) {
      if (!t.meters.has(track)) {
        try {
          t.meters.set(track, new LevelMeter(this.audioCtx, track));
        } catch (err) {
          console.warn('level meter', err);
        }
      }
    }
  }

  _updateSpeaking() {
    const now = performance.now();
    for (const t of this.tileState.values()) {
      let level = 0;
      for (const m of t.meters.values()) level = Math.max(level, m.level());
      if (level > SPEAKING_RMS) t.speakingUntil = now + SPEAKING_HOLD_MS;
      const speaking = now < t.speakingUntil;
      if (speaking !== t.speaking) {
        t.speaking = speaking;
        t.li.classList.toggle('speaking-now', speaking);
        t.els.speaking.setAttribute('aria-label', speaking ? 'Speaking' : 'Not speaking');
      }
    }
  }

  _disposeTile(t) {
    for (const m of t.meters.values()) m.close();
    for (const a of t.audios.values()) {
      a.srcObject = null;
      a.remove();
    }
    t.els.video.srcObject = null;
    t.li.remove();
  }
}

function fillSelect(select, devices, selectedId, fallbackLabel) {
  const options = devices.map((d, i) => new Option(d.label || `${fallbackLabel} ${i + 1}`, d.deviceId));
  select.replaceChildren(...options);
  if (selectedId && devices.some((d) => d.deviceId === selectedId)) select.value = selectedId;
}

async function applySink(audio, sinkId) {
  if (typeof audio.setSinkId !== 'function') return;
  try {
    await audio.setSinkId(sinkId);
  } catch (err) {
    console.warn('setSinkId', err);
  }
}

function initials(name) {
  if (name === UNNAMED) return '';
  const parts = name.replace(/\(you\)$/, '').trim().split(/\s+/).filter(Boolean);
  const letters = parts.slice(0, 2).map((p) => Array.from(p)[0]?.toUpperCase() ?? '');
  return letters.join('') || '?';
}
