//! The benchmarks' flags: `--name value`, looked up by name.

/// The value after `name` on the command line, if `name` is there.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).map(|i| {
        args.get(i + 1)
            .unwrap_or_else(|| panic!("{name} needs a value"))
            .clone()
    })
}
