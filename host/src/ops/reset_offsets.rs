//! `fcsink reset-offsets`: move a stopped connector's committed offsets to
//! the start or end of each partition, to a point in time, or to given
//! offsets, printing the old and new offset of every partition changed.
//! Refuses while the group has members: Kafka would not take the commit,
//! and a running instance would overwrite it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;

use crate::config::{Settings, Topics};
use crate::kafka::offsets::{self, Position};
use crate::source::TopicPartition;

/// Where to move the offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The first offset still in the log.
    Earliest,
    /// The end: only records produced from now on.
    Latest,
    /// The first record at or after this time (ms since the epoch).
    Timestamp(i64),
    /// These partitions (of the one topic, or `--topic`) to these offsets.
    Offsets(Vec<(i32, i64)>),
}

impl Target {
    /// Reads the command's flags; exactly one is set (clap checks).
    ///
    /// # Errors
    /// A time or a `P:O` that does not parse.
    pub fn from_flags(
        earliest: bool,
        latest: bool,
        timestamp: Option<&str>,
        offsets: &[String],
    ) -> anyhow::Result<Target> {
        if earliest {
            return Ok(Target::Earliest);
        }
        if latest {
            return Ok(Target::Latest);
        }
        if let Some(text) = timestamp {
            return Ok(Target::Timestamp(crate::config::point_in_time(
                "--to-timestamp",
                text,
            )?));
        }
        offsets
            .iter()
            .map(|pair| parse_pair(pair))
            .collect::<anyhow::Result<_>>()
            .map(Target::Offsets)
    }
}

fn parse_pair(pair: &str) -> anyhow::Result<(i32, i64)> {
    let parsed = pair
        .split_once(':')
        .and_then(|(p, o)| Some((p.trim().parse::<i32>().ok()?, o.trim().parse::<i64>().ok()?)));
    match parsed {
        Some((p, o)) if p >= 0 && o >= 0 => Ok((p, o)),
        _ => anyhow::bail!("--to-offset: expected PARTITION:OFFSET like 0:42 (got {pair:?})"),
    }
}

/// One partition's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The topic and partition.
    pub partition: TopicPartition,
    /// The committed offset before.
    pub old: Option<i64>,
    /// The offset committed.
    pub new: i64,
}

/// Resets the offsets (or, with `dry_run`, shows what it would do).
///
/// # Errors
/// A running connector, an unknown topic or partition, an offset outside
/// the partition, or a broker that refuses.
pub async fn run(
    settings: &Settings,
    target: Target,
    topic: Option<String>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let settings = settings.clone();
    let changes = tokio::task::spawn_blocking(move || {
        let consumer = offsets::outsider(&settings)?;
        offsets::ensure_stopped(&consumer, &settings)?;
        let mut positions = offsets::positions(&consumer, &settings.source.topics)?;
        if let Some(topic) = &topic {
            anyhow::ensure!(
                positions.keys().any(|(t, _)| t == topic),
                "--topic {topic}: not a source topic of {} (or it does not exist)",
                settings.name
            );
            positions.retain(|(t, _), _| t == topic);
        }
        if let Topics::List(list) = &settings.source.topics {
            for name in list {
                anyhow::ensure!(
                    topic.is_some() || positions.keys().any(|(t, _)| t == name),
                    "topic {name} does not exist"
                );
            }
        }
        let changes = plan(&consumer, &positions, &target)?;
        if !dry_run && !changes.is_empty() {
            let offsets = changes
                .iter()
                .map(|c| (c.partition.clone(), c.new))
                .collect();
            offsets::commit(&consumer, &settings, &offsets)?;
        }
        Ok((settings, changes))
    })
    .await?;
    let (settings, changes) = changes?;
    out!("{}", render(&changes))?;
    if dry_run {
        outln!(
            "Dry run: nothing committed for group {}.",
            settings.group_id()
        )?;
    } else {
        outln!(
            "Committed for group {}; the next start reads from these offsets.",
            settings.group_id()
        )?;
    }
    Ok(())
}

fn plan(
    consumer: &rdkafka::consumer::BaseConsumer,
    positions: &BTreeMap<TopicPartition, Position>,
    target: &Target,
) -> anyhow::Result<Vec<Change>> {
    let new: BTreeMap<TopicPartition, i64> = match target {
        Target::Earliest => positions
            .iter()
            .map(|(tp, p)| (tp.clone(), p.low))
            .collect(),
        Target::Latest => positions
            .iter()
            .map(|(tp, p)| (tp.clone(), p.high))
            .collect(),
        Target::Timestamp(ms) => offsets::at_time(consumer, positions, *ms)?,
        Target::Offsets(pairs) => explicit(positions, pairs)?,
    };
    Ok(new
        .into_iter()
        .map(|(partition, new)| Change {
            old: positions.get(&partition).and_then(|p| p.committed),
            partition,
            new,
        })
        .collect())
}

/// `--to-offset P:O` pairs, each within its partition's log.
fn explicit(
    positions: &BTreeMap<TopicPartition, Position>,
    pairs: &[(i32, i64)],
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let mut topics: Vec<&str> = positions.keys().map(|(t, _)| t.as_str()).collect();
    topics.dedup();
    let topic = match topics.as_slice() {
        [one] => *one,
        [] => anyhow::bail!("no source partitions found"),
        _ => anyhow::bail!(
            "--to-offset: the connector reads {}; choose one with --topic",
            topics.join(", ")
        ),
    };
    let mut new = BTreeMap::new();
    for &(partition, offset) in pairs {
        let tp = (topic.to_string(), partition);
        let position = positions
            .get(&tp)
            .with_context(|| format!("--to-offset: {topic} has no partition {partition}"))?;
        anyhow::ensure!(
            (position.low..=position.high).contains(&offset),
            "--to-offset: partition {partition} of {topic} holds offsets {} to {} \
             (the end); {offset} is outside (--to-earliest and --to-latest name the ends)",
            position.low,
            position.high
        );
        new.insert(tp, offset);
    }
    Ok(new)
}

/// The table: topic, partition, old offset (or `none`), new offset.
pub fn render(changes: &[Change]) -> String {
    let width = changes
        .iter()
        .map(|c| c.partition.0.len())
        .max()
        .unwrap_or(0)
        .max("TOPIC".len());
    let mut table = format!(
        "{:<width$}  {:>9}  {:>12}  {:>12}\n",
        "TOPIC", "PARTITION", "OLD", "NEW"
    );
    for change in changes {
        let old = change
            .old
            .map_or_else(|| "none".to_string(), |o| o.to_string());
        let _ = writeln!(
            table,
            "{:<width$}  {:>9}  {:>12}  {:>12}",
            change.partition.0, change.partition.1, old, change.new
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions() -> BTreeMap<TopicPartition, Position> {
        let at = |low, high, committed| Position {
            low,
            high,
            committed,
        };
        BTreeMap::from([
            (("t".to_string(), 0), at(0, 10, Some(4))),
            (("t".to_string(), 1), at(5, 20, None)),
        ])
    }

    #[test]
    fn to_offset_pairs_parse_and_stay_within_the_log() {
        assert_eq!(parse_pair("1:42").unwrap(), (1, 42));
        for bad in ["1", "a:1", "1:b", "-1:3", "1:-3", ":", "1:2:3"] {
            let err = parse_pair(bad).unwrap_err().to_string();
            assert!(
                err.contains("--to-offset") && err.contains(bad),
                "{bad}: {err}"
            );
        }
        let p = positions();
        assert_eq!(
            explicit(&p, &[(1, 5), (0, 10)]).unwrap(),
            BTreeMap::from([(("t".to_string(), 0), 10), (("t".to_string(), 1), 5)])
        );
        let err = explicit(&p, &[(1, 4)]).unwrap_err().to_string();
        assert!(
            err.contains("holds offsets 5 to 20") && err.contains("4 is outside"),
            "{err}"
        );
        let err = explicit(&p, &[(1, 21)]).unwrap_err().to_string();
        assert!(err.contains("21 is outside"), "{err}");
        let err = explicit(&p, &[(2, 0)]).unwrap_err().to_string();
        assert!(err.contains("no partition 2"), "{err}");
    }

    #[test]
    fn to_offset_needs_a_topic_when_there_are_several() {
        let mut p = positions();
        p.insert(("u".to_string(), 0), p[&("t".to_string(), 0)]);
        let err = explicit(&p, &[(0, 1)]).unwrap_err().to_string();
        assert!(err.contains("t, u") && err.contains("--topic"), "{err}");
    }

    #[test]
    fn the_table_shows_old_and_new_offsets() {
        let table = render(&[
            Change {
                partition: ("orders".into(), 0),
                old: Some(4),
                new: 0,
            },
            Change {
                partition: ("orders".into(), 1),
                old: None,
                new: 7,
            },
        ]);
        assert_eq!(
            table,
            "TOPIC   PARTITION           OLD           NEW\n\
             orders          0             4             0\n\
             orders          1          none             7\n"
        );
    }
}
