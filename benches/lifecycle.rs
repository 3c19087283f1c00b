//! What loading WaveJam costs a host, measured on the built bundle through the real CLAP entry
//! point, each run in a fresh process (so every instance is a DAW's first):
//! - a plugin scan: instantiate and destroy (no activation), and the threads it leaves;
//! - the first instance's `activate()` (with the start of processing);
//! - the long-term memory: from that activation until it is built (it builds in the
//!   background; the thread that builds it ends then), and the resident memory it adds.
//!
//! Run: `cargo xtask bundle wavejam --release && cargo bench --bench lifecycle`.
//! `WAVEJAM_BENCH_RUNS` sets the number of fresh processes (default 5).

#[path = "../tests/common/clap_host.rs"]
mod clap_host;

use std::time::{Duration, Instant};

use clap_host::{long_term_memory_building, Host};

/// Set in the child processes, which measure once and print one line.
const CHILD: &str = "WAVEJAM_LIFECYCLE_CHILD";

/// This process' resident memory, in bytes.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // NOTE: 4 KiB pages, as on every x86-64 and most aarch64 Linux systems.
    pages * 4096
}

/// Threads of this process whose name starts with `wavejam`.
fn wavejam_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|name| name.starts_with("wavejam"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// One measurement: scan µs, threads left by the scan, activate µs, memory ready ms, memory MB.
fn measure_once() -> (f64, usize, f64, f64, f64) {
    let host = Host::load();
    let scan = Instant::now();
    drop(host.instantiate());
    let scan_us = scan.elapsed().as_secs_f64() * 1e6;
    std::thread::sleep(Duration::from_millis(50));
    let scan_threads = wavejam_threads();
    let mut inst = host.instantiate();
    let before = resident_bytes();
    let activate = Instant::now();
    inst.activate(48_000.0, 512);
    let activate_us = activate.elapsed().as_secs_f64() * 1e6;
    // The building thread names itself once it runs.
    while !long_term_memory_building() && activate.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_micros(200));
    }
    while long_term_memory_building() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let ready_ms = activate.elapsed().as_secs_f64() * 1e3;
    let memory_mb = resident_bytes().saturating_sub(before) as f64 / 1e6;
    inst.deactivate();
    (scan_us, scan_threads, activate_us, ready_ms, memory_mb)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        let (scan_us, threads, activate_us, ready_ms, memory_mb) = measure_once();
        println!("{scan_us} {threads} {activate_us} {ready_ms} {memory_mb}");
        return;
    }
    let runs: usize = std::env::var("WAVEJAM_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let mut columns: [Vec<f64>; 5] = Default::default();
    for _ in 0..runs {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env(CHILD, "1")
            .output()
            .expect("a child process");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        let last = line.lines().last().unwrap_or_default();
        for (column, value) in columns.iter_mut().zip(last.split_whitespace()) {
            column.push(value.parse().unwrap());
        }
    }
    let row = |what: &str, values: &[f64], unit: &str| {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(0.0, f64::max);
        println!(
            "| {what} | {:.1} {unit} | {min:.1} {unit} | {max:.1} {unit} |",
            median(values.to_vec())
        );
    };
    println!("| first instance in a fresh process ({runs} runs) | median | min | max |");
    println!("|---|---:|---:|---:|");
    row("scan: instantiate + destroy", &columns[0], "µs");
    row("threads a scan leaves running", &columns[1], "");
    row("activate() + start processing", &columns[2], "µs");
    row("long-term memory ready, from activate()", &columns[3], "ms");
    row("resident memory the activation adds", &columns[4], "MB");
}
