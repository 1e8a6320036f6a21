# board/: the EDID loader puts each EDID on vivid's HDMI input (input 1) and reads it back, and
# refuses the webcam input; asound.conf's default device plays and records 48 kHz mono on the
# loopback card once the card carries the id 99-roombox.rules gives a speakerphone.
cd "$(dirname "$0")/../../.." # the tree's root: board/ and tests/board/ are used from there
for f in board/edid/*.txt; do
  ROOMBOX_HDMI_DEVICE=/dev/video0 ROOMBOX_EDID_PAD=1 ROOMBOX_EDID="$f" sh board/roombox-edid
done
if ROOMBOX_HDMI_DEVICE=/dev/video0 ROOMBOX_EDID_PAD=0 ROOMBOX_EDID=board/edid/1080p60.txt \
  sh board/roombox-edid; then
  echo "the webcam input took an EDID"; exit 1
fi

# The udev rule's ATTR{id}="Speakerphone", done by hand: the card's id is writable in sysfs.
# Without a newline, as udev writes it (the kernel refuses any character but [A-Za-z0-9_-]).
card=$(dirname "$(grep -lx Loopback /sys/class/sound/card*/id | head -n1)")
printf %s Speakerphone >"$card/id"
grep -qx Speakerphone "$card/id"

work=$(mktemp -d)
export HOME=$work # alsa-lib reads ~/.asoundrc: board/asound.conf without touching /etc
cp board/asound.conf "$HOME/.asoundrc"
python3 tests/board/tone.py write "$work/tone.wav" 440
# alsa-lib's stock default is card 0, which here is the loopback card itself: point it at a
# card that does not exist, so only asound.conf's default (which names the card) can pass.
export ALSA_CARD=NoSuchCard
if HOME=/nonexistent aplay -q -D default "$work/tone.wav" 2>/dev/null; then
  echo "the stock default device works too: this test would not tell"; exit 1
fi

# Loopback: what is played on DEV=0 is captured on DEV=1 and the other way round.
# default (playback) -> DEV=1
arecord -q -D plughw:CARD=Speakerphone,DEV=1 -r 48000 -c 1 -f S16_LE -d 3 "$work/out1.wav" &
rec=$!
sleep 0.5
aplay -q -D default "$work/tone.wav"
wait $rec
python3 tests/board/tone.py check "$work/out1.wav" 440

# DEV=1 -> default (capture)
arecord -q -D default -r 48000 -c 1 -f S16_LE -d 3 "$work/out2.wav" &
rec=$!
sleep 0.5
aplay -q -D plughw:CARD=Speakerphone,DEV=1 "$work/tone.wav"
wait $rec
python3 tests/board/tone.py check "$work/out2.wav" 440
