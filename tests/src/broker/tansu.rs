//! Tansu run as a child process on a free loopback port with its own
//! temporary directory. Set `TANSU_LOG=debug` to see more of Tansu's log
//! when a broker fails to start.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::consumer::Consumer;
use tempfile::TempDir;

use super::{Storage, free_port, repo_root};

/// How long Tansu may take to answer its first metadata request.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Tansu's cluster id; any fixed string works.
const CLUSTER_ID: &str = "fcsink-tests";
/// Name of the broker's combined stdout/stderr log inside its directory.
const LOG_FILE: &str = "tansu.log";
/// What Tansu 0.6 prints once its listener is bound ("ready in 7ms").
const READY_LINE: &str = "ready in ";

/// A running Tansu broker, killed when dropped.
pub(super) struct Tansu {
    bin: PathBuf,
    storage: Storage,
    port: u16,
    /// Working directory: the log file and, for SQLite, the database.
    dir: TempDir,
    /// `None` while stopped.
    child: Option<Child>,
    /// Where the current run's output starts in the log file.
    log_offset: u64,
}

impl Tansu {
    /// Starts a broker on a free loopback port.
    ///
    /// # Panics
    ///
    /// If the Tansu binary is missing or the broker does not come up within
    /// 30 seconds; the message carries the broker's log.
    pub(super) async fn start_new(storage: Storage) -> Tansu {
        let dir = tempfile::Builder::new()
            .prefix("fcsink-tansu-")
            .tempdir()
            .expect("create a temporary directory for Tansu");
        let mut broker = Tansu {
            bin: tansu_bin(),
            storage,
            port: 0,
            dir,
            child: None,
            log_offset: 0,
        };
        // Another process may grab the free port before Tansu binds it.
        for attempt in 1..=3 {
            broker.port = free_port();
            match broker.try_start().await {
                Ok(()) => return broker,
                Err(err)
                    if attempt < 3 && broker.current_log().contains("Address already in use") =>
                {
                    eprintln!(
                        "Tansu could not bind port {}, retrying: {err:#}",
                        broker.port
                    );
                }
                Err(err) => panic!("{err:#}"),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// The `bootstrap.servers` value for clients, e.g. `127.0.0.1:40123`.
    pub(super) fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (like a crash, no clean shutdown). Does nothing if
    /// it is already stopped.
    pub(super) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and directory. Does nothing
    /// if it is running.
    ///
    /// # Panics
    ///
    /// If the broker does not come up; the message carries its log.
    pub(super) async fn start(&mut self) {
        if self.child.is_none() {
            self.try_start()
                .await
                .unwrap_or_else(|err| panic!("{err:#}"));
        }
    }

    /// Spawns Tansu and waits until it has bound its port and answers a
    /// metadata request.
    async fn try_start(&mut self) -> Result<()> {
        let log_path = self.dir.path().join(LOG_FILE);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        writeln!(
            log,
            "--- fcsink-tests: starting Tansu on port {} ---",
            self.port
        )?;
        self.log_offset = log.metadata()?.len();
        let listener = format!("tcp://{}", self.bootstrap());
        // Tansu's own log level; a RUST_LOG meant for the tests stays out.
        let log_level = std::env::var_os("TANSU_LOG").unwrap_or_default();
        let child = Command::new(&self.bin)
            .arg("broker")
            .args(["--cluster-id", CLUSTER_ID])
            .args(["--listener-url", &listener])
            // Clients connect to the advertised address, so it must match.
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", storage_url(self.storage)])
            .current_dir(self.dir.path())
            .env("RUST_LOG", log_level)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {}", self.bin.display()))?;
        self.child = Some(child);

        let probe = Arc::new(super::client::reader(
            &self.bootstrap(),
            "fcsink-tests-probe",
        )?);
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!(
                    "Tansu exited ({status}) while starting:\n{}",
                    self.log_tail()
                );
            }
            // Tansu prints this once it has bound the port, so a probe that
            // succeeds afterwards talked to this child, not a stranger.
            if self.current_log().contains(READY_LINE) {
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
                self.stop();
                bail!(
                    "Tansu did not answer metadata requests on {} within {STARTUP_TIMEOUT:?}:\n{}",
                    self.bootstrap(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What Tansu has written to stdout and stderr since it last started.
    fn current_log(&self) -> String {
        let log = fs::read(self.dir.path().join(LOG_FILE)).unwrap_or_default();
        let start = (self.log_offset as usize).min(log.len());
        String::from_utf8_lossy(&log[start..]).into_owned()
    }

    fn log_tail(&self) -> String {
        let log = self.current_log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- last lines of Tansu's output ---\n{tail}")
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

fn storage_url(storage: Storage) -> &'static str {
    match storage {
        Storage::Memory => "memory://tansu/",
        // Tansu resolves sqlite:// URLs against its working directory.
        Storage::Sqlite => "sqlite://tansu.db",
    }
}

/// Finds the Tansu binary: `$TANSU_BIN`, else `bin/tansu` under
/// `$FCSINK_TOOLS` or the repository's `.tools/`.
fn tansu_bin() -> PathBuf {
    let bin = match std::env::var_os("TANSU_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => std::env::var_os("FCSINK_TOOLS")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".tools"))
            .join("bin/tansu"),
    };
    assert!(
        bin.is_file(),
        "Tansu not found at {}: run scripts/install-tansu.sh \
         (or point TANSU_BIN at a tansu 0.6.0 binary)",
        bin.display()
    );
    bin
}
