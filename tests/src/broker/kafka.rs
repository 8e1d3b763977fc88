//! Apache Kafka in KRaft mode: one or more combined broker+controller nodes,
//! each a JVM child process on free loopback ports with its own directory.
//!
//! The jars come from `scripts/install-kafka.sh`; `scripts/kafka.sh` starts
//! the same setup by hand. Heaps are small so three nodes fit beside the
//! tests on a 2-core machine.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::consumer::Consumer;
use tempfile::TempDir;

use super::{free_port, repo_root};

/// The version `scripts/install-kafka.sh` installs.
const KAFKA_VERSION: &str = "4.1.1";
/// How long a node may take from spawn to answering metadata.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// Any fixed KRaft cluster id (a base64 UUID).
const CLUSTER_ID: &str = "ZmNzaW5rLXRlc3RzLWthZms";
/// What `kafka.Kafka` logs once its listeners are up.
const READY_LINE: &str = "Kafka Server started";
/// The node's combined stdout/stderr inside its directory.
const LOG_FILE: &str = "kafka.log";

/// The user a secured node knows, for both SASL/PLAIN and
/// SASL/SCRAM-SHA-256, and its password.
pub const SASL_USER: &str = "fcsink";
/// [`SASL_USER`]'s password.
pub const SASL_PASSWORD: &str = "fcsink-test-password";
/// The broker keystore's password (a test value, not a secret).
const KEYSTORE_PASSWORD: &str = "fcsink-test-keystore";

/// One KRaft node (broker and controller in one JVM).
struct Node {
    id: u32,
    /// The address of the plaintext listener (loopback unless a test puts
    /// the broker on a veth link, [`crate::netns`]).
    host: Ipv4Addr,
    port: u16,
    controller_port: u16,
    /// The SASL_SSL listener of a secured node.
    sasl_port: Option<u16>,
    dir: PathBuf,
    /// `None` while stopped.
    child: Option<Child>,
    /// Where the current run's output starts in the log file.
    log_offset: u64,
}

/// A running Apache Kafka cluster, killed when dropped.
pub(super) struct Kafka {
    java: PathBuf,
    libs: PathBuf,
    nodes: Vec<Node>,
    /// The CA that signed a secured cluster's certificates.
    ca: Option<PathBuf>,
    /// Holds every node's directory.
    root: TempDir,
}

impl Kafka {
    /// Formats and starts `nodes` nodes and waits until every one answers.
    /// A `secured` cluster also listens for SASL_SSL (PLAIN and
    /// SCRAM-SHA-256 for [`SASL_USER`], a certificate for `127.0.0.1` signed
    /// by a CA of its own), as ApsaraMQ for Kafka's SASL endpoint does; its
    /// plaintext listener stays for the tests' own clients. The plaintext
    /// listener binds and advertises `host`.
    pub(super) async fn start_new(nodes: u32, secured: bool, host: Ipv4Addr) -> Kafka {
        let root = tempfile::Builder::new()
            .prefix("fcsink-kafka-")
            .tempdir()
            .expect("create a temporary directory for Kafka");
        let mut kafka = Kafka {
            java: java_bin(),
            libs: kafka_libs(),
            nodes: (1..=nodes)
                .map(|id| Node {
                    id,
                    host,
                    port: free_port(),
                    controller_port: free_port(),
                    sasl_port: secured.then(free_port),
                    dir: root.path().join(format!("node-{id}")),
                    child: None,
                    log_offset: 0,
                })
                .collect(),
            ca: None,
            root,
        };
        if secured {
            let ca = make_certificates(kafka.root.path()).unwrap_or_else(|err| panic!("{err:#}"));
            kafka.ca = Some(ca);
        }
        kafka.format().unwrap_or_else(|err| panic!("{err:#}"));
        for index in 0..kafka.nodes.len() {
            kafka.spawn(index).unwrap_or_else(|err| panic!("{err:#}"));
        }
        for index in 0..kafka.nodes.len() {
            kafka
                .wait_ready(index)
                .await
                .unwrap_or_else(|err| panic!("{err:#}"));
        }
        kafka
    }

    /// Every node's client address, comma-separated.
    pub(super) fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("{}:{}", node.host, node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every node's SASL_SSL address, comma-separated, and the CA file that
    /// verifies them; `None` unless the cluster is secured.
    pub(super) fn sasl_bootstrap(&self) -> Option<(String, PathBuf)> {
        let ca = self.ca.clone()?;
        let addresses = self
            .nodes
            .iter()
            .filter_map(|node| node.sasl_port)
            .map(|port| format!("127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        Some((addresses, ca))
    }

    /// The node ids, 1-based.
    pub(super) fn node_ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    /// SIGKILLs node `id` (no clean shutdown). Does nothing if it is stopped.
    pub(super) fn kill(&mut self, id: u32) {
        if let Some(mut child) = self.node_mut(id).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `id` as an operator would (SIGTERM: it hands over its
    /// leaderships and closes its logs) and waits for it to exit. Does
    /// nothing if it is stopped.
    pub(super) fn stop(&mut self, id: u32) {
        if let Some(mut child) = self.node_mut(id).child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// The node leading the KRaft quorum (the active controller), as
    /// Kafka's own `kafka-metadata-quorum describe --status` reports it.
    pub(super) fn quorum_leader(&self) -> Option<u32> {
        let node = self.nodes.iter().find(|node| node.child.is_some())?;
        let output = self
            .java_command(node)
            .arg("org.apache.kafka.tools.MetadataQuorumCommand")
            .args([
                "--bootstrap-server",
                &self.bootstrap(),
                "describe",
                "--status",
            ])
            .output()
            .ok()?;
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|line| line.strip_prefix("LeaderId:"))
            .and_then(|id| id.trim().parse().ok())
    }

    /// SIGKILLs every node.
    pub(super) fn kill_all(&mut self) {
        for id in self.node_ids() {
            self.kill(id);
        }
    }

    /// Starts node `id` again on its ports and data. Does nothing if it runs.
    pub(super) async fn start(&mut self, id: u32) {
        let index = self.index(id);
        if self.nodes[index].child.is_none() {
            self.spawn(index).unwrap_or_else(|err| panic!("{err:#}"));
            self.wait_ready(index)
                .await
                .unwrap_or_else(|err| panic!("{err:#}"));
        }
    }

    /// Starts every stopped node and waits for them all.
    pub(super) async fn start_all(&mut self) {
        let stopped: Vec<usize> = (0..self.nodes.len())
            .filter(|&index| self.nodes[index].child.is_none())
            .collect();
        for &index in &stopped {
            self.spawn(index).unwrap_or_else(|err| panic!("{err:#}"));
        }
        for index in stopped {
            self.wait_ready(index)
                .await
                .unwrap_or_else(|err| panic!("{err:#}"));
        }
    }

    /// Deletes every node's data and formats the storage again (the nodes
    /// must be stopped): the cluster comes back empty, as Tansu's memory
    /// storage does after a restart.
    pub(super) fn wipe(&mut self) {
        for node in &self.nodes {
            let _ = fs::remove_dir_all(node.dir.join("data"));
        }
        self.format().unwrap_or_else(|err| panic!("{err:#}"));
    }

    fn index(&self, id: u32) -> usize {
        self.nodes
            .iter()
            .position(|node| node.id == id)
            .unwrap_or_else(|| panic!("no Kafka node {id}"))
    }

    fn node_mut(&mut self, id: u32) -> &mut Node {
        let index = self.index(id);
        &mut self.nodes[index]
    }

    /// Writes each node's `server.properties` and formats its log dir.
    fn format(&self) -> Result<()> {
        let voters = self
            .nodes
            .iter()
            .map(|node| format!("{}@127.0.0.1:{}", node.id, node.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        let replication = self.nodes.len().min(3);
        for node in &self.nodes {
            fs::create_dir_all(node.dir.join("data"))?;
            let mut properties = server_properties(node, &voters, replication);
            if let Some(sasl_port) = node.sasl_port {
                properties = secured_properties(
                    &properties,
                    sasl_port,
                    &self.root.path().join("broker.p12"),
                );
            }
            fs::write(node.dir.join("server.properties"), properties)?;
            fs::write(node.dir.join("log4j2.properties"), LOG4J2_PROPERTIES)?;
            let mut format = self.java_command(node);
            format
                .args(["kafka.tools.StorageTool", "format", "--ignore-formatted"])
                .args(["-t", CLUSTER_ID, "-c"])
                .arg(node.dir.join("server.properties"));
            if node.sasl_port.is_some() {
                // SCRAM credentials live in the cluster metadata.
                format.arg("--add-scram").arg(format!(
                    "SCRAM-SHA-256=[name={SASL_USER},password={SASL_PASSWORD}]"
                ));
            }
            let output = format
                .output()
                .with_context(|| format!("run {}", self.java.display()))?;
            if !output.status.success() {
                bail!(
                    "formatting Kafka node {} failed:\n{}{}",
                    node.id,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        Ok(())
    }

    fn java_command(&self, node: &Node) -> Command {
        let mut command = Command::new(&self.java);
        // C1 only and the serial collector: a faster start and less memory,
        // which matter more here than peak throughput.
        command
            .args(["-Xms64m", "-Xmx256m", "-XX:+UseSerialGC"])
            .arg("-XX:TieredStopAtLevel=1")
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                node.dir.join("log4j2.properties").display()
            ))
            .arg("-cp")
            .arg(format!("{}/*", self.libs.display()))
            .current_dir(&node.dir)
            .stdin(Stdio::null());
        command
    }

    fn spawn(&mut self, index: usize) -> Result<()> {
        let node = &self.nodes[index];
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join(LOG_FILE))?;
        writeln!(log, "--- fcsink-tests: starting Kafka node {} ---", node.id)?;
        let log_offset = log.metadata()?.len();
        let child = self
            .java_command(node)
            .arg("kafka.Kafka")
            .arg(node.dir.join("server.properties"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {}", self.java.display()))?;
        let node = &mut self.nodes[index];
        node.child = Some(child);
        node.log_offset = log_offset;
        Ok(())
    }

    /// Waits until node `index` logs that it started and answers metadata.
    async fn wait_ready(&mut self, index: usize) -> Result<()> {
        let node = &self.nodes[index];
        let bootstrap = format!("{}:{}", node.host, node.port);
        let probe = Arc::new(super::client::reader(&bootstrap, "fcsink-tests-probe")?);
        let started = Instant::now();
        loop {
            let node = &mut self.nodes[index];
            if let Some(status) = node
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                node.child = None;
                bail!(
                    "Kafka node {} exited ({status}) while starting:\n{}",
                    node.id,
                    node.log_tail()
                );
            }
            if node.current_log().contains(READY_LINE) {
                let probe = Arc::clone(&probe);
                let answered = tokio::task::spawn_blocking(move || {
                    probe
                        .fetch_metadata(None, Duration::from_millis(500))
                        .is_ok_and(|metadata| !metadata.brokers().is_empty())
                })
                .await?;
                if answered {
                    return Ok(());
                }
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                let id = node.id;
                let tail = node.log_tail();
                self.kill(id);
                bail!(
                    "Kafka node {id} did not answer on {bootstrap} within {STARTUP_TIMEOUT:?}:\n{tail}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.kill_all();
        // Keep the logs of a failed test around for reading.
        if std::thread::panicking() {
            let root = std::mem::replace(&mut self.root, tempfile::tempdir().expect("tempdir"));
            eprintln!("Kafka logs kept in {}", root.keep().display());
        }
    }
}

impl Node {
    fn current_log(&self) -> String {
        let log = fs::read(self.dir.join(LOG_FILE)).unwrap_or_default();
        let start = (self.log_offset as usize).min(log.len());
        String::from_utf8_lossy(&log[start..]).into_owned()
    }

    fn log_tail(&self) -> String {
        let log = self.current_log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "--- last lines of Kafka node {}'s output ---\n{tail}",
            self.id
        )
    }
}

/// A combined-mode node; the replication factors follow the cluster size
/// (at most 3), so one node works and three survive a dead node.
fn server_properties(node: &Node, voters: &str, replication: usize) -> String {
    let min_isr = if replication > 1 { 2 } else { 1 };
    format!(
        "process.roles=broker,controller
node.id={id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor={replication}
offsets.topic.replication.factor={replication}
offsets.topic.num.partitions=10
transaction.state.log.replication.factor={replication}
transaction.state.log.min.isr={min_isr}
group.initial.rebalance.delay.ms=0
# Topics exist only when created, as on managed Kafka (and Tansu).
auto.create.topics.enable=false
# Records up to 16 MiB between brokers (the 10 MB tests).
replica.fetch.max.bytes=16777216
replica.fetch.response.max.bytes=33554432
# A killed node's partitions move quickly.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
",
        id = node.id,
        host = node.host,
        port = node.port,
        controller = node.controller_port,
        data = node.dir.join("data").display(),
    )
}

/// `properties` with a SASL_SSL listener on `sasl_port` added: PLAIN and
/// SCRAM-SHA-256, TLS with the PKCS#12 `keystore`.
fn secured_properties(properties: &str, sasl_port: u16, keystore: &Path) -> String {
    let mut out = String::new();
    for line in properties.lines() {
        if let Some(rest) = line.strip_prefix("listeners=") {
            out.push_str(&format!(
                "listeners={rest},SASL_SSL://127.0.0.1:{sasl_port}\n"
            ));
        } else if let Some(rest) = line.strip_prefix("advertised.listeners=") {
            out.push_str(&format!(
                "advertised.listeners={rest},SASL_SSL://127.0.0.1:{sasl_port}\n"
            ));
        } else if let Some(rest) = line.strip_prefix("listener.security.protocol.map=") {
            out.push_str(&format!(
                "listener.security.protocol.map={rest},SASL_SSL:SASL_SSL\n"
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_{SASL_USER}=\"{SASL_PASSWORD}\";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location={keystore}
ssl.keystore.password={KEYSTORE_PASSWORD}
ssl.key.password={KEYSTORE_PASSWORD}
",
        keystore = keystore.display(),
    ));
    out
}

/// A CA (`ca.pem`) and the brokers' certificate for `127.0.0.1` signed by
/// it, in `broker.p12`, made with the `openssl` command; returns the CA file.
fn make_certificates(dir: &Path) -> Result<PathBuf> {
    let run = |args: &[&str]| -> Result<()> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .context("run openssl")?;
        if !output.status.success() {
            bail!(
                "openssl {} failed:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    };
    fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n")?;
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "7",
        "-subj",
        "/CN=fcsink test CA",
    ])?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
        "-subj",
        "/CN=127.0.0.1",
    ])?;
    run(&[
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "broker.pem",
        "-days",
        "7",
        "-extfile",
        "san.ext",
    ])?;
    let password = format!("pass:{KEYSTORE_PASSWORD}");
    run(&[
        "pkcs12",
        "-export",
        "-in",
        "broker.pem",
        "-inkey",
        "broker.key",
        "-certfile",
        "ca.pem",
        "-out",
        "broker.p12",
        "-passout",
        &password,
    ])?;
    Ok(dir.join("ca.pem"))
}

/// Kafka's INFO log to stdout, without the request logs.
const LOG4J2_PROPERTIES: &str = "appender.out.type=Console
appender.out.name=out
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=out
";

/// `$JAVA_HOME/bin/java`, else `java` on the PATH.
fn java_bin() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|home| Path::new(&home).join("bin/java"))
        .filter(|java| java.is_file())
        .unwrap_or_else(|| PathBuf::from("java"))
}

/// Finds Kafka's jars: `$KAFKA_LIBS`, else `kafka-<version>/libs` under
/// `$FCSINK_TOOLS` or the repository's `.tools/`.
fn kafka_libs() -> PathBuf {
    let libs = match std::env::var_os("KAFKA_LIBS") {
        Some(libs) => PathBuf::from(libs),
        None => std::env::var_os("FCSINK_TOOLS")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".tools"))
            .join(format!("kafka-{KAFKA_VERSION}/libs")),
    };
    assert!(
        libs.join(format!("kafka_2.13-{KAFKA_VERSION}.jar"))
            .is_file(),
        "Apache Kafka {KAFKA_VERSION} not found in {}: run scripts/install-kafka.sh \
         (or point KAFKA_LIBS at its libs folder)",
        libs.display()
    );
    libs
}
