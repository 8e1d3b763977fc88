//! A TEST FIXTURE, not a plugin to deploy: it misbehaves on purpose so that
//! the host's sandbox tests can check that each kind of misbehaviour is
//! stopped or reported.
//!
//! Configuration:
//! - `mode` (required): what to do; see [`Mode`].
//! - `trigger` (optional): misbehave only for records whose value equals this
//!   text; other records are kept. For the batch-level modes (`wrong-count`,
//!   `too-few`, `reject`) a batch misbehaves when any record in it matches.
//!
//! Without `trigger` every record (or batch) triggers.

use fcsink_guest::{Config, Level, Outcome, Record, Transform};

/// Config keys this plugin accepts.
const KEYS: &[&str] = &["mode", "trigger"];

/// Every `mode`, as written in the configuration.
const MODES: &[&str] = &[
    "loop",
    "alloc",
    "leak",
    "trap",
    "wrong-count",
    "too-few",
    "reject",
    "read-file",
    "open-socket",
    "env",
    "log",
    "fail-odd",
    "split",
    "sleep",
    "output-bomb",
    "init-error",
    "init-sleep",
    "random-bomb",
    "resource-bomb",
];

/// The misbehaviour chosen by config key `mode`. The remaining modes act in
/// [`Transform::new`] and so have no variant: `init-error` refuses the
/// configuration, `init-sleep` sleeps 30 s in WASI before accepting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `loop`: spin forever, until the host's CPU deadline stops it.
    Loop,
    /// `alloc`: allocate 1 MiB blocks without bound, until the memory cap stops it.
    Alloc,
    /// `leak`: leak 1 MiB per record, then Keep; like a guest runtime that
    /// never frees what it allocated for a call.
    Leak,
    /// `trap`: panic, which traps in Wasm.
    Trap,
    /// `wrong-count`: return one outcome more than there are records.
    WrongCount,
    /// `too-few`: return one outcome fewer than there are records.
    TooFew,
    /// `reject`: reject the whole batch with `rejected by misbehave`.
    Reject,
    /// `read-file`: read `/etc/passwd`; Fail with the error, Keep if it worked.
    ReadFile,
    /// `open-socket`: connect to `127.0.0.1:9`; Fail with the error, Keep if it worked.
    OpenSocket,
    /// `env`: read `HOME`; Fail with `no env` when it is absent, Keep if set.
    Env,
    /// `log`: log the value at info and warn level, then Keep.
    Log,
    /// `fail-odd`: Fail records at odd offsets with `odd offset N`, Keep others.
    FailOdd,
    /// `split`: replace each record with two copies, values suffixed `-a` and `-b`
    /// (a null value counts as empty).
    Split,
    /// `sleep`: sleep 30 s in WASI (a blocking host call), then Keep.
    Sleep,
    /// `output-bomb`: replace the record with 2000 records whose values all
    /// point at one 64 KiB buffer: 125 MiB for the host to copy out of
    /// 64 KiB of guest memory.
    OutputBomb,
    /// `random-bomb`: ask WASI for 16 MiB of random bytes in one call; Fail
    /// with how many came back (the host caps what one call may ask for).
    RandomBomb,
    /// `resource-bomb`: create a million WASI pollables and keep them all;
    /// Fail with how many were made (the host caps the resource table).
    ResourceBomb,
    /// After `init-sleep`: keep every record.
    Keep,
}

/// How long `sleep` and `init-sleep` sleep.
const SLEEP: std::time::Duration = std::time::Duration::from_secs(30);

/// The fixture: a mode and an optional trigger value.
pub struct Misbehave {
    mode: Mode,
    /// Only records with exactly this value misbehave, when set.
    trigger: Option<Vec<u8>>,
}

impl Transform for Misbehave {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(KEYS)?;
        let mode = match config.require("mode")? {
            "loop" => Mode::Loop,
            "alloc" => Mode::Alloc,
            "leak" => Mode::Leak,
            "trap" => Mode::Trap,
            "wrong-count" => Mode::WrongCount,
            "too-few" => Mode::TooFew,
            "reject" => Mode::Reject,
            "read-file" => Mode::ReadFile,
            "open-socket" => Mode::OpenSocket,
            "env" => Mode::Env,
            "log" => Mode::Log,
            "fail-odd" => Mode::FailOdd,
            "split" => Mode::Split,
            "sleep" => Mode::Sleep,
            "output-bomb" => Mode::OutputBomb,
            "random-bomb" => Mode::RandomBomb,
            "resource-bomb" => Mode::ResourceBomb,
            "init-error" => return Err("misbehave refuses this config".to_string()),
            "init-sleep" => {
                std::thread::sleep(SLEEP);
                Mode::Keep
            }
            other => {
                return Err(format!(
                    "config key `mode` must be one of {}; got {other:?}",
                    MODES.join(", ")
                ));
            }
        };
        let trigger = config.get("trigger").map(|t| t.as_bytes().to_vec());
        Ok(Misbehave { mode, trigger })
    }

    fn transform_batch(&mut self, batch: &[Record]) -> Result<Vec<Outcome>, String> {
        let batch_mode = matches!(self.mode, Mode::WrongCount | Mode::TooFew | Mode::Reject);
        if !batch_mode || !batch.iter().any(|r| self.triggers(r)) {
            return Ok(batch.iter().map(|r| self.transform(r)).collect());
        }
        let mut outcomes = vec![Outcome::Keep; batch.len()];
        match self.mode {
            Mode::WrongCount => outcomes.push(Outcome::Keep),
            Mode::TooFew => {
                outcomes.pop();
            }
            _ => return Err("rejected by misbehave".to_string()),
        }
        Ok(outcomes)
    }

    fn transform(&mut self, record: &Record) -> Outcome {
        if !self.triggers(record) {
            return Outcome::Keep;
        }
        match self.mode {
            Mode::Loop => spin(),
            Mode::Alloc => hoard(),
            Mode::Leak => {
                std::mem::forget(std::hint::black_box(vec![0xA5_u8; 1 << 20]));
                Outcome::Keep
            }
            Mode::Trap => panic!("misbehave: trap at offset {}", record.offset),
            Mode::ReadFile => probe(std::fs::read_to_string("/etc/passwd"), "read /etc/passwd"),
            Mode::OpenSocket => probe(
                std::net::TcpStream::connect("127.0.0.1:9"),
                "connect to 127.0.0.1:9",
            ),
            Mode::Env => match std::env::var("HOME") {
                Ok(_) => Outcome::Keep,
                Err(std::env::VarError::NotPresent) => Outcome::Fail("no env".to_string()),
                Err(e) => Outcome::Fail(format!("no env: {e}")),
            },
            Mode::Log => {
                let value = shown(record);
                fcsink_guest::log(Level::Info, &format!("misbehave info: value {value}"));
                fcsink_guest::log(Level::Warn, &format!("misbehave warn: value {value}"));
                Outcome::Keep
            }
            Mode::FailOdd if record.offset % 2 != 0 => {
                Outcome::Fail(format!("odd offset {}", record.offset))
            }
            Mode::FailOdd => Outcome::Keep,
            Mode::Split => Outcome::Replace(
                [b"-a", b"-b"]
                    .into_iter()
                    .map(|suffix| {
                        let mut copy = record.clone();
                        copy.value
                            .get_or_insert_with(Vec::new)
                            .extend_from_slice(suffix);
                        copy
                    })
                    .collect(),
            ),
            Mode::Sleep => {
                std::thread::sleep(SLEEP);
                Outcome::Keep
            }
            Mode::OutputBomb => Outcome::Replace(aliased_copies(record, 2000, 64 * 1024)),
            Mode::RandomBomb => wasi::random_bomb(),
            Mode::ResourceBomb => wasi::resource_bomb(),
            // Batch-level modes act in `transform_batch`; a record reaching here
            // belongs to a batch that did not trigger.
            Mode::WrongCount | Mode::TooFew | Mode::Reject | Mode::Keep => Outcome::Keep,
        }
    }
}

fcsink_guest::export!(Misbehave);

/// The modes that call WASI directly.
#[cfg(target_os = "wasi")]
mod wasi {
    use fcsink_guest::Outcome;

    pub fn random_bomb() -> Outcome {
        let bytes = wasip2::random::random::get_random_bytes(16 << 20);
        Outcome::Fail(format!("got {} random bytes", bytes.len()))
    }

    pub fn resource_bomb() -> Outcome {
        let mut made = 0u32;
        for _ in 0..1_000_000 {
            std::mem::forget(wasip2::clocks::monotonic_clock::subscribe_duration(1));
            made += 1;
        }
        Outcome::Fail(format!("made {made} pollables"))
    }
}

/// Natively there is no WASI host to misbehave against.
#[cfg(not(target_os = "wasi"))]
mod wasi {
    use fcsink_guest::Outcome;

    pub fn random_bomb() -> Outcome {
        Outcome::Fail("random-bomb runs only under WASI".into())
    }

    pub fn resource_bomb() -> Outcome {
        Outcome::Fail("resource-bomb runs only under WASI".into())
    }
}

impl Misbehave {
    /// Whether this record should misbehave.
    fn triggers(&self, record: &Record) -> bool {
        match &self.trigger {
            None => true,
            Some(trigger) => record.value.as_deref() == Some(trigger.as_slice()),
        }
    }
}

/// Loops forever; `black_box` stops the optimizer from proving the loop empty.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Allocates 1 MiB blocks, touching each so it is really committed, until
/// allocation fails (which aborts, trapping in Wasm).
fn hoard() -> ! {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        kept.push(vec![0xA5; 1 << 20]);
        std::hint::black_box(&mut kept);
    }
}

/// `copies` copies of `record` whose values all alias one leaked buffer of
/// `size` bytes, as a hostile guest can lower them (the component model
/// lets list values point anywhere in guest memory).
fn aliased_copies(record: &Record, copies: usize, size: usize) -> Vec<Record> {
    let buffer: &'static mut [u8] = vec![0x42; size].leak();
    (0..copies)
        .map(|_| {
            // SAFETY: none; deliberately unsound. Each `Vec` claims the same
            // leaked buffer; they are only lowered to the host, which copies
            // what they point at, and never used here again. This is the
            // fixture's whole point: the host must bound what it copies.
            let value = unsafe { Vec::from_raw_parts(buffer.as_mut_ptr(), size, size) };
            Record {
                value: Some(value),
                ..record.clone()
            }
        })
        .collect()
}

/// Maps a sandboxed operation's result: Keep if the sandbox let it through,
/// Fail with the error if it was denied.
fn probe<T>(result: std::io::Result<T>, what: &str) -> Outcome {
    match result {
        Ok(_) => Outcome::Keep,
        Err(e) => Outcome::Fail(format!("{what}: {e}")),
    }
}

/// The record's value for a log line: lossy UTF-8, or `<null>`.
fn shown(record: &Record) -> String {
    match &record.value {
        Some(value) => String::from_utf8_lossy(value).into_owned(),
        None => "<null>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(pairs: &[(&str, &str)]) -> Misbehave {
        Misbehave::new(Config::from_pairs(pairs.iter().copied())).unwrap()
    }

    fn batch(values: &[&str]) -> Vec<Record> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut record = Record::new(None, Some(v.as_bytes()));
                record.offset = i as i64;
                record
            })
            .collect()
    }

    #[test]
    fn every_mode_parses_and_init_error_refuses() {
        for mode in MODES.iter().filter(|m| **m != "init-error") {
            assert!(
                Misbehave::new(Config::from_pairs([("mode", *mode)])).is_ok(),
                "{mode}"
            );
        }
        let err = Misbehave::new(Config::from_pairs([("mode", "init-error")]))
            .err()
            .unwrap();
        assert_eq!(err, "misbehave refuses this config");
    }

    #[test]
    fn bad_config_is_refused_naming_the_key() {
        let missing = Misbehave::new(Config::default()).err().unwrap();
        assert!(missing.contains("`mode`"), "{missing}");
        let unknown = Misbehave::new(Config::from_pairs([("mode", "nap")]))
            .err()
            .unwrap();
        assert!(
            unknown.contains("`mode`") && unknown.contains("loop"),
            "{unknown}"
        );
        let extra = Misbehave::new(Config::from_pairs([("mode", "trap"), ("x", "1")]))
            .err()
            .unwrap();
        assert!(extra.contains("`x`"), "{extra}");
    }

    #[test]
    fn batch_counts_can_be_wrong() {
        let records = batch(&["a", "b", "c"]);
        let mut more = fixture(&[("mode", "wrong-count")]);
        assert_eq!(more.transform_batch(&records).unwrap().len(), 4);
        let mut fewer = fixture(&[("mode", "too-few")]);
        assert_eq!(fewer.transform_batch(&records).unwrap().len(), 2);
        let mut reject = fixture(&[("mode", "reject")]);
        assert_eq!(
            reject.transform_batch(&records),
            Err("rejected by misbehave".to_string())
        );
    }

    #[test]
    fn trigger_limits_misbehaviour_to_matching_values() {
        let mut reject = fixture(&[("mode", "reject"), ("trigger", "boom")]);
        assert_eq!(
            reject.transform_batch(&batch(&["a", "b"])),
            Ok(vec![Outcome::Keep, Outcome::Keep])
        );
        assert!(reject.transform_batch(&batch(&["a", "boom"])).is_err());

        let mut trap = fixture(&[("mode", "trap"), ("trigger", "boom")]);
        assert_eq!(trap.transform(&batch(&["calm"])[0]), Outcome::Keep);
    }

    #[test]
    #[should_panic(expected = "misbehave: trap at offset 0")]
    fn trap_panics() {
        fixture(&[("mode", "trap")]).transform(&batch(&["x"])[0]);
    }

    #[test]
    fn fail_odd_fails_odd_offsets() {
        let outcomes = fixture(&[("mode", "fail-odd")])
            .transform_batch(&batch(&["a", "b", "c", "d"]))
            .unwrap();
        assert_eq!(
            outcomes,
            vec![
                Outcome::Keep,
                Outcome::Fail("odd offset 1".into()),
                Outcome::Keep,
                Outcome::Fail("odd offset 3".into()),
            ]
        );
    }

    #[test]
    fn split_makes_two_suffixed_copies() {
        let record = batch(&["v"]).remove(0);
        let copy = |value: &[u8]| Record {
            value: Some(value.to_vec()),
            ..record.clone()
        };
        assert_eq!(
            fixture(&[("mode", "split")]).transform(&record),
            Outcome::Replace(vec![copy(b"v-a"), copy(b"v-b")])
        );
    }

    #[test]
    fn probe_fails_with_the_error_text() {
        let denied = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "not here");
        assert_eq!(
            probe::<()>(Err(denied), "read /etc/passwd"),
            Outcome::Fail("read /etc/passwd: not here".into())
        );
        assert_eq!(probe(Ok(()), "anything"), Outcome::Keep);
    }

    #[test]
    fn log_keeps_the_record() {
        let mut plugin = fixture(&[("mode", "log")]);
        assert_eq!(plugin.transform(&batch(&["hello"])[0]), Outcome::Keep);
        assert_eq!(shown(&Record::new(None, None)), "<null>");
        assert_eq!(shown(&batch(&["hello"])[0]), "hello");
    }
}
