# `roombox record` from vivid's HDMI input and the loopback card, as an installer would run it,
# while the source misbehaves the way HDMI does: it starts at 640x480p59, switches to
# 720x480p59 mid-recording, then loses its signal and gets it back. The MKV must decode (ffmpeg)
# frame for frame, change size once, show the no-signal slate in the gap and the picture after,
# and carry the tone played into the loopback. The recorder's own report gives the frames
# offered and dropped (what bench/capture quotes for a recording in the VM).
cd "$(dirname "$0")/../../record"
dev=/dev/video0
out=$VM_ARTIFACTS/hdmi.mkv
log=$VM_ARTIFACTS/hdmi.log
ctl() { v4l2-ctl -d "$dev" "$@"; }
ctl -i 1 >/dev/null
ctl -c dv_timings_signal_mode=4 -c dv_timings=0 # "Selected DV Timings": 640x480p59

python3 tone_wav.py "$VM_ARTIFACTS/tone-hdmi.wav" --hz 1000 --rate 48000 --channels 1 --seconds 40
aplay -q -D plughw:CARD=Loopback,DEV=0 "$VM_ARTIFACTS/tone-hdmi.wav" &
player=$!
trap 'kill $player 2>/dev/null || true' EXIT
sleep 0.5

"$ROOMBOX_BIN" record --video v4l2:$dev --audio-in alsa:plughw:CARD=Loopback,DEV=1 \
  --fps 10 --seconds 14 --name "Board Room" --encoder openh264 --out "$out" >"$log" 2>&1 &
rec=$!
# The timings change comes 5 s into the recording itself, however long the recorder took to
# start on a loaded machine (the encoder keeps only the latest frame, as in the box).
for _ in $(seq 300); do grep -q 'H.264\|encoder: ' "$log" 2>/dev/null && break; sleep 0.1; done
sleep 5
ctl -c dv_timings=2 # 720x480p59: a source-change event, the stream restarts at the new size
sleep 3
ctl -c dv_timings_signal_mode=1 # No Signal
sleep 3
ctl -c dv_timings_signal_mode=4 # back
wait $rec
cat "$log"
grep -q 'sending the slate' "$log"
written=$(sed -n 's/.*offered, \([0-9]*\) written.*/\1/p' "$log")
python3 check_hdmi_mkv.py "$out" --sizes 640x480,720x480 --frames "$written"
python3 check_mkv.py "$out" --width 640 --height 480 --fps 10 --seconds 14 --tone 1000 \
  --frames "$written" --audio-slack 1.5
