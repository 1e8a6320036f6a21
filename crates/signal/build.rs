// The web client is embedded with include_dir!; rebuild when any file under web/ changes.
fn main() {
    println!("cargo:rerun-if-changed=../../web");
}
