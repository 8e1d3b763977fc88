//! `fcsink run --until-end`: consume up to the end offsets present at start,
//! then stop like on a signal. The progress is the group's committed offsets
//! (so it counts every instance's work), shown as a bar with rate and ETA on
//! a terminal and as a log line every few seconds otherwise.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::consumer::Consumer as _;
use rdkafka::topic_partition_list::TopicPartitionList;
use tokio_util::sync::CancellationToken;

use crate::config::{Settings, StartFrom, Topics};
use crate::source::{Consumer, METADATA_TIMEOUT, TopicPartition};

/// How often committed offsets are read.
const POLL: Duration = Duration::from_secs(1);
/// How often a plain progress line is logged when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Where each partition starts and must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: i64,
    end: i64,
}

/// Waits until the group has committed every partition of the source topics
/// up to its end offset at start, showing progress, then cancels `done`.
/// Logs and returns without cancelling when the offsets cannot be read.
pub async fn until_end(consumer: Arc<Consumer>, settings: Settings, done: CancellationToken) {
    let spans = {
        let consumer = consumer.clone();
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || spans(&consumer, &settings)).await
    };
    let spans = match spans {
        Ok(Ok(spans)) => spans,
        Ok(Err(err)) => {
            return tracing::error!(%err, "Cannot read the end offsets; --until-end will not stop the run");
        }
        Err(err) => return tracing::error!(%err, "Cannot read the end offsets"),
    };
    let total: i64 = spans.values().map(|s| s.end - s.start).sum();
    tracing::info!(
        partitions = spans.len(),
        records = total,
        "Replaying up to the end offsets present at start"
    );
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_log = Instant::now();
    loop {
        let committed = {
            let (consumer, spans) = (consumer.clone(), spans.clone());
            tokio::task::spawn_blocking(move || committed(&consumer, spans.keys())).await
        };
        let committed = match committed {
            Ok(Ok(committed)) => committed,
            Ok(Err(err)) => {
                tracing::warn!(%err, "Cannot read committed offsets");
                BTreeMap::new()
            }
            Err(_) => BTreeMap::new(),
        };
        let handled: i64 = spans
            .iter()
            .map(|(tp, span)| {
                let at = committed.get(tp).copied().unwrap_or(span.start);
                (at.clamp(span.start, span.end)) - span.start
            })
            .sum();
        let rate = handled as f64 / started.elapsed().as_secs_f64().max(0.001);
        if terminal {
            eprint!("\r\x1b[2K{}", bar(handled, total, rate, 30));
            let _ = std::io::stderr().flush();
        } else if last_log.elapsed() >= LOG_EVERY || handled == total {
            last_log = Instant::now();
            tracing::info!(
                handled,
                total,
                rate = rate.round(),
                eta_s = eta(handled, total, rate).map(|d| d.as_secs()),
                "Replay progress"
            );
        }
        if handled >= total {
            if terminal {
                eprintln!();
            }
            done.cancel();
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The partitions of the source topics with their start (committed offset,
/// else where `start_from` points) and end offsets. A `start_from` time
/// needs no case of its own: `kafka::offsets::start` committed its offsets
/// before the consumer subscribed, and a partition without one starts at
/// the earliest offset.
fn spans(
    consumer: &Consumer,
    settings: &Settings,
) -> anyhow::Result<BTreeMap<TopicPartition, Span>> {
    let Topics::List(topics) = &settings.source.topics else {
        anyhow::bail!("--until-end needs source.topics, not a regex");
    };
    let mut ends = BTreeMap::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) = consumer.fetch_watermarks(topic, partition.id(), METADATA_TIMEOUT)?;
            ends.insert((topic.clone(), partition.id()), (low, high));
        }
    }
    let committed = committed(consumer, ends.keys())?;
    Ok(ends
        .into_iter()
        .map(|(tp, (low, high))| {
            let start = committed
                .get(&tp)
                .copied()
                .unwrap_or(match settings.source.start_from {
                    StartFrom::Earliest | StartFrom::Timestamp(_) => low,
                    StartFrom::Latest => high,
                });
            (
                tp,
                Span {
                    start: start.min(high),
                    end: high,
                },
            )
        })
        .collect())
}

/// The group's committed offsets of `partitions` that have one.
fn committed<'a>(
    consumer: &Consumer,
    partitions: impl Iterator<Item = &'a TopicPartition>,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(list, METADATA_TIMEOUT)?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
            _ => None,
        })
        .collect())
}

fn eta(handled: i64, total: i64, rate: f64) -> Option<Duration> {
    (rate > 0.0).then(|| Duration::from_secs_f64((total - handled).max(0) as f64 / rate))
}

/// `[=========>          ]  45%  4500/10000 records  1234/s  ETA 0:04`
fn bar(handled: i64, total: i64, rate: f64, width: usize) -> String {
    let fraction = if total > 0 {
        handled as f64 / total as f64
    } else {
        1.0
    };
    let filled = ((fraction * width as f64) as usize).min(width);
    let mut line = String::from("[");
    line.push_str(&"=".repeat(filled));
    if filled < width {
        line.push('>');
        line.push_str(&" ".repeat(width - filled - 1));
    }
    let eta = match eta(handled, total, rate) {
        Some(d) => format!("{}:{:02}", d.as_secs() / 60, d.as_secs() % 60),
        None => "-".into(),
    };
    format!(
        "{line}] {:>3}%  {handled}/{total} records  {rate:.0}/s  ETA {eta}",
        (fraction * 100.0) as u32
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_share_rate_and_eta() {
        assert_eq!(
            bar(45, 100, 5.0, 10),
            "[====>     ]  45%  45/100 records  5/s  ETA 0:11"
        );
        assert_eq!(bar(0, 0, 0.0, 4), "[====] 100%  0/0 records  0/s  ETA -");
        assert_eq!(bar(0, 10, 0.0, 4), "[>   ]   0%  0/10 records  0/s  ETA -");
    }
}
