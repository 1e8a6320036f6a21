# The room's echo through real ALSA devices: `roombox echo-check` plays a talker into the
# loopback's playback side (DEV=0) and records its capture side (DEV=1), the loopback being
# the echo path (the speaker heard by the microphone, delayed by the devices' buffers). With
# the box's processing the echo is reduced by at least 25 dB (the bound for the far
# end hearing itself); with every stage off it is not reduced at all, so the measure is real.
out=$VM_ARTIFACTS/echo-check
cfg=$VM_ARTIFACTS/echo-check-off.toml
"$ROOMBOX_BIN" echo-check --config /nonexistent \
  --audio-out alsa:plughw:CARD=Loopback,DEV=0 --audio-in alsa:plughw:CARD=Loopback,DEV=1 \
  --seconds 8 --save "$out" --min-erle 25 2>&1 | tee "$VM_ARTIFACTS/echo-check.log"
grep -q 'echo reduced by' "$VM_ARTIFACTS/echo-check.log"
ls "$out/played.wav" "$out/heard.wav" "$out/sent.wav"
printf 'echo_cancellation = false\nnoise_suppression = false\nauto_gain = false\nhigh_pass = false\n' >"$cfg"
"$ROOMBOX_BIN" echo-check --config "$cfg" \
  --audio-out alsa:plughw:CARD=Loopback,DEV=0 --audio-in alsa:plughw:CARD=Loopback,DEV=1 \
  --seconds 4 2>&1 | tee "$VM_ARTIFACTS/echo-check-off.log"
# Unprocessed, what is sent is what is heard: 0 dB.
grep -q 'after none: echo reduced by 0.0 dB' "$VM_ARTIFACTS/echo-check-off.log"
