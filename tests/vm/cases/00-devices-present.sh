# The VM's virtual devices are there and `roombox devices` lists them: vivid's capture node and
# the loopback card in both directions, and no codec node among the capture inputs.
out=$("$ROOMBOX_BIN" devices)
echo "$out"
grep -q '^  v4l2:/dev/video0  vivid' <<<"$out"
grep -q 'alsa:plughw:CARD=Loopback,DEV=0' <<<"$(sed -n '/^Audio capture:/,/^Audio playback:/p' <<<"$out")"
grep -q 'alsa:plughw:CARD=Loopback,DEV=1' <<<"$(sed -n '/^Audio playback:/,$p' <<<"$out")"
if grep -q 'vicodec' <<<"$(sed -n '/^Video inputs:/,/^Audio capture:/p' <<<"$out")"; then
  echo "the codec node is listed as a video input"; exit 1
fi
json=$("$ROOMBOX_BIN" devices --json)
grep -q '"driver": "vivid"' <<<"$json"
