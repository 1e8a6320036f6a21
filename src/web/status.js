// Refreshes the status block every 3 seconds (the rest of the page is plain forms).
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
