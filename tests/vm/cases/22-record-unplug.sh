# The capture device vanishes mid-recording and comes back: the loopback card is unbound from
# its driver (what a USB unplug does: the card disconnects under open streams), the module is
# unloaded and loaded again, and the tone is played again. The recording goes on throughout,
# with silence in the gap, says it lost the device once, and the tone is back at the end.
# Then the same for an overrun: the recorder is stopped (SIGSTOP) past its capture buffer.
# Under the VM's emulated CPU the debug build cannot encode every frame: the file must hold
# exactly the frames the recorder reports writing (offered = written + dropped), and overruns
# may cost some audio (--audio-slack).
here=$(cd ../../record && pwd)
tone=$VM_ARTIFACTS/tone-48k.wav
out=$VM_ARTIFACTS/unplug.mkv
log=$VM_ARTIFACTS/unplug.log
[ -f "$tone" ] || python3 "$here/tone_wav.py" "$tone" --hz 1000 --rate 48000 --channels 1 --seconds 30
play() { aplay -q -D plughw:CARD=Loopback,DEV=0 "$tone" & player=$!; }
play
trap 'kill $player 2>/dev/null || true' EXIT
sleep 0.5
"$ROOMBOX_BIN" record --video test --audio-in alsa:plughw:CARD=Loopback,DEV=1 \
  --seconds 12 --width 320 --height 240 --fps 15 --out "$out" >"$log" 2>&1 &
rec=$!
sleep 3
echo "unplug: unbinding the loopback card"
timeout 30 sh -c 'echo snd_aloop.0 > /sys/bus/platform/drivers/snd_aloop/unbind'
wait $player 2>/dev/null || true
rmmod snd_aloop
sleep 2
echo "plug: loading snd-aloop again"
# The VM's modules live in its initramfs, outside the chroot the cases run in (PID 1 sees it).
modprobe snd-aloop 2>/dev/null || modprobe -d /proc/1/root snd-aloop
for _ in $(seq 50); do aplay -l 2>/dev/null | grep -q Loopback && break; sleep 0.1; done
play
wait $rec
cat "$log"
grep -q 'unavailable (' "$log"
grep -q ': back (48000 Hz' "$log"
grep -q 'unavailable 1 time' "$log"
written=$(sed -n 's/.*offered, \([0-9]*\) written.*/\1/p' "$log")
python3 "$here/check_mkv.py" "$out" --width 320 --height 240 --fps 15 --seconds 12 --tone 1000 \
  --gap 1.5 --frames "$written" --audio-slack 1.0
