# V4L2 capture from vivid's HDMI input (src/capture/v4l2/vivid_tests.rs), one test at a time (they
# share the device): `roombox devices` shows the HDMI input with DV timings and signal "ok";
# frames come at the timings' size in YU12, NV12, YUYV and UYVY alike; a timings change
# mid-stream continues at the new size; no signal / no lock / out of range give the slate and
# the picture comes back by itself.
"$ROOMBOX_BIN" devices
"$ROOMBOX_BIN" devices | grep -Eq 'input 1 "HDMI.*": HDMI, timings [0-9]+x[0-9]+p[0-9.]+, signal ok'
bash ../unit-tests.sh vivid_
