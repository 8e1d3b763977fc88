//! The host's memory and open descriptors while a plugin breaks each
//! sandbox rule over and over: after a warm-up, each violation is repeated,
//! every time followed by a clean batch on the same chain, and neither the
//! process's RSS nor its count of open descriptors may grow.
//!
//! Its own binary, so its own process: the tests of one binary run as
//! threads of one process, whose RSS they would all move. One test runs
//! the modes in turn and prints what it measured:
//! `cargo test -p fcsink-tests --locked --test sandbox_resources -- --nocapture`
//! (BENCHMARKS.md, "Sandbox: host memory and descriptors").

use fcsink::transform::{Chain, Runtime, TransformError, Transformed};
use fcsink_tests::plugins::{compile_cache_dir, limits, misbehave, record, still_works};

/// One sandbox rule, broken by the `misbehave` fixture in `mode`.
struct Case {
    mode: &'static str,
    /// What the violating batch must come to (see [`verdict`]).
    verdict: &'static str,
    memory_mb: usize,
    timeout_ms: u64,
    /// Violations measured, after [`WARM_UP`] more.
    rounds: usize,
}

/// The time-limit modes wait out their timeout every round, so they get a
/// short timeout and fewer rounds.
const CASES: &[Case] = &[
    case("loop", "plugin-timeout", 16, 150, 20),
    case("sleep", "plugin-timeout", 16, 150, 20),
    case("alloc", "plugin-memory", 16, 5000, 40),
    // Kept, 1 MiB leaked per batch: the chain replaces the instance near its cap.
    case("leak", "kept", 16, 5000, 40),
    case("trap", "plugin-trapped", 16, 5000, 40),
    case("output-bomb", "plugin-output-too-large", 16, 5000, 40),
    case("random-bomb", "plugin-trapped", 16, 5000, 40),
    case("resource-bomb", "plugin-trapped", 16, 5000, 40),
    // Denied: the plugin fails the record with the error WASI gave it.
    case("read-file", "record-failed", 16, 5000, 40),
    case("open-socket", "record-failed", 16, 5000, 40),
    case("env", "record-failed", 16, 5000, 40),
    case("wrong-count", "plugin-bad-result", 16, 5000, 40),
    case("too-few", "plugin-bad-result", 16, 5000, 40),
    case("reject", "plugin-rejected", 16, 5000, 40),
];

const fn case(
    mode: &'static str,
    verdict: &'static str,
    memory_mb: usize,
    timeout_ms: u64,
    rounds: usize,
) -> Case {
    Case {
        mode,
        verdict,
        memory_mb,
        timeout_ms,
        rounds,
    }
}

/// Violations before the first measurement: the first calls set up what
/// is made once (the sandbox's timer thread, wasmtime's per-thread state,
/// the allocator's arenas), which is not a leak.
const WARM_UP: usize = 5;

/// How far RSS may grow over a mode's rounds, after its warm-up.
///
/// Measured growth is a few hundred KiB at most (BENCHMARKS.md), allocator
/// noise. One leaked instance costs its touched memory: about 1 MiB for
/// `trap` (the fixture's stack and heap), the 16 MiB cap for `alloc`; one
/// per round over 40 rounds is 40 MiB and more, far past this.
const RSS_GROWTH_BOUND_KIB: u64 = 4 << 10;

/// `leak` keeps its instance until it nears the cap (three quarters of it),
/// so RSS may legitimately be one instance's worth higher after the rounds
/// than before them, depending on where in that cycle each falls.
const LEAK_CYCLE_KIB: u64 = 16 << 10;

/// How far the peak may rise above the RSS before the rounds: the plugin's
/// memory cap (what the host lets it touch) plus what the host may copy
/// out of it in one call (at most the cap too) plus the bound above. A host
/// that copied the output bomb's 125 MiB would pass it.
fn peak_bound_kib(case: &Case) -> u64 {
    2 * ((case.memory_mb as u64) << 10) + RSS_GROWTH_BOUND_KIB
}

/// What one batch came to: the code of the failure that stopped it,
/// `record-failed` when the plugin failed a record, else `kept`.
fn verdict(result: Result<Transformed, TransformError>) -> &'static str {
    match result {
        Err(err) => err.failure.code(),
        Ok(out) if !out.failed.is_empty() => "record-failed",
        Ok(_) => "kept",
    }
}

/// The process's resident memory and open descriptors.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    fds: usize,
}

fn usage() -> Usage {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    // The descriptor read_dir holds open is counted every time alike.
    let fds = std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .count();
    Usage {
        rss_kib: status_kib(&status, "VmRSS:"),
        fds,
    }
}

/// A `kB` field of /proc/self/status.
fn status_kib(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Resets the process's peak RSS (VmHWM) to its current RSS; false where
/// the kernel does not let it (the peak is then sampled between rounds).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn high_water_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status_kib(&status, "VmHWM:")
}

/// A violating batch (one clean record, one that triggers), then a clean one.
fn round(chain: &mut Chain, case: &Case) {
    let got = verdict(chain.run(vec![record(0, "fine"), record(1, "BAD")]));
    assert_eq!(got, case.verdict, "{}: the violation", case.mode);
    still_works(chain);
}

/// What one mode's rounds did to the process.
struct Measured {
    before: Usage,
    after: Usage,
    peak_kib: u64,
}

fn measure(case: &Case) -> Measured {
    let runtime = Runtime::new(
        limits(case.memory_mb, case.timeout_ms),
        Some(compile_cache_dir()),
    )
    .expect("a wasmtime runtime");
    let mut chain = misbehave(&runtime, case.mode);
    for _ in 0..WARM_UP {
        round(&mut chain, case);
    }
    let before = usage();
    let hwm = reset_peak();
    let mut peak_kib = before.rss_kib;
    for _ in 0..case.rounds {
        round(&mut chain, case);
        peak_kib = peak_kib.max(usage().rss_kib);
    }
    let after = usage();
    if hwm {
        peak_kib = peak_kib.max(high_water_kib());
    }
    Measured {
        before,
        after,
        peak_kib,
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

#[test]
fn violations_leave_the_hosts_memory_and_descriptors_as_they_were() {
    println!(
        "{:<14} {:>6} {:>11} {:>10} {:>9} {:>10} {:>9}",
        "mode", "rounds", "RSS before", "RSS after", "RSS peak", "fds before", "fds after"
    );
    let mut failures = Vec::new();
    for case in CASES {
        let Measured {
            before,
            after,
            peak_kib,
        } = measure(case);
        println!(
            "{:<14} {:>6} {:>11} {:>10} {:>9} {:>10} {:>9}",
            case.mode,
            case.rounds,
            mib(before.rss_kib),
            mib(after.rss_kib),
            mib(peak_kib),
            before.fds,
            after.fds
        );
        let growth = after.rss_kib.saturating_sub(before.rss_kib);
        let bound = match case.mode {
            "leak" => RSS_GROWTH_BOUND_KIB + LEAK_CYCLE_KIB,
            _ => RSS_GROWTH_BOUND_KIB,
        };
        if after.fds != before.fds {
            failures.push(format!(
                "{}: {} descriptors open before, {} after",
                case.mode, before.fds, after.fds
            ));
        }
        if growth > bound {
            failures.push(format!(
                "{}: RSS grew {growth} KiB over {} rounds (bound {bound} KiB)",
                case.mode, case.rounds
            ));
        }
        let rise = peak_kib.saturating_sub(before.rss_kib);
        if rise > peak_bound_kib(case) {
            failures.push(format!(
                "{}: RSS peaked {rise} KiB above its start (bound {} KiB)",
                case.mode,
                peak_bound_kib(case)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
