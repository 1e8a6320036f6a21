# The V4L2 M2M encoder session (src/encode/v4l2m2m) against vicodec, a real stateful encoder
# driver (FWHT): frames in and coded frames out, a size change mid-stream, drain, and refusal of
# nodes that are not encoders; and the decoder session (src/remote_video/v4l2m2m) against
# vicodec's stateful decoder fed by its encoder: the picture format from the source-change
# event, every picture out, a resolution change mid-stream, the H.264 probe passing vicodec
# over. On vicodec's single-planar API (its default; the multi-planar one, which the Pi's
# bcm2835-codec uses, needs vicodec loaded with multiplanar=1 at boot:
# tests/vm/m2m-multiplanar.sh).
bash ../unit-tests.sh vicodec
# `auto` finds no H.264 encoder here (vicodec is FWHT) and says it falls back to openh264.
# The box keeps its room secret in its state directory: a fresh one of its own.
out=$(timeout 20 "$ROOMBOX_BIN" run --web off --state-dir "$(mktemp -d)" --signal-url http://127.0.0.1:9 --audio-in none 2>&1 || true)
echo "$out" | grep 'encoder:'
grep -q 'encoder: openh264 (no V4L2 M2M H.264 encoder found)' <<<"$out"
