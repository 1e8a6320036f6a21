// What frame encryption costs a browser (docs/protocol.md, "Frame encryption"): two headless
// Chromium pages in a room, each sending its camera (Chromium's fake device, 1280x720 at 30 fps,
// H.264 as the web client negotiates it) and its microphone to the other and receiving the
// other's, with frame encryption on (every frame sealed and opened in the page's frame worker)
// and off (the web client's test-only switch `?e2ee-test=off`, web/js/e2ee.js: no transforms
// at all). The CPU time of the browser's renderer processes (the pages: WebRTC's encoder and
// decoder threads, the frame worker) is read from /proc over a fixed window, rounds of on and
// off alternating in one run (and pass-through transforms, to tell the machinery from the
// cipher), and the ratios written to bench/e2ee/RESULTS.md (its section between
// the browser.bench.js markers; the rest of the file is left as it is).
//
//   node bench/e2ee/browser.bench.js            as root: it runs itself in a loopback-only
//                                               network namespace (unshare --net)
//   ROUNDS=3 WINDOW_S=20 WARMUP_S=10            rounds of each mode, seconds measured, seconds
//                                               of warm-up before each window (defaults)
//   MODES=on,off,passthrough                    which modes (default all three)
//   SOURCES=pattern,noise                       the cameras, one after the other (default both):
//                                               Chromium's own fake pattern (cheap to encode:
//                                               ~0.7 Mbit/s), and noise: a 720p30 Y4M of ffmpeg's
//                                               testsrc2 with fresh noise every frame, so the
//                                               encoder spends its whole bitrate as on the box's
//                                               bench (needs ffmpeg)
//   RESULTS_JSON=file, REPORT_FROM=file         keep a run's numbers; write the report from them
//   SIGNAL_BIN, CHROMIUM                        as in tests/e2e (the server is not measured)
//
// Needs tests/e2e's npm packages (npm ci in tests/e2e) and a built roombox-signal (cargo build
// -p roombox-signal: the web client is embedded in it).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, writeSection } from './results-section.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsFile = path.join(here, 'RESULTS.md');

if (!process.env.E2EE_BENCH_IN_NETNS) {
  // Loopback only, as the e2e tests: nothing leaves the machine, nothing waits on STUN.
  const r = spawnSync('unshare', ['--net', '--', 'bash', '-c', 'ip link set lo up && exec node "$0"', fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, E2EE_BENCH_IN_NETNS: '1' },
  });
  process.exit(r.status ?? 1);
}

const { joinRoom, launchBrowser, startServer, waitFor } = await import('../../tests/e2e/lib.js');

const ROUNDS = Number(process.env.ROUNDS || 3);
const WINDOW_S = Number(process.env.WINDOW_S || 20);
const WARMUP_S = Number(process.env.WARMUP_S || 10);
const WIDTH = 1280;
const HEIGHT = 720;
const FPS = 30;
const MAX_BITRATE = 2_500_000;
/**
 * on: frame encryption; off: no transforms (`?e2ee-test=off`); passthrough: transforms that
 * pass every frame unchanged (`?e2ee-test=passthrough`), the encoded-transform machinery alone.
 */
const MODES = (process.env.MODES || 'on,off,passthrough').split(',');
const TICK = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim() || 100);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) of a process or thread from its /proc stat line. */
function cpuOf(statPath) {
  try {
    const text = readFileSync(statPath, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICK; // utime, stime (fields 14 and 15)
  } catch {
    return null;
  }
}

function commOf(pid, tid) {
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** {pid: {type, cpu, threads: {tid: {name, cpu}}}} for the browser's processes now. */
async function snapshot(cdp) {
  const { processInfo } = await cdp.send('SystemInfo.getProcessInfo');
  const out = {};
  for (const p of processInfo) {
    const cpu = cpuOf(`/proc/${p.id}/stat`);
    if (cpu === null) continue;
    const threads = {};
    if (p.type === 'renderer') {
      for (const tid of readdirSync(`/proc/${p.id}/task`, { withFileTypes: false })) {
        const c = cpuOf(`/proc/${p.id}/task/${tid}/stat`);
        if (c !== null) threads[tid] = { name: commOf(p.id, tid), cpu: c };
      }
    }
    out[p.id] = { type: p.type, cpu, threads };
  }
  return out;
}

/** CPU seconds spent between two snapshots: by process type, and by renderer thread name. */
function spent(a, b) {
  const byType = {};
  const byThread = {};
  for (const [pid, end] of Object.entries(b)) {
    const start = a[pid];
    byType[end.type] = (byType[end.type] ?? 0) + end.cpu - (start?.cpu ?? 0);
    for (const [tid, t] of Object.entries(end.threads)) {
      // Thread names of one kind (e.g. "WebRTC_W") summed; a pool's numbered names folded.
      const name = t.name.replace(/\d+$/, '#');
      byThread[name] = (byThread[name] ?? 0) + t.cpu - (start?.threads[tid]?.cpu ?? 0);
    }
  }
  return { byType, byThread };
}

/** The video each page sends and receives, and what its frame worker did. */
function pageStats(page) {
  return page.evaluate(async () => {
    const out = { framesEncoded: 0, framesDecoded: 0, bytesSent: 0, bytesReceived: 0, sendWidth: 0, recvWidth: 0, encoder: null, limitation: null };
    for (const peer of window.roombox.call.peers.values()) {
      const report = await peer.pc.getStats();
      report.forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          out.framesEncoded += s.framesEncoded ?? 0;
          out.bytesSent += s.bytesSent ?? 0;
          out.sendWidth = s.frameWidth ?? out.sendWidth;
          out.encoder = s.encoderImplementation ?? out.encoder;
          out.limitation = s.qualityLimitationReason ?? out.limitation;
        } else if (s.type === 'inbound-rtp' && s.kind === 'video') {
          out.framesDecoded += s.framesDecoded ?? 0;
          out.bytesReceived += s.bytesReceived ?? 0;
          out.recvWidth = s.frameWidth ?? out.recvWidth;
        }
      });
    }
    out.frames = window.roombox.frameStats;
    return out;
  });
}

/** The camera at 1280x720, up to 2.5 Mbit/s, keeping its resolution under load. */
async function cameraOn(page) {
  await page.getByRole('button', { name: 'Camera', exact: true }).click();
  await waitFor(() => page.evaluate(() => !!window.roombox.call?.cameraStream), { what: 'camera on' });
}

async function tuneSenders(page) {
  return page.evaluate(async ({ maxBitrate, fps }) => {
    const done = [];
    for (const peer of window.roombox.call.peers.values()) {
      for (const sender of peer.pc.getSenders()) {
        if (sender.track?.kind !== 'video') continue;
        const p = sender.getParameters();
        if (!p.encodings?.length) continue;
        p.encodings[0].maxBitrate = maxBitrate;
        p.encodings[0].maxFramerate = fps;
        p.degradationPreference = 'maintain-resolution';
        await sender.setParameters(p);
        done.push(sender.track.getSettings());
      }
    }
    return done;
  }, { maxBitrate: MAX_BITRATE, fps: FPS });
}

async function runMode(browser, cdp, serverUrl, mode, round) {
  const room = `bench-e2ee-${mode}-${round}-${process.pid}`;
  const query = mode === 'on' ? '' : `e2ee-test=${mode}`;
  const pages = [];
  for (const name of ['Ada', 'Bea']) {
    pages.push(await joinRoom(browser, serverUrl, room, name, { query, viewport: { width: 800, height: 600 } }));
  }
  for (const m of pages) await cameraOn(m.page);
  await waitFor(async () => (await Promise.all(pages.map((m) => tuneSenders(m.page)))).every((x) => x.length > 0),
    { timeout: 60000, what: `${mode}: the cameras' senders` });
  let last;
  await waitFor(async () => {
    last = await Promise.all(pages.map((m) => pageStats(m.page)));
    return last.every((x) => x.recvWidth === WIDTH && x.framesDecoded > 0);
  }, { timeout: 90000, what: `${mode}: both pages decoding ${WIDTH}x${HEIGHT}` }).catch((err) => {
    err.message += `; last: ${JSON.stringify(last?.map(({ frames, ...x }) => x))}`;
    throw err;
  });
  await sleep(WARMUP_S * 1000);

  const s0 = await Promise.all(pages.map((m) => pageStats(m.page)));
  const c0 = await snapshot(cdp);
  const t0 = Date.now();
  await sleep(WINDOW_S * 1000);
  const c1 = await snapshot(cdp);
  const seconds = (Date.now() - t0) / 1000;
  const s1 = await Promise.all(pages.map((m) => pageStats(m.page)));

  const { byType, byThread } = spent(c0, c1);
  const per = (f) => s1.reduce((n, x, i) => n + f(x) - f(s0[i]), 0) / pages.length / seconds;
  const frames = s1.map((x) => x.frames);
  const result = {
    mode,
    round,
    seconds,
    rendererCpuPerPage: byType.renderer / pages.length / seconds, // cores
    allCpu: Object.values(byType).reduce((a, b) => a + b, 0) / seconds,
    byType: Object.fromEntries(Object.entries(byType).map(([k, v]) => [k, v / seconds])),
    topThreads: Object.entries(byThread).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => [k, v / seconds]),
    encodedFps: per((x) => x.framesEncoded),
    decodedFps: per((x) => x.framesDecoded),
    sentKbps: (per((x) => x.bytesSent) * 8) / 1000,
    sendWidth: s1.map((x) => x.sendWidth),
    encoder: s1[0].encoder,
    limitation: s1.map((x) => x.limitation),
    frameEncryption: frames.map((f) => ({ active: f?.active ?? false, transforming: f?.transforming ?? false, api: f?.api ?? null, timing: f?.timing ?? {} })),
  };
  for (const m of pages) await m.context.close();
  await sleep(2000);
  return result;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const pct = (cores) => `${(cores * 100).toFixed(1)} %`;
/** Cores as signed percentage points of one core. */
const pts = (cores) => `${cores >= 0 ? '+' : ''}${(cores * 100).toFixed(1)} %`;

function report(results, source) {
  const of = (mode) => results.filter((r) => r.mode === mode);
  const modes = MODES.filter((mode) => of(mode).length);
  const perFrame = (r) => (r.rendererCpuPerPage / (r.encodedFps + r.decodedFps)) * 1000; // CPU ms per frame sent or received
  const workerThread = (r) => (r.topThreads.find(([n]) => /DedicatedWorker/i.test(n))?.[1] ?? 0) / 2;
  const med = (mode, f) => median(of(mode).map(f));
  const worker = (r, op) => {
    const t = r.frameEncryption.map((f) => f.timing[op]).filter(Boolean);
    const n = t.reduce((a, x) => a + x.n, 0);
    return n ? t.reduce((a, x) => a + x.totalMs, 0) / n : null;
  };
  const paired = (mode, f) => of(mode).flatMap((r) => {
    const off = of('off').find((o) => o.round === r.round);
    return off ? [f(r) - f(off)] : [];
  });
  const ratios = {};
  for (const mode of modes.filter((x) => x !== 'off')) {
    if (!of('off').length) break;
    ratios[mode] = {
      renderer: med(mode, (r) => r.rendererCpuPerPage) / med('off', (r) => r.rendererCpuPerPage),
      all: med(mode, (r) => r.allCpu) / med('off', (r) => r.allCpu),
      perFrame: med(mode, perFrame) / med('off', perFrame),
      // CPU added, in cores, each round against the same round's run without transforms
      // (paired: the machine's load drifts between rounds more than the effect).
      addedRenderer: median(paired(mode, (r) => r.rendererCpuPerPage)),
      addedAll: median(paired(mode, (r) => r.allCpu / 2)),
    };
  }
  const name = { on: 'frame encryption on', off: 'no transforms', passthrough: 'pass-through transforms' };
  const lines = [];
  const camera = source === 'noise'
    ? 'ffmpeg\'s testsrc2 with fresh noise every frame (a Y4M file fed to Chromium\'s fake capture device): the encoder spends its whole bitrate, as on the box\'s bench'
    : 'Chromium\'s own fake camera pattern: cheap to encode, well under the bitrate cap';
  lines.push(`### Camera: ${source}`);
  lines.push('');
  lines.push(`${camera}.`);
  lines.push('');
  lines.push('| round | mode | renderer CPU per page | all browser processes (both pages) | encoded fps | decoded fps | sent kbit/s | sent width | frame worker thread per page | worker ms per video frame (seal / open) | limited by |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const sv = worker(r, 'seal video');
    const ov = worker(r, 'open video');
    lines.push(`| ${r.round} | ${r.mode} | ${pct(r.rendererCpuPerPage)} | ${pct(r.allCpu)} | ${r.encodedFps.toFixed(1)} | ${r.decodedFps.toFixed(1)} | ${Math.round(r.sentKbps)} | ${r.sendWidth.join(', ')} | `
      + `${r.mode === 'off' ? '-' : pct(workerThread(r))} | ${sv === null || ov === null ? '-' : `${sv.toFixed(2)} / ${ov.toFixed(2)}`} | ${r.limitation.join(', ')} |`);
  }
  lines.push('');
  lines.push('Medians per page:');
  lines.push('');
  for (const mode of modes) {
    const rt = ratios[mode];
    lines.push(`- ${name[mode] ?? mode}: renderer ${pct(med(mode, (r) => r.rendererCpuPerPage))}, all processes ${pct(med(mode, (r) => r.allCpu) / 2)}`
      + (mode === 'off' ? '' : `, frame worker thread ${pct(med(mode, workerThread))}`)
      + (rt ? `; **against no transforms: renderer x${rt.renderer.toFixed(3)} (${((rt.renderer - 1) * 100).toFixed(1)} %)**, all processes x${rt.all.toFixed(3)}, per frame sent or received x${rt.perFrame.toFixed(3)}`
        + `; **CPU added per page, paired by round: renderer ${pts(rt.addedRenderer)}, all processes ${pts(rt.addedAll)} of one core**` : ''));
  }
  lines.push('');
  lines.push('"Frame worker thread" is the CPU of the renderer\'s DedicatedWorker thread, where frames are sealed and opened (and, pass-through, handed on); '
    + '"worker ms per video frame" is the wall time a video frame spends in the worker\'s transform (awaiting WebCrypto included), not CPU.');
  for (const mode of modes) {
    lines.push(`Top renderer threads, last round ${mode} (per page): ${of(mode).at(-1).topThreads.map(([n, v]) => `${n} ${pct(v / 2)}`).join(', ')}.`);
  }
  return { text: lines.join('\n').trimEnd(), ratios };
}

function writeResults(body, m) {
  writeSection(resultsFile, 'browser.bench.js', [
    '## The browser: two Chromium pages, 720p30 each way',
    '',
    `\`node bench/e2ee/browser.bench.js\`, ${new Date().toISOString().slice(0, 10)}; ${m.cpu}, ${m.memory}, ${m.kernel}; ${m.chromium} headless; Node ${m.node}.`,
    '',
    `Two pages in a room on loopback, each sending its camera (${WIDTH}x${HEIGHT} at ${FPS} fps, H.264 up to ${MAX_BITRATE / 1e6} Mbit/s, `
      + 'resolution held: `degradationPreference` maintain-resolution) and its fake microphone to the other and receiving the other\'s. '
      + 'Modes: **on**, frame encryption (RTCRtpScriptTransform, every frame sealed and opened in the page\'s frame worker); '
      + '**off**, no transforms at all (the test-only switch `?e2ee-test=off`); **passthrough**, the same transforms passing every frame unchanged '
      + '(`?e2ee-test=passthrough`: what Chromium\'s encoded-transform machinery costs by itself). '
      + 'CPU: user + system time of the browser\'s renderer processes (the two pages: encoder, decoder, WebRTC threads, the frame worker) '
      + `over ${WINDOW_S} s after ${WARMUP_S} s of warm-up, per page, in cores (100 % = one logical CPU; the machine has ${os.cpus().length}); `
      + `${ROUNDS} rounds of each mode, the order reversed every other round, in one run. "Per frame" divides the renderer CPU by the frames `
      + 'encoded and decoded, for rounds whose frame rates differ (a saturated machine drops frames).',
    '',
    body,
    '',
  ]);
}

const SOURCES = (process.env.SOURCES || 'pattern,noise').split(',');

/** A Y4M of ffmpeg's testsrc2 with fresh noise every frame, in a temporary directory. */
function noiseVideo() {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'roombox-e2ee-bench-')), 'noise-720p30.y4m');
  const r = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${WIDTH}x${HEIGHT}:rate=${FPS}`,
    '-vf', 'noise=alls=24:allf=t+u', '-t', '4', '-pix_fmt', 'yuv420p', '-y', file], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('ffmpeg could not make the noise video (SOURCES=pattern does without)');
  return file;
}

async function runSource(source, server) {
  const y4m = source === 'noise' ? noiseVideo() : null;
  const browser = await launchBrowser({ args: ['--use-fake-device-for-media-stream=fps=30', ...(y4m ? [`--use-file-for-fake-video-capture=${y4m}`] : [])] });
  const cdp = await browser.newBrowserCDPSession();
  const results = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 ? MODES : [...MODES].reverse();
      for (const mode of order) {
        const r = { source, ...await runMode(browser, cdp, server.url, mode, round) };
        results.push(r);
        process.stdout.write(`${source} round ${round} ${mode}: renderer ${pct(r.rendererCpuPerPage)} per page, all ${pct(r.allCpu)}, `
          + `${r.encodedFps.toFixed(1)} fps encoded, ${r.decodedFps.toFixed(1)} decoded, ${Math.round(r.sentKbps)} kbit/s, width ${r.sendWidth}, `
          + `transforms ${r.frameEncryption.map((f) => (f.transforming ? `${f.api}${f.active ? '' : ' (pass-through)'}` : 'none')).join('/')}\n`);
      }
    }
  } finally {
    await browser.close().catch(() => {});
    if (y4m) rmSync(path.dirname(y4m), { recursive: true, force: true });
  }
  return results;
}

let results = [];
if (process.env.REPORT_FROM) {
  // Only the report, again, from a run's results (RESULTS_JSON of that run).
  results = JSON.parse(readFileSync(process.env.REPORT_FROM, 'utf8'));
} else {
  const server = await startServer();
  try {
    for (const source of SOURCES) results.push(...await runSource(source, server));
  } finally {
    await server.kill().catch(() => {});
  }
  if (process.env.RESULTS_JSON) writeFileSync(process.env.RESULTS_JSON, JSON.stringify(results));
}
for (const r of results) {
  const ok = (f) => f.active === (r.mode === 'on') && f.transforming === (r.mode !== 'off');
  if (!r.frameEncryption.every(ok)) throw new Error(`round ${r.round} ${r.mode}: frame encryption was ${JSON.stringify(r.frameEncryption)}`);
}
const sections = [];
for (const source of [...new Set(results.map((r) => r.source))]) {
  const { text, ratios } = report(results.filter((r) => r.source === source), source);
  sections.push(text);
  for (const [mode, r] of Object.entries(ratios)) {
    process.stdout.write(`${source}: ${mode} against off: renderer CPU x${r.renderer.toFixed(3)}, all processes x${r.all.toFixed(3)}, per frame x${r.perFrame.toFixed(3)}\n`);
  }
}
writeResults(sections.join('\n\n'), machine(process.env.CHROMIUM || '/usr/bin/chromium'));
process.stdout.write(`written to ${resultsFile}\n`);
