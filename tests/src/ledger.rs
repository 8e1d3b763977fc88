//! The ledger campaign: numbered records go through fcsink while a script
//! of faults plays, then every produced record is looked up where it can
//! end: at the function (the emulator's record), dropped by a plugin on
//! purpose, or in the dead-letter topic. Anything else is lost.
//!
//! - [`records`]: what is produced (numbered records, plugin triggers,
//!   edge-case records) and what each is expected to become.
//! - [`plan`]: the fault scenarios and the run that plays one.
//! - this file: the reconciliation and its [`Report`].
//!
//! `cargo run -p fcsink-tests --bin ledger` plays every plan; see
//! `tests/src/bin/ledger.rs`.

pub mod plan;
pub mod records;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use fc_emulator::Emulator;

use crate::broker::ConsumedRecord;
use crate::connector::{delivered, position};
use records::{Expect, Produced};

/// `(partition, offset)` of a source record.
pub type Position = (i32, i64);

/// What became of every produced record.
#[derive(Debug, Default)]
pub struct Report {
    /// The plan's name.
    pub plan: String,
    /// Records produced (acknowledged by the broker).
    pub produced: usize,
    /// Distinct records that reached the function.
    pub delivered: usize,
    /// Records a plugin dropped on purpose (and that went nowhere else).
    pub filtered: usize,
    /// Distinct records in the dead-letter topic (and not delivered).
    pub dead_lettered: usize,
    /// Arrivals beyond the first, at the function or in the dead-letter topic.
    pub duplicates: usize,
    /// Records sent to the function in more than one request (retries
    /// included, whatever the answer).
    pub sent_twice: usize,
    /// Records the function ran more than once (the emulator's `executed`:
    /// what FC's task deduplication prevents).
    pub executed_twice: usize,
    /// Records found nowhere: must be empty.
    pub lost: Vec<Position>,
    /// Dead letters by `fcsink.error.code`.
    pub dead_letter_codes: BTreeMap<String, usize>,
    /// Everything else the run got wrong (expectations of the plan, records
    /// that arrived although never produced …); must be empty.
    pub problems: Vec<String>,
    /// How long the whole run took, broker start to reconciliation.
    pub elapsed: Duration,
}

impl Report {
    /// No record lost and no problem.
    pub fn passed(&self) -> bool {
        self.lost.is_empty() && self.problems.is_empty()
    }

    /// Duplicates as a percentage of produced records.
    pub fn duplicate_percent(&self) -> f64 {
        100.0 * self.duplicates as f64 / self.produced.max(1) as f64
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} produced, {} delivered, {} filtered, {} dead-lettered, {} lost, \
             {} duplicates ({:.2}%), {} sent twice, {} executed twice in {:.1} s",
            self.plan,
            self.produced,
            self.delivered,
            self.filtered,
            self.dead_lettered,
            self.lost.len(),
            self.duplicates,
            self.duplicate_percent(),
            self.sent_twice,
            self.executed_twice,
            self.elapsed.as_secs_f64()
        )?;
        if !self.dead_letter_codes.is_empty() {
            write!(f, "; dead letters by code {:?}", self.dead_letter_codes)?;
        }
        if !self.lost.is_empty() {
            let shown: Vec<_> = self.lost.iter().take(10).collect();
            write!(f, "\n  lost (first 10): {shown:?}")?;
        }
        for problem in &self.problems {
            write!(f, "\n  problem: {problem}")?;
        }
        Ok(())
    }
}

/// How many records went out in more than one request, and how many the
/// function ran more than once.
fn sent_and_executed_twice(emulator: &Emulator) -> (usize, usize) {
    let mut sent: BTreeMap<Position, usize> = BTreeMap::new();
    let mut executed: BTreeMap<Position, usize> = BTreeMap::new();
    for invocation in emulator.invocations() {
        let Ok(serde_json::Value::Array(records)) = serde_json::from_slice(&invocation.body) else {
            continue;
        };
        for record in &records {
            let (partition, offset) = position(record);
            let at = (partition as i32, offset);
            *sent.entry(at).or_default() += 1;
            if invocation.executed {
                *executed.entry(at).or_default() += 1;
            }
        }
    }
    let twice = |counts: BTreeMap<Position, usize>| counts.values().filter(|&&n| n > 1).count();
    (twice(sent), twice(executed))
}

/// Looks every produced record up in what the function received and in
/// the dead-letter topic's `dead_letters` (read from `source_topic` only).
pub fn reconcile(
    plan: &str,
    produced: &[Produced],
    emulator: &Emulator,
    source_topic: &str,
    dead_letters: &[ConsumedRecord],
) -> Report {
    let mut report = Report {
        plan: plan.to_owned(),
        produced: produced.len(),
        ..Report::default()
    };
    let expected: BTreeMap<Position, Expect> =
        produced.iter().map(|p| (p.position, p.expect)).collect();

    let mut arrivals: BTreeMap<Position, usize> = BTreeMap::new();
    for record in delivered(emulator) {
        let (partition, offset) = position(&record);
        *arrivals.entry((partition as i32, offset)).or_default() += 1;
    }
    let delivered: BTreeSet<Position> = arrivals.keys().copied().collect();

    let mut dead: BTreeSet<Position> = BTreeSet::new();
    for letter in dead_letters {
        match dead_letter_origin(letter, source_topic) {
            Ok(origin) => {
                *arrivals.entry(origin).or_default() += 1;
                dead.insert(origin);
                let code = letter.header("fcsink.error.code").unwrap_or("(none)");
                *report.dead_letter_codes.entry(code.to_owned()).or_default() += 1;
            }
            Err(problem) => report.problems.push(problem),
        }
    }
    report.duplicates = arrivals.values().map(|n| n - 1).sum();
    (report.sent_twice, report.executed_twice) = sent_and_executed_twice(emulator);

    for (&position, &expect) in &expected {
        let at_function = delivered.contains(&position);
        let in_dead_letters = dead.contains(&position);
        match (at_function, in_dead_letters) {
            (true, _) => report.delivered += 1,
            (false, true) => report.dead_lettered += 1,
            (false, false) if expect == Expect::Filtered => report.filtered += 1,
            (false, false) => report.lost.push(position),
        }
        if at_function && expect == Expect::Filtered {
            report
                .problems
                .push(format!("{position:?} should have been filtered out"));
        }
    }
    let strangers: Vec<_> = arrivals
        .keys()
        .filter(|p| !expected.contains_key(p))
        .take(10)
        .collect();
    if !strangers.is_empty() {
        report.problems.push(format!(
            "records that were never produced arrived: {strangers:?}"
        ));
    }
    report
}

/// The source position a dead letter names in its `__connect.errors.*` headers.
pub(crate) fn dead_letter_origin(
    letter: &ConsumedRecord,
    source_topic: &str,
) -> Result<Position, String> {
    let field = |name: &str| {
        letter.header(name).ok_or_else(|| {
            format!(
                "dead letter {}/{} has no {name} header",
                letter.partition, letter.offset
            )
        })
    };
    let topic = field("__connect.errors.topic")?;
    if topic != source_topic {
        return Err(format!("dead letter from unexpected topic {topic}"));
    }
    let partition = field("__connect.errors.partition")?;
    let offset = field("__connect.errors.offset")?;
    match (partition.parse(), offset.parse()) {
        (Ok(partition), Ok(offset)) => Ok((partition, offset)),
        _ => Err(format!(
            "dead letter names position {partition}/{offset}, not numbers"
        )),
    }
}
