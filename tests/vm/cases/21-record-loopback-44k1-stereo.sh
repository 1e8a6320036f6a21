# A device that only runs at 44.1 kHz stereo: the loopback's hw: capture side takes the
# format of what is playing into it, so a 44.1 kHz stereo tone makes DEV=1 a 44.1 kHz stereo
# device. The box opens it at that rate, mixes it down and resamples to 48 kHz: the tone keeps
# its pitch (1 kHz, not 1088 Hz) in the MKV. Video at 5 fps leaves the emulated CPU to the
# audio path this case is about (at 15 fps it lost over a second to overruns).
# Under the VM's emulated CPU the debug build cannot encode every frame: the file must hold
# exactly the frames the recorder reports writing (offered = written + dropped), and overruns
# may cost some audio (--audio-slack).
here=$(cd ../../record && pwd)
tone=$VM_ARTIFACTS/tone-44k1-stereo.wav
out=$VM_ARTIFACTS/loopback-44k1.mkv
python3 "$here/tone_wav.py" "$tone" --hz 1000 --rate 44100 --channels 2 --seconds 30
aplay -q -D hw:CARD=Loopback,DEV=0 "$tone" &
player=$!
trap 'kill $player 2>/dev/null || true' EXIT
sleep 0.5
"$ROOMBOX_BIN" record --video test --audio-in alsa:hw:CARD=Loopback,DEV=1 \
  --seconds 4 --width 320 --height 240 --fps 5 --out "$out" 2>&1 | tee "$VM_ARTIFACTS/loopback-44k1.log"
grep -q 'DEV=1: 44100 Hz, 2 ch.*resampled to 48000 Hz' "$VM_ARTIFACTS/loopback-44k1.log"
written=$(sed -n 's/.*offered, \([0-9]*\) written.*/\1/p' "$VM_ARTIFACTS/loopback-44k1.log")
python3 "$here/check_mkv.py" "$out" --width 320 --height 240 --fps 5 --seconds 4 --tone 1000 \
  --frames "$written" --audio-slack 1.0
