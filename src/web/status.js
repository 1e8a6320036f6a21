// Refreshes the status block every 3 seconds and the audio meters 4 times a second (the rest
// of the page is plain forms).
'use strict';
const box = document.getElementById('status');
async function refresh() {
  try {
    const res = await fetch('/status', { credentials: 'same-origin', cache: 'no-store' });
    if (res.status === 401) return; // logged out elsewhere: stop
    if (res.ok) box.innerHTML = await res.text();
  } catch (e) {
    // the box restarts or the network blinks: try again next time
  }
  setTimeout(refresh, 3000);
}
if (box) setTimeout(refresh, 3000);

const levels = document.getElementById('levels');
function show(name, dbfs) {
  document.getElementById('m-' + name).value = dbfs;
  document.getElementById('v-' + name).textContent = dbfs <= -90 ? 'silent' : dbfs.toFixed(0) + ' dBFS';
}
async function meters() {
  try {
    // Hidden tabs do not poll.
    if (!document.hidden) {
      const res = await fetch('/api/levels', { credentials: 'same-origin', cache: 'no-store' });
      if (res.status === 401) return;
      if (res.ok) {
        const l = await res.json();
        show('mic', l.mic_dbfs);
        show('sent', l.sent_dbfs);
        show('speaker', l.speaker_dbfs);
        const echo = l.echo_erle_db === null ? 'off or converging'
          : `${l.echo_erle_db.toFixed(0)} dB removed, echo delay ${l.echo_delay_ms} ms` +
            (l.clock_drift_ppm === null ? '' : `, clocks ${l.clock_drift_ppm.toFixed(0)} ppm apart (compensated)`);
        document.getElementById('v-echo').textContent = l.mic === 'muted' ? 'muted; ' + echo : echo;
      }
    }
  } catch (e) {
    // try again next time
  }
  setTimeout(meters, 250);
}
if (levels) meters();
