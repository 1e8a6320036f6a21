// Wiring: the page at /r/<room>#k=<secret>, the join form, the controls.
//
// Signaling is sealed (protocol version 2, seal.js): the room secret comes from the link's
// fragment, which the browser never sends to the server. A link without a valid secret does
// not join at all; nothing falls back to plain signaling.

import { defaultSignalingUrl } from './signaling.js';
import { SealedSignaling, secretFromFragment } from './seal.js';
import { Call } from './call.js';
import { FrameEncryption, allowedCodecs, testSwitches } from './e2ee.js';
import { UI } from './ui.js';

const NAME_KEY = 'roombox.name';
const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;

const ui = new UI();
let signaling = null;
let call = null;
let frames = null;
/** Test-only switches of frame encryption (`?e2ee-test=...` on a loopback page, e2ee.js). */
const e2eeTest = testSwitches(location.search, location.hostname);
let micDeviceId = '';

// A small read-only handle for tests and debugging: the current call and signaling client.
Object.defineProperty(window, 'roombox', {
  configurable: false,
  enumerable: false,
  value: Object.freeze({
    get call() { return call; },
    get signaling() { return signaling; },
    get room() { return room; },
    /** The safety code shown now (five groups of four digits), or null. */
    get safetyCode() { return signaling?.safetyCode ?? null; },
    /** Frame encryption (e2ee.js): its test hooks work with ?e2ee-test=tap only. */
    get frames() { return frames; },
    /**
     * What frame encryption did so far: {active, api, sealingKid, sealed: {audio, video},
     * peers: {id: {opened, dropped: {audio, video}, lastKid, maxVideoGapMs}}, unsupported, ...}.
     */
    get frameStats() { return frames?.stats ?? null; },
  }),
});

const room = roomFromPath(location.pathname);
const secret = secretFromFragment(location.hash);
if (!room) {
  ui.showJoin({ hint: 'This address names no valid room. Room names use letters, digits, - and _.' });
  ui.joinButton.disabled = true;
} else if (!secret) {
  ui.setRoom(room);
  ui.showNoKey();
} else {
  ui.setRoom(room);
  ui.showJoin();
  const saved = safeStorage(() => localStorage.getItem(NAME_KEY));
  if (saved) ui.nameInput.value = saved;
  ui.nameInput.focus();
}

// A full link pasted into this tab changes only the fragment: start over with it (not mid-call).
window.addEventListener('hashchange', () => {
  if (!call && secretFromFragment(location.hash) !== secret) location.reload();
});

function roomFromPath(path) {
  const m = /^\/r\/([^/]+)\/?$/.exec(path);
  if (!m) return null;
  let name;
  try { name = decodeURIComponent(m[1]); } catch { return null; }
  return ROOM_RE.test(name) ? name : null;
}

function safeStorage(fn) {
  try { return fn(); } catch { return null; }
}

// ---- join ---------------------------------------------------------------------------------

ui.joinForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!room || !secret || call) return;
  const name = ui.nameInput.value.trim();
  if (name.length < 1 || Array.from(name).length > 64) {
    ui.nameInput.setCustomValidity('Type a name of 1 to 64 characters.');
    ui.nameInput.reportValidity();
    return;
  }
  ui.nameInput.setCustomValidity('');
  safeStorage(() => localStorage.setItem(NAME_KEY, name));
  ui.joinButton.disabled = true;
  ui.ensureAudio();
  await join(name);
});

ui.nameInput.addEventListener('input', () => ui.nameInput.setCustomValidity(''));

async function join(name) {
  const micStream = await openMic(micDeviceId);
  signaling = new SealedSignaling({ url: defaultSignalingUrl(), room, name, kind: 'browser', secret });
  frames = new FrameEncryption({ signaling, test: e2eeTest });
  call = new Call({ signaling, micStream, e2ee: frames });

  ui.clearTiles();
  ui.clearNotices();
  ui.showCall();
  ui.addSelfTile(name);
  ui.setMuted(false);
  ui.setSharing(false);
  ui.setMicAvailable(!!micStream);
  refreshSelfMedia();
  if (!micStream) ui.notice('No microphone: you can listen, but the others cannot hear you.', { timeoutMs: 0 });
  if (frames.active && !allowedCodecs('video')) {
    // Frame encryption covers H.264 video only (docs/protocol.md): without it, no video.
    ui.notice('This browser cannot encode or decode H.264 video, the only video encrypted end to end here: '
      + 'you can talk, but video will not show.', { timeoutMs: 0 });
  }

  signaling.addEventListener('state', (ev) => ui.setSignalState(ev.detail.state));
  signaling.addEventListener('server-error', (ev) => {
    const { code } = ev.detail;
    if (code === 'room-full') {
      const max = signaling.maxPeers;
      leave(`This room is full${max ? ` (at most ${max} participants)` : ''}. Try again later.`);
    } else if (code === 'bad-room') {
      leave('This room name is not valid.');
    } else if (code === 'wrong-version') {
      leave('This room is in use by an older roombox client that does not encrypt its signaling, '
        + 'so this page does not join it. Ask the others to reload, or create a new room.');
    } else if (code === 'seal-failed') {
      leave('This browser could not set up the encryption (it needs WebCrypto, on https or localhost).');
    } else if (signaling.state === 'failed') {
      leave(`The server refused to let you in (${code}).`);
    }
  });
  call.addEventListener('peer-added', (ev) => { ui.renderPeer(ev.detail.peer); ui.renderPeerMedia(ev.detail.peer); });
  call.addEventListener('peer-updated', (ev) => ui.renderPeer(ev.detail.peer));
  call.addEventListener('peer-media', (ev) => ui.renderPeerMedia(ev.detail.peer));
  call.addEventListener('peer-removed', (ev) => ui.removePeer(ev.detail.peer));
  call.addEventListener('notice', (ev) => ui.notice(ev.detail.text, { timeoutMs: 15000 }));
  signaling.addEventListener('safety-code', (ev) => ui.setSafetyCode(ev.detail.code));
  call.addEventListener('local-media', () => {
    refreshSelfMedia();
    ui.setSharing(!!call.screenStream);
    ui.setCamera(!!call.cameraStream);
  });

  ui.setSignalState(signaling.state);
  ui.setSafetyCode(null);
  ui.setFrameEncryption(frames.active, frames.reason);
  frames.addEventListener('change', () => ui.setFrameEncryption(frames.active, frames.reason));
  signaling.connect().catch(() => { /* told by server-error 'seal-failed' */ });
  refreshDevices();
}

async function openMic(deviceId) {
  if (!navigator.mediaDevices?.getUserMedia) return null;
  const audio = {
    echoCancellation: true,
    noiseSuppression: true,
    autoGainControl: true,
    ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
  };
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio, video: false });
    micDeviceId = stream.getAudioTracks()[0]?.getSettings?.().deviceId ?? deviceId;
    return stream;
  } catch (err) {
    console.warn('getUserMedia', err);
    if (err?.name === 'NotAllowedError') {
      ui.notice('Microphone access was refused. Allow it in the browser to be heard.', { timeoutMs: 0 });
    }
    return null;
  }
}

function refreshSelfMedia() {
  if (!call) return;
  ui.setSelfMedia({
    micTrack: call.micTrack,
    screenTrack: call.screenStream?.getVideoTracks()[0] ?? null,
    cameraTrack: call.cameraStream?.getVideoTracks()[0] ?? null,
  });
}

// ---- controls -----------------------------------------------------------------------------

document.addEventListener('click', () => ui.unlockAudio(), { capture: true });

ui.muteButton.addEventListener('click', () => {
  if (!call) return;
  const muted = !call.muted;
  call.setMuted(muted);
  ui.setMuted(muted);
});

ui.cameraButton.addEventListener('click', async () => {
  if (!call) return;
  if (call.cameraStream) {
    call.stopCamera();
    return;
  }
  if (!navigator.mediaDevices?.getUserMedia) {
    ui.notice('This browser cannot use a camera.');
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30, max: 30 } },
      audio: false,
    });
  } catch (err) {
    ui.notice(err?.name === 'NotAllowedError'
      ? 'Camera access was refused. Allow it in the browser to be seen.'
      : `The camera did not start: ${err?.message ?? err}`);
    return;
  }
  if (!call) {
    stream.getTracks().forEach((t) => t.stop());
    return;
  }
  call.startCamera(stream);
});

ui.shareButton.addEventListener('click', async () => {
  if (!call) return;
  if (call.screenStream) {
    call.stopScreen();
    return;
  }
  if (!navigator.mediaDevices?.getDisplayMedia) {
    ui.notice('This browser cannot share its screen.');
    return;
  }
  const wantAudio = ui.shareAudio.checked;
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 15, max: 30 } },
      audio: wantAudio,
    });
  } catch (err) {
    if (err?.name !== 'NotAllowedError' && err?.name !== 'AbortError') {
      ui.notice(`Screen sharing failed: ${err?.message ?? err}`);
    }
    return;
  }
  if (!call) {
    stream.getTracks().forEach((t) => t.stop());
    return;
  }
  const video = stream.getVideoTracks()[0];
  if (video && 'contentHint' in video) video.contentHint = 'detail';
  if (wantAudio && stream.getAudioTracks().length === 0) {
    ui.notice('Sharing without sound: the browser gave no audio for this screen. '
      + 'Some browsers share audio only from a tab (or, on Windows and ChromeOS, the whole screen); '
      + 'pick a tab and tick its "share audio" option to send sound.', { timeoutMs: 15000 });
  }
  call.startScreen(stream);
});

ui.leaveButton.addEventListener('click', () => leave());

function leave(text) {
  const c = call;
  const s = signaling;
  call = null;
  if (c) c.close();
  frames?.close();
  if (s) s.leave();
  signaling = s; // keep the closed client readable (state 'closed') for people and tests
  ui.setSignalState('closed');
  ui.showLeft(text);
}

// ---- devices ------------------------------------------------------------------------------

const speakerSupported = typeof HTMLMediaElement !== 'undefined'
  && typeof HTMLMediaElement.prototype.setSinkId === 'function';

async function refreshDevices() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    ui.fillDevices(devices, { micId: micDeviceId, speakerSupported });
  } catch (err) {
    console.warn('enumerateDevices', err);
  }
}

navigator.mediaDevices?.addEventListener?.('devicechange', () => { if (call) refreshDevices(); });

ui.micSelect.addEventListener('change', async () => {
  if (!call) return;
  const id = ui.micSelect.value;
  const stream = await openMic(id);
  if (!stream || !call) return;
  await call.setMicStream(stream);
  ui.setMicAvailable(true);
});

ui.speakerSelect.addEventListener('change', () => ui.setSinkId(ui.speakerSelect.value));
