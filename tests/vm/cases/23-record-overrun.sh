# An overrun: the recorder is frozen (SIGSTOP) for longer than its 100 ms capture buffer. The
# capture recovers, counts and logs it, and the recording completes with the tone after it.
here=$(cd ../../record && pwd)
tone=$VM_ARTIFACTS/tone-48k.wav
out=$VM_ARTIFACTS/overrun.mkv
log=$VM_ARTIFACTS/overrun.log
[ -f "$tone" ] || python3 "$here/tone_wav.py" "$tone" --hz 1000 --rate 48000 --channels 1 --seconds 30
aplay -q -D plughw:CARD=Loopback,DEV=0 "$tone" &
player=$!
trap 'kill $player 2>/dev/null || true' EXIT
sleep 0.5
"$ROOMBOX_BIN" record --video test --audio-in alsa:plughw:CARD=Loopback,DEV=1 \
  --seconds 5 --width 320 --height 240 --fps 15 --out "$out" >"$log" 2>&1 &
rec=$!
sleep 2
kill -STOP $rec; sleep 0.5; kill -CONT $rec
wait $rec
cat "$log"
grep -q 'overrun (recovered' "$log"
grep -Eq '[1-9][0-9]* overruns' "$log"
ffprobe -v error -show_entries format=duration -of csv=p=0 "$out"
