//! What the C tests share: the strict flags every generated file must compile with, and
//! running a test program with its input fed from a thread (its output could fill the pipe
//! while the input is still being written).

use std::io::Write as _;
use std::process::{Command, Stdio};

/// `cc` flags of the host builds (the generated Makefile uses the same).
pub const STRICT_CFLAGS: &[&str] = &[
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-ffp-contract=off",
];

/// Runs `cmd` with `input` on stdin; its stdout. Panics with the stderr when it fails.
pub fn run_with_input(cmd: &mut Command, input: &str) -> String {
    let mut child = cmd
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_string();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("test program output");
    feeder.join().expect("input thread").expect("input written");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}
