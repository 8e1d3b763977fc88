//! The fault scenarios, and the run that plays one: a broker (Tansu, SQLite
//! storage, so it can be restarted), the function emulator, fcsink as a
//! real process, a producer feeding numbered records while a script of
//! faults plays, then the reconciliation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fc_emulator::{Emulator, Fault};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::RwLock;

use super::records::{self, Mix, Produced};
use super::{Report, reconcile};
use crate::broker::Broker;
use crate::connector::{self, Process, delivered};
use crate::plugins::{compile_cache_dir, plugin};

/// The source topic.
const TOPIC: &str = "ledger";
/// The connector's name; its group is `connect-ledger`.
const NAME: &str = "ledger";
const DEAD_LETTER_TOPIC: &str = "connect-error-ledger";
const PARTITIONS: i32 = 4;
const CONCURRENCY: usize = 4;
/// Keys over the numbered records of a `"key"` plan: several per lane.
const KEYS: usize = 64;
/// Every call takes at least this long, so batches are in flight when
/// something breaks.
const BASE_LATENCY: Duration = Duration::from_millis(20);
/// The request limit: FC's async limit, which the emulator enforces; sync
/// plans set it as `batch.max_request_bytes`.
const REQUEST_LIMIT: usize = 128 * 1024;
/// librdkafka's `max.poll.interval.ms` in the run; [`Step::Slow`] calls take longer.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(7);
/// How long each slow call takes.
const SLOW_CALL: Duration = Duration::from_secs(9);
/// How long the broker keeps a killed instance in the group.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// One fault in a plan's script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// 503s, then 429s with `Retry-After`, each for a few seconds.
    Storm,
    /// Every worker's next call takes longer than `max.poll.interval.ms`.
    Slow,
    /// SIGKILL at a random moment, then a restart.
    Kill,
    /// The broker is killed and started again (its data survives).
    BrokerRestart,
    /// A second fcsink joins the group, works a while and leaves (SIGTERM).
    SecondInstance,
}

impl Step {
    /// Roughly how long the step takes, to spread production over the script.
    fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Step::Storm => 7,
            Step::Slow => 11,
            Step::Kill => 13,
            Step::BrokerRestart => 6,
            Step::SecondInstance => 10,
        })
    }
}

/// A scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its name on the command line and in reports.
    pub name: &'static str,
    /// Sync invocation (the function's answer is awaited) rather than async.
    pub sync: bool,
    /// The filter plugin and the trapping, looping and allocating plugins.
    pub plugins: bool,
    /// Edge records (see [`records`]).
    pub edge: bool,
    /// `source.ordering`; with `"key"` the numbered records share a few
    /// keys and the emulator's per-key order must hold.
    pub ordering: &'static str,
    /// `delivery.idempotency = "fc_task_id"`, with asynchronous tasks on
    /// at the emulated function (which then refuses a task ID twice, as FC
    /// does).
    pub task_ids: bool,
    /// The faults, played in order.
    pub steps: Vec<Step>,
}

impl Plan {
    fn new(name: &'static str, steps: &[Step]) -> Plan {
        Plan {
            name,
            sync: false,
            plugins: false,
            edge: false,
            ordering: "partition",
            task_ids: false,
            steps: steps.to_vec(),
        }
    }

    /// Whether fcsink runs without crash, restart or rebalance, so that
    /// nothing may arrive twice.
    fn undisturbed(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s, Step::Storm | Step::Slow))
    }
}

/// Every scenario: each fault alone, then all of them together.
pub fn plans() -> Vec<Plan> {
    use Step::*;
    vec![
        Plan::new("storms", &[Storm]),
        Plan {
            sync: true,
            ..Plan::new("slow", &[Slow])
        },
        Plan::new("sigkill", &[Kill, Kill, Kill, Kill, Kill]),
        // The same kills with FC task IDs: retries FC already took are
        // refused, not run again (what a restart re-forms differently still
        // runs twice until the in-flight journal exists).
        Plan {
            task_ids: true,
            ..Plan::new("sigkill-task-ids", &[Kill, Kill, Kill, Kill, Kill])
        },
        Plan::new("broker-restart", &[BrokerRestart]),
        Plan::new("rebalance", &[SecondInstance]),
        Plan {
            plugins: true,
            ..Plan::new("plugins", &[])
        },
        Plan {
            edge: true,
            ..Plan::new("edge", &[])
        },
        // Several batches of a partition in flight; crashes replay from the
        // lowest offset not handled, and each key stays in order.
        Plan {
            ordering: "key",
            ..Plan::new("by-key", &[Storm, Kill, Kill])
        },
        Plan {
            sync: true,
            plugins: true,
            edge: true,
            ..Plan::new(
                "all",
                &[Storm, Kill, Slow, BrokerRestart, Kill, SecondInstance, Kill],
            )
        },
    ]
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Numbered records per plan.
    pub records: usize,
    /// The fcsink program.
    pub fcsink: PathBuf,
    /// Seeds the kill moments.
    pub seed: u64,
}

/// What the script shares with the run.
struct Stage {
    broker: RwLock<Broker>,
    emulator: Emulator,
    plan: Plan,
    config_file: PathBuf,
    log: PathBuf,
    fcsink: String,
}

/// Plays `plan` and reconciles.
pub async fn run(plan: &Plan, options: &Options) -> Report {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let broker = Broker::sqlite().await;
    // The edge plan's records reach 4 MiB, past Apache Kafka's 1 MB default:
    // the source and the dead-letter topic are made for them, as a user
    // would (fcsink creates a missing dead-letter topic with the broker's
    // defaults).
    for topic in [TOPIC, DEAD_LETTER_TOPIC] {
        let partitions = if topic == TOPIC { PARTITIONS } else { 1 };
        broker
            .create_topic_with(topic, partitions, 1, &[crate::broker::LARGE_RECORDS])
            .await;
    }
    let emulator = connector::emulator(|config| config.async_tasks = plan.task_ids).await;
    let stage = Arc::new(Stage {
        config_file: dir.path().join("fcsink.toml"),
        log: dir.path().join("fcsink.log"),
        fcsink: options.fcsink.display().to_string(),
        broker: RwLock::new(broker),
        emulator,
        plan: plan.clone(),
    });
    baseline_faults(&stage);
    let config = config(
        plan,
        &stage.broker.read().await.bootstrap(),
        &stage.emulator,
    );
    std::fs::write(&stage.config_file, config).expect("write the config");

    let mix = Mix {
        numbered: options.records,
        partitions: PARTITIONS,
        plugins: plan.plugins,
        edge_limit: plan.edge.then_some(REQUEST_LIMIT),
        keys: (plan.ordering == "key").then_some(KEYS),
    };
    let script_length: Duration = plan.steps.iter().map(|s| s.duration()).sum();
    let producer = tokio::spawn(produce(
        stage.clone(),
        records::plan(mix, TOPIC),
        script_length.max(Duration::from_secs(4)),
    ));

    let mut problems = Vec::new();
    let mut main = Process::start(&stage.fcsink, &stage.config_file, stage.log.clone());
    connector::wait_until("a first delivery", Duration::from_secs(120), || async {
        !delivered(&stage.emulator).is_empty()
    })
    .await;
    let mut rng = StdRng::seed_from_u64(options.seed);
    for &step in &plan.steps {
        if let Err(problem) = play(step, &stage, &mut main, &mut rng).await {
            problems.push(problem);
        }
    }
    let produced = match producer.await {
        Ok(produced) => produced,
        Err(err) => panic!("the producer failed: {err}"),
    };
    if let Err(problem) = wait_committed(&stage, &produced, options.records).await {
        problems.push(problem);
    }
    let status = main.terminate();
    if !status.success() {
        problems.push(format!("fcsink exited with {status} on SIGTERM"));
    }

    let dead_letters = stage
        .broker
        .read()
        .await
        .consume_all(DEAD_LETTER_TOPIC, Duration::from_secs(2))
        .await;
    let mut report = reconcile(plan.name, &produced, &stage.emulator, TOPIC, &dead_letters);
    report.elapsed = started.elapsed();
    report.problems.extend(problems);
    if plan.edge {
        let arrived = delivered(&stage.emulator);
        report.problems.extend(records::check_edges(
            TOPIC,
            &produced,
            &arrived,
            &dead_letters,
        ));
    }
    report.problems.extend(expectations(plan, &report));
    if plan.ordering == "key" {
        report.problems.extend(
            stage
                .emulator
                .key_order_violations()
                .into_iter()
                .take(5)
                .map(|v| format!("per-key order broken: {v}")),
        );
    }
    if !report.passed() {
        let kept = dir.keep();
        report.problems.push(format!(
            "fcsink's log and config are kept in {}",
            kept.display()
        ));
    }
    report
}

/// The faults every run has: the base latency and, with edge records, a
/// function that refuses the request carrying [`records::REFUSED_KEY`].
fn baseline_faults(stage: &Stage) {
    stage.emulator.clear_faults();
    stage.emulator.inject(Fault::latency(BASE_LATENCY));
    if stage.plan.edge {
        stage
            .emulator
            .inject(Fault::status(400).matching(records::REFUSED_KEY));
    }
}

fn config(plan: &Plan, bootstrap: &str, emulator: &Emulator) -> String {
    let mut transforms = String::new();
    if plan.plugins {
        let path = |name: &str| format!("{:?}", plugin(name).display().to_string());
        transforms = format!(
            "[[transform]]\nplugin = {}\n\
             config = {{ field = \"keep\", op = \"equals\", value = \"true\", on_invalid = \"keep\" }}\n",
            path("json-filter")
        );
        for (mode, trigger) in [
            ("trap", records::TRAP),
            ("loop", records::LOOP),
            ("alloc", records::OOM),
        ] {
            transforms += &format!(
                "[[transform]]\nplugin = {}\nconfig = {{ mode = \"{mode}\", trigger = \"{trigger}\" }}\n",
                path("misbehave")
            );
        }
    }
    format!(
        r#"
name = "{NAME}"

[source]
bootstrap_servers = "{bootstrap}"
topics = ["{TOPIC}"]
concurrency = {CONCURRENCY}
ordering = "{ordering}"

[source.kafka]
# A killed process holds its partitions until its session times out.
"session.timeout.ms" = {session}
"heartbeat.interval.ms" = 500
"max.poll.interval.ms" = {max_poll}
# Big records need fetches larger than they are on Tansu (no KIP-74).
"max.partition.fetch.bytes" = 5242880

[batch]
size = 20
linger_ms = 50
max_request_bytes = {REQUEST_LIMIT}

[delivery]
# Enough retries to ride out the storms.
retries = 10
backoff_initial_ms = 200
backoff_max_ms = 2000
idempotency = "{idempotency}"

[sandbox]
cache_dir = {cache:?}
call_timeout_ms = 1000

[target.fc]
endpoint = "http://{endpoint}"
service = "ledger"
function = "sink"
send_mode = "{mode}"
timeout_ms = 30000

{transforms}
"#,
        max_poll = MAX_POLL_INTERVAL.as_millis(),
        session = SESSION_TIMEOUT.as_millis(),
        cache = compile_cache_dir().display().to_string(),
        endpoint = emulator.addr(),
        mode = if plan.sync { "sync" } else { "async" },
        ordering = plan.ordering,
        idempotency = if plan.task_ids { "fc_task_id" } else { "none" },
    )
}

/// Produces `planned` in chunks spread over `spread`; returns what the
/// broker acknowledged. Holds the broker's read lock per chunk, so a
/// restart never cuts a write in half (which could store a record twice).
async fn produce(
    stage: Arc<Stage>,
    planned: Vec<records::Planned>,
    spread: Duration,
) -> Vec<Produced> {
    const CHUNKS: usize = 40;
    // Edge records go first, alone, so their offsets are the ones they were sized for.
    let edges = planned.iter().take_while(|p| p.edge.is_some()).count();
    let rest = planned.len() - edges;
    let chunk = rest.div_ceil(CHUNKS).max(1);
    let mut chunks: Vec<&[records::Planned]> = vec![&planned[..edges]];
    chunks.extend(planned[edges..].chunks(chunk));
    let pause = spread / CHUNKS as u32;
    let mut produced = Vec::with_capacity(planned.len());
    for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
        let records: Vec<_> = chunk
            .iter()
            .map(|p| (Some(p.partition), p.key.as_deref(), p.value.as_deref()))
            .collect();
        let positions = stage.broker.read().await.produce(TOPIC, &records).await;
        produced.extend(
            chunk
                .iter()
                .zip(positions)
                .map(|(planned, position)| Produced::new(planned, position)),
        );
        tokio::time::sleep(pause).await;
    }
    produced
}

/// Plays one step; returns what went wrong in the harness's eyes.
async fn play(
    step: Step,
    stage: &Stage,
    main: &mut Process,
    rng: &mut StdRng,
) -> Result<(), String> {
    let seconds = |s: f64| tokio::time::sleep(Duration::from_secs_f64(s));
    eprintln!("[{}] {step:?}", stage.plan.name);
    match step {
        Step::Storm => {
            stage.emulator.inject(Fault::status(503));
            seconds(2.5).await;
            baseline_faults(stage);
            seconds(1.0).await;
            stage.emulator.inject(Fault::status(429).retry_after(1));
            seconds(2.5).await;
            baseline_faults(stage);
            seconds(1.0).await;
        }
        Step::Slow => {
            stage
                .emulator
                .inject(Fault::latency(SLOW_CALL).times(CONCURRENCY as u32));
            seconds(SLOW_CALL.as_secs_f64() + 2.0).await;
        }
        Step::Kill => {
            seconds(rng.random_range(0.5..3.0)).await;
            main.kill();
            eprintln!(
                "[{}] killed after {} deliveries",
                stage.plan.name,
                delivered(&stage.emulator).len()
            );
            // Tansu 0.6 never evicts a killed member once another has
            // joined, so the restart waits until its session has expired; a
            // fast restart is left to the tests against Apache Kafka.
            seconds(SESSION_TIMEOUT.as_secs_f64() + 1.0).await;
            *main = Process::start(&stage.fcsink, &stage.config_file, stage.log.clone());
            seconds(2.0).await;
        }
        Step::BrokerRestart => {
            let mut broker = stage.broker.write().await;
            broker.stop();
            seconds(3.0).await;
            broker.start().await;
            drop(broker);
            seconds(2.0).await;
        }
        Step::SecondInstance => {
            let log = stage.log.with_extension("second.log");
            let mut second = Process::start(&stage.fcsink, &stage.config_file, log.clone());
            // It works a while once the group has given it partitions.
            let assigned = tokio::time::timeout(Duration::from_secs(30), async {
                while !std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("Partitions assigned partitions=[(")
                {
                    seconds(0.1).await;
                }
            })
            .await;
            seconds(4.0).await;
            let status = second.terminate();
            seconds(1.0).await;
            if assigned.is_err() {
                return Err("the second fcsink was not given a partition within 30 s".into());
            }
            if !status.success() {
                return Err(format!("the second fcsink exited with {status}"));
            }
        }
    }
    Ok(())
}

/// Waits until the group's committed offsets reach the end of every
/// partition that was produced to.
async fn wait_committed(
    stage: &Stage,
    produced: &[Produced],
    records: usize,
) -> Result<(), String> {
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for record in produced {
        let (partition, offset) = record.position;
        let end = ends.entry(partition).or_default();
        *end = (*end).max(offset + 1);
    }
    let timeout = Duration::from_secs(120 + records as u64 / 500);
    let deadline = Instant::now() + timeout;
    let group = format!("connect-{NAME}");
    loop {
        let committed = stage
            .broker
            .read()
            .await
            .committed_offsets(&group, TOPIC)
            .await;
        if committed == ends {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "offsets not committed to the end within {timeout:?}: committed {committed:?}, \
                 end {ends:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the plan promises beyond "nothing lost".
fn expectations(plan: &Plan, report: &Report) -> Vec<String> {
    let mut problems = Vec::new();
    if plan.undisturbed() && report.duplicates > 0 {
        problems.push(format!(
            "{} duplicates without a crash, restart or rebalance",
            report.duplicates
        ));
    }
    if !plan.plugins && !plan.edge && report.dead_lettered > 0 {
        problems.push(format!(
            "{} records dead-lettered although every fault was transient: {:?}",
            report.dead_lettered, report.dead_letter_codes
        ));
    }
    if plan.plugins {
        for code in ["plugin-trapped", "plugin-timeout", "plugin-memory"] {
            if !report.dead_letter_codes.contains_key(code) {
                problems.push(format!("no dead letter with code {code}"));
            }
        }
    }
    problems
}

/// The `fcsink` program next to the running binary (`target/<profile>/`),
/// as `cargo build -p fcsink-tests --bins` leaves it.
pub fn fcsink_beside(current: &Path) -> PathBuf {
    current.with_file_name("fcsink-under-test")
}
