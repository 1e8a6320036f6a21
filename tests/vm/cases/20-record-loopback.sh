# `roombox record` from the ALSA loopback: a 1 kHz tone played into DEV=0 is captured from
# DEV=1 (48 kHz mono through plughw) into the MKV, and ffmpeg finds the tone in it.
# Under the VM's emulated CPU the debug build cannot encode every frame: the file must hold
# exactly the frames the recorder reports writing (offered = written + dropped), and overruns
# may cost some audio (--audio-slack).
here=$(cd ../../record && pwd)
tone=$VM_ARTIFACTS/tone-48k.wav
out=$VM_ARTIFACTS/loopback.mkv
python3 "$here/tone_wav.py" "$tone" --hz 1000 --rate 48000 --channels 1 --seconds 30
aplay -q -D plughw:CARD=Loopback,DEV=0 "$tone" &
player=$!
trap 'kill $player 2>/dev/null || true' EXIT
sleep 0.5
"$ROOMBOX_BIN" record --video test --audio-in alsa:plughw:CARD=Loopback,DEV=1 \
  --seconds 4 --width 320 --height 240 --fps 15 --out "$out" 2>&1 | tee "$VM_ARTIFACTS/loopback.log"
grep -q 'audio input alsa:plughw:CARD=Loopback,DEV=1: 48000 Hz, 1 ch' "$VM_ARTIFACTS/loopback.log"
written=$(sed -n 's/.*offered, \([0-9]*\) written.*/\1/p' "$VM_ARTIFACTS/loopback.log")
python3 "$here/check_mkv.py" "$out" --width 320 --height 240 --fps 15 --seconds 4 --tone 1000 \
  --frames "$written" --audio-slack 1.0
