//! Tests against the kernel's vivid driver (its HDMI input: DV timings, source-change events, a
//! signal-mode control). They need the device, so they are ignored on the build machine and run
//! by tests/vm/v4l2.sh inside the test VM, one at a time (they share the one vivid device).

use super::capture::V4l2Capture;
use super::convert::PixelLayout;
use super::device::{c_string, open_node};
use super::signal::NoPicture;
use super::slate;
use crate::capture::{InputState, VideoOptions, VideoSource};
use crate::media::frame::{FramePool, VideoFrame};
use std::fs::File;
use std::time::{Duration, Instant};
use v4l2r::bindings;
use v4l2r::ioctl::{self, CtrlId, QueryCtrlFlags};

const NAME: &str = "Board Room";

/// The vivid node with an HDMI input, as `roombox devices` finds it.
fn vivid() -> String {
    let inv = crate::devices::discover();
    inv.video
        .iter()
        .find(|v| v.driver == "vivid" && v.inputs.iter().any(|i| i.kind == "HDMI"))
        .unwrap_or_else(|| panic!("no vivid node with an HDMI input: {inv:#?}"))
        .path
        .clone()
}

fn options() -> VideoOptions {
    VideoOptions {
        width: 640,
        height: 360,
        fps: 30,
        box_name: NAME.into(),
    }
}

fn open(path: &str, layout: Option<PixelLayout>) -> V4l2Capture {
    V4l2Capture::open(path, &options(), layout, FramePool::default()).expect("opens")
}

/// vivid's own controls, found by name on a second handle (as another program would).
struct Controls {
    file: File,
}

impl Controls {
    fn new(path: &str) -> Self {
        Self {
            file: open_node(path).expect("second handle"),
        }
    }

    fn id(&self, name: &str) -> u32 {
        let mut id = 0;
        loop {
            let q: bindings::v4l2_queryctrl = ioctl::queryctrl(
                &self.file,
                CtrlId::new(id).expect("control id"),
                QueryCtrlFlags::NEXT,
            )
            .unwrap_or_else(|e| panic!("no control {name:?}: {e}"));
            if c_string(&q.name) == name {
                return q.id;
            }
            id = q.id;
        }
    }

    /// The menu entries of a control: (index, name).
    fn menu(&self, id: u32) -> Vec<(u32, String)> {
        (0..64)
            .filter_map(|i| {
                let m: bindings::v4l2_querymenu = ioctl::querymenu(&self.file, id, i).ok()?;
                // SAFETY: menu controls (not integer menus) fill `name`.
                Some((i, c_string(unsafe { &m.__bindgen_anon_1.name })))
            })
            .collect()
    }

    fn set(&self, name: &str, value: i32) {
        let id = self.id(name);
        ioctl::s_ctrl(&self.file, id, value).unwrap_or_else(|e| panic!("set {name}: {e}"));
    }

    /// "DV Timings Signal Mode" by its menu name ("Current DV Timings", "No Signal", ...).
    fn signal_mode(&self, mode: &str) {
        let id = self.id("DV Timings Signal Mode");
        let (index, _) = self
            .menu(id)
            .into_iter()
            .find(|(_, n)| n == mode)
            .unwrap_or_else(|| panic!("no signal mode {mode:?}"));
        ioctl::s_ctrl(&self.file, id, index as i32).expect("set signal mode");
    }
}

/// The size an entry of vivid's "DV Timings" menu names ("640x480p59.94 ..." -> 640x480).
fn menu_size(entry: &str) -> Option<(u32, u32)> {
    let (w, rest) = entry.split_once('x')?;
    let h: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((w.trim().parse().ok()?, h.parse().ok()?))
}

/// The timings the HDMI input is set to (`VIDIOC_G_DV_TIMINGS`).
fn current_timings(path: &str) -> super::timings::DvTimings {
    let file = open_node(path).expect("handle");
    ioctl::g_dv_timings::<bindings::v4l2_dv_timings>(&file)
        .expect("G_DV_TIMINGS")
        .into()
}

/// Frames until `done` says stop (or the time is up, which fails the test).
fn frames_until(
    source: &mut V4l2Capture,
    limit: Duration,
    mut done: impl FnMut(&VideoFrame, &V4l2Capture) -> bool,
) -> VideoFrame {
    let deadline = Instant::now() + limit;
    loop {
        let frame = source.next_frame().expect("frame");
        if done(&frame, source) {
            return frame;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?}: {} ({}x{})",
            source.describe(),
            frame.width,
            frame.height
        );
    }
}

/// The slate for a size and reason, drawn once per test run (drawing is slow under TCG).
fn expected_slate(w: u32, h: u32, reason: NoPicture) -> std::rc::Rc<Vec<u8>> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    type Drawn = HashMap<(u32, u32, NoPicture), std::rc::Rc<Vec<u8>>>;
    thread_local!(static DRAWN: RefCell<Drawn> = RefCell::default());
    DRAWN.with(|d| {
        d.borrow_mut()
            .entry((w, h, reason))
            .or_insert_with(|| std::rc::Rc::new(slate::render(w, h, NAME, reason)))
            .clone()
    })
}

/// A real picture: not the slate, not one flat colour, vivid's colour bars across a middle line.
fn assert_real_picture(frame: &VideoFrame, source: &V4l2Capture) {
    assert_eq!(source.no_picture(), None, "{}", source.describe());
    let (w, h) = (frame.width, frame.height);
    assert_ne!(frame.data, *expected_slate(w, h, NoPicture::NoSignal));
    let y = frame.planes().0;
    let row = &y[(h / 2 * w) as usize..((h / 2 + 1) * w) as usize];
    let mut levels: Vec<u8> = row.iter().map(|&p| p / 16).collect();
    levels.sort_unstable();
    levels.dedup();
    assert!(
        levels.len() >= 4,
        "middle line has only {levels:?} luma levels"
    );
}

#[test]
#[ignore = "needs vivid: run by tests/vm"]
fn vivid_devices_lists_the_hdmi_input_with_timings() {
    let path = vivid();
    Controls::new(&path).signal_mode("Current DV Timings");
    let inv = crate::devices::discover();
    let dev = inv.video.iter().find(|v| v.path == path).expect("listed");
    let hdmi = dev.inputs.iter().find(|i| i.kind == "HDMI").expect("HDMI");
    let timings = hdmi.dv_timings.as_deref().expect("timings");
    let (w, h) = menu_size(timings).expect("WxH");
    assert!(w >= 640 && h >= 480, "{timings}");
    assert!(timings.contains('p') || timings.contains('i'), "{timings}");
    assert_eq!(hdmi.signal, "ok");
    assert!(
        dev.inputs.iter().any(|i| i.kind == "camera"),
        "{:?}",
        dev.inputs
    );
    for f in ["YUYV", "UYVY", "NV12"] {
        assert!(
            dev.formats.iter().any(|x| x == f),
            "{f} in {:?}",
            dev.formats
        );
    }
    println!("{}", crate::devices::report(&inv));
}

#[test]
#[ignore = "needs vivid: run by tests/vm"]
fn vivid_hdmi_capture_comes_at_the_dv_timings_size() {
    let path = vivid();
    Controls::new(&path).signal_mode("Current DV Timings");
    let mut source = open(&path, None);
    let t = current_timings(&path);
    for _ in 0..5 {
        let frame = source.next_frame().expect("frame");
        assert_eq!((frame.width, frame.height), (t.width, t.height), "{t:?}");
        assert_real_picture(&frame, &source);
    }
    println!("{} at {t:?}", source.describe());
}

#[test]
#[ignore = "needs vivid: run by tests/vm"]
fn vivid_every_format_gives_the_same_picture() {
    // The same colour bars captured as YUYV, UYVY, NV12 and YU12 convert to the same I420:
    // the conversions agree on a real driver's buffers (strides, plane offsets).
    let path = vivid();
    Controls::new(&path).signal_mode("Current DV Timings");
    let mut bars: Vec<(PixelLayout, Vec<u8>)> = Vec::new();
    for layout in [
        PixelLayout::Yu12,
        PixelLayout::Nv12,
        PixelLayout::Yuyv,
        PixelLayout::Uyvy,
    ] {
        let mut source = open(&path, Some(layout));
        assert!(
            source
                .describe()
                .contains(&*String::from_utf8_lossy(&layout.fourcc())),
            "{}",
            source.describe()
        );
        let frame = source.next_frame().expect("frame");
        assert_real_picture(&frame, &source);
        // Luma and chroma of a line through the bars, three quarters down (below vivid's text).
        let (w, h) = (frame.width as usize, frame.height as usize);
        let (y, u, _) = frame.planes();
        let row = h * 3 / 4;
        let mut line = y[row * w..(row + 1) * w].to_vec();
        line.extend_from_slice(&u[row / 2 * (w / 2)..(row / 2 + 1) * (w / 2)]);
        bars.push((layout, line));
    }
    let (first, reference) = &bars[0];
    for (layout, line) in &bars[1..] {
        let worst = reference
            .iter()
            .zip(line)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        // Packed 4:2:2 averages chroma over two lines; the bars are vertical, so that is exact
        // but for rounding.
        assert!(worst <= 2, "{layout:?} differs from {first:?} by {worst}");
    }
}

#[test]
#[ignore = "needs vivid: run by tests/vm"]
fn vivid_timings_change_mid_stream_continues_at_the_new_size() {
    let path = vivid();
    let controls = Controls::new(&path);
    controls.signal_mode("Current DV Timings");
    let mut source = open(&path, None);
    let before = current_timings(&path);
    let first = source.next_frame().expect("frame");
    assert_eq!((first.width, first.height), (before.width, before.height));

    // Another program (an HDMI source switching modes) changes the timings while we stream.
    let timings_id = controls.id("DV Timings");
    let (index, entry) = controls
        .menu(timings_id)
        .into_iter()
        .find(|(_, n)| {
            menu_size(n).is_some_and(|(w, h)| w <= 1280 && (w, h) != (before.width, before.height))
        })
        .expect("a different size in the DV Timings menu");
    let (w, h) = menu_size(&entry).expect("size");
    controls.signal_mode("Selected DV Timings");
    controls.set("DV Timings", index as i32);

    let frame = frames_until(&mut source, Duration::from_secs(20), |f, _| {
        (f.width, f.height) != (before.width, before.height)
    });
    assert_eq!((frame.width, frame.height), (w, h), "switched to {entry}");
    // And it keeps going at the new size with a real picture.
    for _ in 0..3 {
        let f = source.next_frame().expect("frame");
        assert_eq!((f.width, f.height), (w, h));
        assert_real_picture(&f, &source);
    }
    println!("{}: {before:?} -> {entry}", source.describe());
    controls.signal_mode("Current DV Timings");
}

#[test]
#[ignore = "needs vivid: run by tests/vm"]
fn vivid_no_signal_gives_the_slate_and_the_picture_comes_back() {
    let path = vivid();
    let controls = Controls::new(&path);
    controls.signal_mode("Current DV Timings");
    let mut source = open(&path, None);
    let frame = source.next_frame().expect("frame");
    assert_real_picture(&frame, &source);
    let (w, h) = (frame.width, frame.height);

    for (mode, reason) in [
        ("No Signal", NoPicture::NoSignal),
        ("No Lock", NoPicture::NoLock),
        ("Out of Range", NoPicture::OutOfRange),
    ] {
        controls.signal_mode(mode);
        frames_until(&mut source, Duration::from_secs(10), |_, s| {
            s.no_picture() == Some(reason)
        });
        // Frames keep coming, paced at the configured 30 fps, at the last size, showing the
        // slate with the box's name and the reason.
        let mut pts = Vec::new();
        for _ in 0..15 {
            let f = source.next_frame().expect("slate frame");
            assert_eq!((f.width, f.height), (w, h));
            assert!(
                f.data == *expected_slate(w, h, reason),
                "{mode}: not the slate"
            );
            pts.push(f.pts);
        }
        // Paced, not a burst: 14 intervals at 30 fps are 467 ms; allow for the emulated CPU's
        // jitter (a burst would be a few ms), so this is no timing benchmark.
        let span = pts[14] - pts[0];
        assert!(
            span >= Duration::from_millis(14 * 20),
            "14 slate intervals in {span:?}"
        );
        // What the status screen and settings page are told.
        assert_eq!(source.input_state(), Some(InputState::NoSignal), "{mode}");

        controls.signal_mode("Current DV Timings");
        let back = frames_until(&mut source, Duration::from_secs(10), |_, s| {
            s.no_picture().is_none()
        });
        assert_real_picture(&back, &source);
        assert_eq!((back.width, back.height), (w, h));
        assert!(
            matches!(source.input_state(), Some(InputState::Picture { width, height, fps_x100 })
                if (width, height) == (w, h) && fps_x100 > 2000),
            "{:?}",
            source.input_state()
        );
    }
}
