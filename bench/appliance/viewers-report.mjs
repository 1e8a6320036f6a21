// Writes VIEWERS.md from viewers.mjs's JSON and the machine description run-viewers.sh gathered.
//   node viewers-report.mjs RESULT.json MACHINE.env VIEWERS.md
// Everything from the "kept across runs" marker on in an existing VIEWERS.md is kept.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const [resultPath, machinePath, outPath] = process.argv.slice(2);
const r = JSON.parse(readFileSync(resultPath, 'utf8'));
const m = Object.fromEntries(
  readFileSync(machinePath, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const MARKER = '<!-- Notes below this line are written by hand and kept across runs. -->';

const ms = (v) => (v === null || v === undefined ? 'n/a' : `${v} ms`);
const mb = (kb) => `${(kb / 1024).toFixed(1)} MB`;
const verdict = (ok) => (ok ? 'met' : '**missed**');
const g1 = r.one.glassToGlassMs;
const g5 = r.five.glassToGlassMs;
const join = r.joinSummary;
const cpu1 = r.one.box.cpuPct;
const cpu5 = r.five.box.cpuPct;
const rss5 = r.five.box.rssKb;
const perFrameMs = (b) => (b.sentFps ? (10 * b.cpuPct) / b.sentFps : NaN);
const perFrame = (b) => perFrameMs(b).toFixed(2);
const perFrameRatio = (perFrameMs(r.five.box) / perFrameMs(r.one.box)).toFixed(2);

const lines = [];
const add = (s = '') => lines.push(s);

add('# The box seen by viewers: latency, first frame, CPU and memory');
add();
add('`bash bench/appliance/run-viewers.sh` (about two and a half minutes). It builds the release');
add('`roombox` and `roombox-signal`, then runs `viewers.mjs` inside a network namespace that has only');
add('loopback: the signaling server, the box (`roombox run --video test --audio-in test --audio-out none');
add(`--width ${r.config.width} --height ${r.config.height} --fps ${r.config.fps} --ice-loopback\`) and headless Chromium pages`);
add(`(viewport ${r.config.viewport}) that join the room like people do, through the web client. The per-frame`);
add('encode cost is measured separately (`run.sh`, `RESULTS.md`).');
add();
add('## Results');
add();
add('| Measure | Result | Goal | |');
add('|---|---|---|---|');
add(`| Glass-to-glass, 1 viewer (p50 / p95 / max) | ${g1.p50} / ${g1.p95} / ${g1.max} ms | < 100 ms | ${verdict(g1.p95 < 100)} |`);
add(`| Glass-to-glass, 5 viewers, read on viewer 1 (p50 / p95 / max) | ${g5.p50} / ${g5.p95} / ${g5.max} ms | < 100 ms | ${verdict(g5.p95 < 100)} |`);
add(`| Join click to first frame (median of ${join.n}; min / max) | ${join.p50} ms (${join.min} / ${join.max}) | < 1000 ms | ${verdict(join.p50 < 1000)} |`);
add(`| Box CPU, 1 viewer (of one core) | ${cpu1}% | | |`);
add(`| Box CPU, 5 viewers (of one core) | ${cpu5}% | | |`);
// A box that had no core to run on skipped frames: its CPU then says nothing about fan-out cost.
const starved = [r.one.box, r.five.box].some((b) => !(b.sentFps >= 0.9 * r.config.fps));
add(`| CPU 5 viewers / 1 viewer | ${r.cpuRatio}x | <= 1.3x | ${starved ? '**not judged**: the box was starved of CPU and sent fewer frames (next row)' : verdict(r.cpuRatio <= 1.3)} |`);
add(`| Frames sent per second, 1 / 5 viewers | ${r.one.box.sentFps} / ${r.five.box.sentFps} | ${r.config.fps} | |`);
add(`| Box CPU per frame sent, 1 / 5 viewers | ${perFrame(r.one.box)} / ${perFrame(r.five.box)} ms (${perFrameRatio}x) | | |`);
add(`| Box resident memory (VmRSS), 5 viewers | ${mb(rss5)} (peak VmHWM ${mb(r.five.box.hwmKb)}) | < 60 MB | ${verdict(rss5 < 60 * 1024)} |`);
add();
add('Glass-to-glass is judged on its p95. One run; earlier runs and the causes of misses are in the notes below.');
add();
add('## Machine and load');
add();
add(`${m.cpu}, ${m.cores} cores, ${m.mem} memory, Linux ${m.kernel}; ${m.rustc}; ${m.chromium}; Node ${m.node};`);
add(`commit ${m.commit}; ${m.date}. Load average before the run: ${m.loadavg_before}.`);
add();
add('Everything shares these cores: the box, the signaling server and up to three Chromium');
add('processes (one page measuring, and with 5 viewers four more pages, each decoding 720p30 H.264 in');
add('software), and whatever else runs on the machine. Viewers 2-5 stand for people on other machines,');
add('so their two browsers run under `SCHED_IDLE`; the box and the measuring page run at normal');
add('priority. Machine load during each window ("run-queue wait": how long the box\'s threads were');
add('runnable but had no core, summed over its threads, per second):');
add();
add('| Window | Box CPU (per-second p50 / min / max) | Box run-queue wait | Chromium CPU: measuring / other viewers | Machine busy (all cores) | Load average |');
add('|---|---|---|---|---|---|');
for (const [label, w] of [['idle (no viewer, 5 s)', r.idle], ['1 viewer', r.one.box], ['5 viewers', r.five.box]]) {
  const p = w.cpuPerSecond;
  const wait = Object.values(w.threadsRunqueueWait ?? {}).reduce((a, t) => a + t.msPerS, 0);
  add(`| ${label} | ${w.cpuPct}% (${p.p50} / ${p.min} / ${p.max}) | ${wait.toFixed(0)} ms/s | ${w.machine.chromiumMeasuringPct}% / ${w.machine.chromiumOthersPct}% | ${w.machine.busyPct}% of ${w.machine.cores} | ${w.machine.loadavg} |`);
}
add();
add('CPU is utime + stime from `/proc/PID/stat` over the window, in percent of one core; memory is');
add('`VmRSS` from `/proc/PID/status` at the end of the window. Box threads (percent of one core):');
add();
const threadNames = [...new Set([...Object.keys(r.one.box.threadsPct), ...Object.keys(r.five.box.threadsPct)])]
  .sort((a, b) => (r.five.box.threadsPct[b] ?? 0) - (r.five.box.threadsPct[a] ?? 0));
add('| Thread | CPU idle / 1 / 5 viewers | Run-queue wait idle / 1 / 5 viewers (ms/s) |');
add('|---|---|---|');
for (const t of threadNames) {
  const v = [r.idle, r.one.box, r.five.box].map((w) => w.threadsPct[t] ?? 0);
  const q = [r.idle, r.one.box, r.five.box].map((w) => w.threadsRunqueueWait?.[t]?.msPerS ?? 0);
  if (v.every((x) => x < 0.05)) continue;
  add(`| ${t} | ${v.map((x) => `${x}%`).join(' / ')} | ${q.join(' / ')} |`);
}
add();
add(`Encoder target bitrate in the windows (kbit/s, from the box's status lines): 1 viewer ${r.one.box.targetKbps.join(', ')}; 5 viewers ${r.five.box.targetKbps.join(', ')}.`);
add(`"The encoder cannot keep up" warnings: 1 viewer ${r.one.box.encoderSkipWarnings}, 5 viewers ${r.five.box.encoderSkipWarnings}.`);
add();
add(`Memory: idle ${mb(r.idle.rssKb)}, 1 viewer ${mb(r.one.box.rssKb)}, 5 viewers ${mb(rss5)} (anonymous ${mb(r.five.box.anonKb)}, file-backed ${mb(r.five.box.fileKb)}).`);
add();
add('## Glass-to-glass latency');
add();
add('Each page draws the box\'s tile `<video>` into a canvas on every `requestVideoFrameCallback`, reads');
add('the test pattern\'s 24-bit frame code back from the two rows of blocks (row 2 must be the inverse of');
add('row 1, else the frame is rejected), and computes `latency = (performance.timeOrigin + now) -');
add('(frame0_unix_ms + n * 1000 / fps)`, where `frame0_unix_ms` is the test pattern\'s log line');
add('"test pattern clock: frame 0 due at" and `n` the decoded counter. Same machine, same clock');
add(`(\`performance.timeOrigin + now()\` minus \`Date.now()\` at the end: ${r.one.clockSkewMs} ms).`);
add();
add('The figure includes: the capture pacing (the source thread\'s wake-up after the frame\'s due time');
add('and rendering the pattern), waiting in the mailbox for the encoder, the H.264 encode, the');
add('driver\'s hand-off, RTP packetization and str0m\'s send pacing, the loopback UDP hop, Chromium\'s');
add('receive path, jitter buffer, decode and rendering up to the `requestVideoFrameCallback` (about');
add('when the frame is handed to the compositor; the screen\'s scan-out is not in it, headless has none).');
add();
add('| Part (ms) | 1 viewer p50 / p95 / max | 5 viewers p50 / p95 / max |');
add('|---|---|---|');
const row = (label, a, b) => add(`| ${label} | ${a.p50} / ${a.p95} / ${a.max} | ${b.p50} / ${b.p95} / ${b.max} |`);
row('Due time to callback (glass-to-glass)', g1, g5);
row('Due time to expected display', r.one.toExpectedDisplayMs, r.five.toExpectedDisplayMs);
if (r.one.dueToReceiveMs.n) row('Due time to last packet received (box + network)', r.one.dueToReceiveMs, r.five.dueToReceiveMs);
if (r.one.receiveToPresentMs.n) row('Received to presented (jitter buffer, decode, render)', r.one.receiveToPresentMs, r.five.receiveToPresentMs);
if (r.one.rvfcProcessingMs.n) row('Decode (processingDuration)', r.one.rvfcProcessingMs, r.five.rvfcProcessingMs);
add();
const w1 = r.one.webrtc;
const w5 = r.five.webrtc;
add('From getStats on the measuring page over the same windows (1 viewer / 5 viewers):');
add(`frames read ${r.one.framesRead} / ${r.five.framesRead} (${r.one.readFps} / ${r.five.readFps} fps, unreadable ${r.one.unreadable} / ${r.five.unreadable},`);
add(`counter gaps ${r.one.counterGaps} / ${r.five.counterGaps}); jitter buffer ${ms(w1?.jitterBufferMs)} / ${ms(w5?.jitterBufferMs)};`);
add(`decode ${ms(w1?.decodeMs)} / ${ms(w5?.decodeMs)}; receive-to-decoded (totalProcessingDelay) ${ms(w1?.processingMs)} / ${ms(w5?.processingMs)};`);
add(`${w1?.kbps} / ${w5?.kbps} kbit/s at ${w1?.frameSize}; keyframes ${w1?.keyFrames} / ${w5?.keyFrames}; frames dropped ${w1?.framesDropped} / ${w5?.framesDropped}; freezes ${w1?.freezes} / ${w5?.freezes};`);
add(`packets lost ${w1?.packetsLost} / ${w5?.packetsLost}; NACKs ${w1?.nacks} / ${w5?.nacks}; PLIs ${w1?.plis} / ${w5?.plis}; RTT ${ms(w1?.rttMs)} / ${ms(w5?.rttMs)}; decoder ${w1?.decoder}.`);
add();
add('## Join to first frame');
add();
add(`${r.joins.length} joins, one after the other, each a new browser context on the room page with nobody else in`);
add('the room but the box (whose encoder idles without viewers). Measured in the page from the click on');
add('Join (a capturing click listener) to the first `requestVideoFrameCallback` of the box\'s tile');
add('video; in between: microphone, WebSocket and join, offer/answer through the server, ICE, DTLS,');
add('SRTP, the keyframe the box sends a new viewer, decode and render.');
add();
add('| Join | Click to track | Click to first frame |');
add('|---|---|---|');
r.joins.forEach((j, i) => add(`| ${i + 1} | ${j.clickToTrackMs} ms | ${j.clickToFirstFrameMs} ms (${j.firstFrameSize}) |`));
add();
if (r.boxWarnings?.length) {
  add('Warnings the box logged:');
  add();
  add('```');
  for (const l of r.boxWarnings) add(l.replace(/^\S+\s+/, ''));
  add('```');
  add();
}

let kept = `${MARKER}\n\n## Notes\n\n(none yet)\n`;
if (existsSync(outPath)) {
  const old = readFileSync(outPath, 'utf8');
  const at = old.indexOf(MARKER);
  if (at >= 0) kept = old.slice(at);
}
writeFileSync(outPath, `${lines.join('\n')}\n${kept}`);
