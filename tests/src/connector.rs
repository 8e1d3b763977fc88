//! Runs fcsink against a test broker and emulator: in-process (through
//! `fcsink::pipeline`) or as a real process that can be killed.

use std::future::Future;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fc_emulator::{AwsKey, Emulator, EmulatorConfig, Invocation};
use fcsink::config::{Settings, TargetSettings};
use fcsink::invoke::Target;
use fcsink::invoke::aws_credentials::AwsCredentials;
use fcsink::invoke::credentials::Credentials;
use fcsink::invoke::fc::FcTarget;
use fcsink::invoke::http::HttpTarget;
use fcsink::invoke::lambda::LambdaTarget;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::broker::Broker;

/// The AccessKey the emulator knows and fcsink signs with.
pub const KEY_ID: &str = "LTAI5tE2eTestKey";
/// Its secret (a test value, not a credential).
pub const KEY_SECRET: &str = "e2e-test-secret-not-a-credential";

/// The AWS access key fcsink signs Lambda requests with in tests.
pub const AWS_KEY_ID: &str = "AKIAFCSINKE2ETEST";
/// Its secret (a test value, not a credential).
pub const AWS_SECRET: &str = "aws-e2e-test-secret-not-a-credential";

/// An emulator that knows [`KEY_ID`], quiet unless `FCSINK_TEST_VERBOSE` is set.
pub async fn emulator(configure: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    emulator_on(std::net::Ipv4Addr::LOCALHOST, configure).await
}

/// [`emulator`] listening on `host` (a free port), e.g. a veth link's
/// address ([`crate::netns`]).
pub async fn emulator_on(
    host: std::net::Ipv4Addr,
    configure: impl FnOnce(&mut EmulatorConfig),
) -> Emulator {
    let mut config =
        EmulatorConfig::new(KEY_ID, KEY_SECRET).with_aws_key(AwsKey::new(AWS_KEY_ID, AWS_SECRET));
    config.quiet = std::env::var_os("FCSINK_TEST_VERBOSE").is_none();
    configure(&mut config);
    fc_emulator::start(config, (host, 0).into())
        .await
        .expect("start the emulator")
}

/// A connector configuration for `topic`, with `extra` TOML appended to
/// the tables it names (`[batch]`, `[delivery]` …, which this base leaves out).
pub fn config(
    name: &str,
    broker: &Broker,
    emulator: &Emulator,
    topic: &str,
    target_extra: &str,
    extra: &str,
) -> String {
    let target = format!(
        "[target.fc]\nendpoint = \"http://{}\"\nservice = \"guide-hello_world\"\n\
         function = \"hello_world\"\ntimeout_ms = 10000\n{target_extra}",
        emulator.addr()
    );
    config_with_target(name, broker, topic, &target, extra)
}

/// A configuration for `topic` with `target` as the target table (TOML,
/// e.g. `[target.lambda]\n…`) and `extra` tables appended.
pub fn config_with_target(
    name: &str,
    broker: &Broker,
    topic: &str,
    target: &str,
    extra: &str,
) -> String {
    format!(
        r#"
name = "{name}"

[source]
bootstrap_servers = "{bootstrap}"
topics = ["{topic}"]
concurrency = 3

[sandbox]
cache_dir = ""

{target}

{extra}
"#,
        bootstrap = broker.bootstrap(),
    )
}

/// Sends fcsink's log to the test output (shown for failing tests);
/// `FCSINK_LOG` sets the filter, `warn` by default.
pub fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("FCSINK_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A connector running inside the test process.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Starts `fcsink::pipeline` with the test credentials.
    pub fn start(config_toml: &str) -> Running {
        init_logging();
        let settings =
            Settings::from_toml(config_toml).unwrap_or_else(|e| panic!("test config: {e}"));
        let target = Self::test_target(&settings);
        Self::start_with_target(settings, target)
    }

    /// The configured target, signing with the test credentials.
    fn test_target(settings: &Settings) -> Box<dyn Target> {
        match settings.target.clone() {
            TargetSettings::Fc(fc) => Box::new(
                FcTarget::with_credentials(
                    fc,
                    Credentials::new(KEY_ID.into(), KEY_SECRET.into(), None),
                )
                .unwrap(),
            ),
            TargetSettings::Lambda(lambda) => Box::new(
                LambdaTarget::with_credentials(
                    lambda,
                    AwsCredentials::new(AWS_KEY_ID.into(), AWS_SECRET.into(), None),
                )
                .unwrap(),
            ),
            TargetSettings::Http(http) => Box::new(HttpTarget::new(http).unwrap()),
        }
    }

    /// Starts `fcsink::pipeline` with a target built by the test.
    pub fn start_with_target(settings: Settings, target: Box<dyn Target>) -> Running {
        init_logging();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(fcsink::pipeline::run_with_target(settings, target, async {
            let _ = stopped.await;
        }));
        Running {
            stop: Some(stop),
            task,
        }
    }

    /// Waits up to `timeout` for the pipeline to end by itself (a start-up
    /// error); `None` while it still runs.
    pub async fn finished(&mut self, timeout: Duration) -> Option<anyhow::Result<()>> {
        tokio::time::timeout(timeout, &mut self.task)
            .await
            .ok()
            .map(|joined| joined.expect("the pipeline task does not panic"))
    }

    /// Asks for a graceful shutdown and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(60), &mut self.task)
            .await
            .expect("fcsink shuts down within a minute")
            .expect("the pipeline task does not panic")
    }
}

/// fcsink running as a separate process, to be killed or terminated.
pub struct Process {
    child: Child,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Process {
    /// Runs `BINARY run --config FILE` with the test credentials in the
    /// environment; integration tests pass `env!("CARGO_BIN_EXE_fcsink-under-test")`.
    pub fn start(binary: &str, config_file: &std::path::Path, log: PathBuf) -> Process {
        Process::start_with(binary, config_file, &[], log)
    }

    /// [`Process::start`] with more arguments after `run --config FILE`
    /// (`--listen`, `--until-end`, `--log-format json` …).
    pub fn start_with(
        binary: &str,
        config_file: &std::path::Path,
        args: &[&str],
        log: PathBuf,
    ) -> Process {
        Process::start_with_env(binary, config_file, args, &[], log)
    }

    /// [`Process::start_with`] with environment variables set after the
    /// test credentials (so they can replace them).
    pub fn start_with_env(
        binary: &str,
        config_file: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Process {
        Process::spawn(Command::new(binary), config_file, args, env, log)
    }

    /// [`Process::start`] inside the network namespace `netns`
    /// ([`crate::netns`]), through `ip netns exec`.
    pub fn start_in_netns(
        netns: &str,
        binary: &str,
        config_file: &std::path::Path,
        log: PathBuf,
    ) -> Process {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", netns, binary]);
        Process::spawn(command, config_file, &[], &[], log)
    }

    fn spawn(
        mut command: Command,
        config_file: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Process {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = command
            .args(["run", "--config"])
            .arg(config_file)
            .args(args)
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", KEY_SECRET)
            // `FCSINK_CHILD_LOG` (e.g. `debug`) overrides the log filter.
            .env(
                "FCSINK_LOG",
                std::env::var("FCSINK_CHILD_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start fcsink");
        Process { child, log }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to drain or commit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "cannot send SIGTERM");
        self.child.wait().expect("wait for fcsink")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `binary ARGS` (an fcsink command: `status`, `pause` …) to
/// completion off the async threads.
pub async fn run_command(binary: &str, args: &[&str]) -> std::process::Output {
    let binary = binary.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(binary)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run fcsink")
    })
    .await
    .unwrap()
}

/// [`run_command`] for a command that must succeed; its standard output.
pub async fn run_command_ok(binary: &str, args: &[&str]) -> String {
    let output = run_command(binary, args).await;
    assert!(
        output.status.success(),
        "fcsink {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every record object of every successful invocation, in arrival order.
pub fn delivered(emulator: &Emulator) -> Vec<serde_json::Value> {
    emulator
        .invocations()
        .iter()
        .filter(|i| !i.failed)
        .flat_map(records_of)
        .collect()
}

/// The record objects in one invocation's payload.
pub fn records_of(invocation: &Invocation) -> Vec<serde_json::Value> {
    match serde_json::from_slice(&invocation.body) {
        Ok(serde_json::Value::Array(records)) => records,
        other => panic!("payload is not a JSON array: {other:?}"),
    }
}

/// `(partition, offset)` of a record object.
pub fn position(record: &serde_json::Value) -> (i64, i64) {
    (
        record["partition"].as_i64().unwrap(),
        record["offset"].as_i64().unwrap(),
    )
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("a bound address").port()
}

/// A plain HTTP/1.0 GET on loopback `port` (the operations endpoint):
/// status and body, or `None` when nothing answers.
pub async fn http_get(port: u16, path: &'static str) -> Option<(u16, String)> {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        Some((status, response.split_once("\r\n\r\n")?.1.to_string()))
    })
    .await
    .expect("the GET thread does not panic")
}

/// The peak resident memory of process `pid` so far (`VmHWM`), in bytes.
///
/// # Panics
/// When the process is gone.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("a running process");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/<pid>/status")
        * 1024
}
