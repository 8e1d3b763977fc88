//! A real Kafka-protocol broker for the integration tests: Tansu (a young
//! Rust broker, one node) or Apache Kafka (KRaft, one node or a cluster),
//! run as child processes on free loopback ports with their own temporary
//! directories.
//!
//! [`Broker::memory`] and [`Broker::sqlite`] start the broker that
//! `FCSINK_BROKER` names (`kafka`, the default, or `tansu`), so the same
//! test runs on either; [`Broker::tansu`], [`Broker::kafka`] and
//! [`Broker::kafka_cluster`] pick one. `broker/tansu.rs` and
//! `broker/kafka.rs` run the processes; `broker/client.rs` holds what tests
//! do through Kafka clients (topics, produce, read back, offsets). Every
//! method panics with a readable message instead of returning errors, so
//! tests stay short.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use fcsink_tests::broker::Broker;
//!
//! let broker = Broker::memory().await;
//! broker.create_topic("in", 3).await;
//! broker.produce("in", &[(Some(0), None, Some(b"hello".as_slice()))]).await;
//! let records = broker.consume_all("in", Duration::from_secs(2)).await;
//! assert_eq!(records[0].value.as_deref(), Some(b"hello".as_slice()));
//! # }
//! ```

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

mod client;
mod kafka;
mod tansu;

pub use client::{ConsumedRecord, ProduceRecord};
pub use kafka::{SASL_PASSWORD, SASL_USER};

/// The topic config for records over Apache Kafka's default 1 MB limit, as
/// a user sets it (Tansu has no such limit).
pub const LARGE_RECORDS: (&str, &str) = ("max.message.bytes", "16777216");

/// Where the broker keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Lost at [`Broker::restart`]: Tansu's `memory://`; Apache Kafka wipes
    /// and reformats its log dirs.
    Memory,
    /// Survives [`Broker::restart`]: a SQLite file for Tansu, the log dirs
    /// for Apache Kafka.
    Sqlite,
}

/// Which broker implementation a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Tansu 0.6 (`scripts/install-tansu.sh`).
    Tansu,
    /// Apache Kafka 4.1 in KRaft mode (`scripts/install-kafka.sh`).
    Kafka,
}

impl Flavor {
    /// The flavor `FCSINK_BROKER` names: `kafka` (the default, what users
    /// run) or `tansu`.
    ///
    /// # Panics
    ///
    /// On any other value.
    pub fn from_env() -> Flavor {
        match std::env::var("FCSINK_BROKER").as_deref() {
            Err(_) | Ok("") | Ok("kafka") => Flavor::Kafka,
            Ok("tansu") => Flavor::Tansu,
            Ok(other) => panic!("FCSINK_BROKER={other}: expected kafka or tansu"),
        }
    }
}

enum Process {
    Tansu(tansu::Tansu),
    Kafka(kafka::Kafka),
}

/// A running broker (or cluster), killed when dropped.
///
/// Start one per test: each has its own ports and directories, so tests can
/// run in parallel.
pub struct Broker {
    process: Process,
    storage: Storage,
}

impl Broker {
    /// Starts the `FCSINK_BROKER` broker whose data is lost at a restart.
    pub async fn memory() -> Broker {
        Broker::with_storage(Storage::Memory).await
    }

    /// Starts the `FCSINK_BROKER` broker whose data survives
    /// [`Broker::restart`].
    pub async fn sqlite() -> Broker {
        Broker::with_storage(Storage::Sqlite).await
    }

    /// Starts the `FCSINK_BROKER` broker with `storage`.
    ///
    /// # Panics
    ///
    /// If the broker is not installed or does not come up; the message
    /// carries the broker's log.
    pub async fn with_storage(storage: Storage) -> Broker {
        match Flavor::from_env() {
            Flavor::Tansu => Broker::tansu(storage).await,
            Flavor::Kafka => Broker::kafka_nodes(1, storage).await,
        }
    }

    /// Starts Tansu, whatever `FCSINK_BROKER` says.
    pub async fn tansu(storage: Storage) -> Broker {
        Broker {
            process: Process::Tansu(tansu::Tansu::start_new(storage).await),
            storage,
        }
    }

    /// Starts a one-node Apache Kafka, whatever `FCSINK_BROKER` says.
    pub async fn kafka() -> Broker {
        Broker::kafka_nodes(1, Storage::Sqlite).await
    }

    /// Starts an Apache Kafka cluster of `nodes` combined broker+controller
    /// nodes (ids 1..=nodes); internal topics are replicated min(nodes, 3)
    /// times.
    pub async fn kafka_cluster(nodes: u32) -> Broker {
        Broker::kafka_nodes(nodes, Storage::Sqlite).await
    }

    /// Starts a one-node Apache Kafka that also listens for SASL_SSL
    /// (PLAIN and SCRAM-SHA-256 for [`SASL_USER`]; see
    /// [`sasl_bootstrap`](Broker::sasl_bootstrap)).
    pub async fn kafka_secured() -> Broker {
        Broker {
            process: Process::Kafka(kafka::Kafka::start_new(1, true, Ipv4Addr::LOCALHOST).await),
            storage: Storage::Sqlite,
        }
    }

    async fn kafka_nodes(nodes: u32, storage: Storage) -> Broker {
        Broker {
            process: Process::Kafka(
                kafka::Kafka::start_new(nodes, false, Ipv4Addr::LOCALHOST).await,
            ),
            storage,
        }
    }

    /// Starts a one-node Apache Kafka whose client listener binds and
    /// advertises `host` (a veth link's address, so that a process in
    /// another network namespace can be cut off from it, [`crate::netns`]).
    pub async fn kafka_on(host: Ipv4Addr) -> Broker {
        Broker {
            process: Process::Kafka(kafka::Kafka::start_new(1, false, host).await),
            storage: Storage::Sqlite,
        }
    }

    /// Which broker this is.
    pub fn flavor(&self) -> Flavor {
        match self.process {
            Process::Tansu(_) => Flavor::Tansu,
            Process::Kafka(_) => Flavor::Kafka,
        }
    }

    /// The `bootstrap.servers` value for clients, e.g. `127.0.0.1:40123`
    /// (every node of a cluster, comma-separated).
    pub fn bootstrap(&self) -> String {
        match &self.process {
            Process::Tansu(tansu) => tansu.bootstrap(),
            Process::Kafka(kafka) => kafka.bootstrap(),
        }
    }

    /// The SASL_SSL `bootstrap.servers` of a [`Broker::kafka_secured`] and
    /// the CA file (PEM) that verifies its certificate.
    ///
    /// # Panics
    ///
    /// On a broker started without security.
    pub fn sasl_bootstrap(&self) -> (String, std::path::PathBuf) {
        self.kafka_ref()
            .sasl_bootstrap()
            .expect("this test needs Broker::kafka_secured")
    }

    /// Kills the broker, every node of a cluster (like a crash, no clean
    /// shutdown). Does nothing if it is already stopped.
    pub fn stop(&mut self) {
        match &mut self.process {
            Process::Tansu(tansu) => tansu.stop(),
            Process::Kafka(kafka) => kafka.kill_all(),
        }
    }

    /// Starts the broker (every stopped node) again on the same ports and
    /// directories. Does nothing if it is running.
    ///
    /// # Panics
    ///
    /// If the broker does not come up; the message carries its log.
    pub async fn start(&mut self) {
        match &mut self.process {
            Process::Tansu(tansu) => tansu.start().await,
            Process::Kafka(kafka) => kafka.start_all().await,
        }
    }

    /// [`stop`](Broker::stop) then [`start`](Broker::start). With
    /// [`Storage::Memory`] the broker comes back empty.
    pub async fn restart(&mut self) {
        self.stop();
        if let (Process::Kafka(kafka), Storage::Memory) = (&mut self.process, self.storage) {
            kafka.wipe();
        }
        self.start().await;
    }

    /// The node ids of an Apache Kafka cluster (1-based).
    ///
    /// # Panics
    ///
    /// On Tansu, which is a single node without ids of its own here.
    pub fn node_ids(&self) -> Vec<u32> {
        self.kafka_ref().node_ids()
    }

    /// SIGKILLs one node of an Apache Kafka cluster.
    pub fn kill_node(&mut self, id: u32) {
        self.kafka_mut().kill(id);
    }

    /// Stops one node of an Apache Kafka cluster cleanly (SIGTERM), as a
    /// rolling restart does.
    pub fn stop_node(&mut self, id: u32) {
        self.kafka_mut().stop(id);
    }

    /// The active controller of an Apache Kafka cluster (the KRaft quorum's
    /// leader), `None` while there is none.
    pub fn quorum_leader(&self) -> Option<u32> {
        self.kafka_ref().quorum_leader()
    }

    /// Starts a killed node of an Apache Kafka cluster again and waits
    /// until it answers.
    pub async fn start_node(&mut self, id: u32) {
        self.kafka_mut().start(id).await;
    }

    fn kafka_ref(&self) -> &kafka::Kafka {
        match &self.process {
            Process::Kafka(kafka) => kafka,
            Process::Tansu(_) => panic!("this test needs Apache Kafka (Broker::kafka_cluster)"),
        }
    }

    fn kafka_mut(&mut self) -> &mut kafka::Kafka {
        match &mut self.process {
            Process::Kafka(kafka) => kafka,
            Process::Tansu(_) => panic!("this test needs Apache Kafka (Broker::kafka_cluster)"),
        }
    }
}

fn repo_root() -> &'static Path {
    let tests_package = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests_package
        .parent()
        .expect("the tests package lives inside the repository")
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("read the bound port").port()
}
