//! The Python side of the tests: confluent-kafka as an independent Kafka
//! client, and moto's server as a real implementation of the Lambda API.
//! Both come from the venv `scripts/python-env.sh` creates (`.venv`, or
//! `FCSINK_PYTHON` naming its python).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The venv's python; panics with what to run when it is missing.
pub fn python() -> PathBuf {
    let path = std::env::var_os("FCSINK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/python-env.sh (make setup)",
        path.display()
    );
    path
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join(name)
}

/// A record read back by confluent-kafka. Bytes travel as latin-1 text.
#[derive(Debug, Clone, Deserialize)]
pub struct PyRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<String>,
    /// Value.
    pub value: Option<String>,
    /// Headers in order.
    pub headers: Vec<(String, Option<String>)>,
}

impl PyRecord {
    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Every record of `topic`, read by confluent-kafka.
pub async fn read_topic(bootstrap: &str, topic: &str) -> Vec<PyRecord> {
    let output = tokio::process::Command::new(python())
        .arg(script("kafka_read.py"))
        .args([bootstrap, topic])
        .output()
        .await
        .expect("run kafka_read.py");
    assert!(
        output.status.success(),
        "kafka_read.py {topic}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// moto's server, verifying SigV4, with a function ready to invoke.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// A key moto's IAM knows.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
}

#[derive(Deserialize)]
struct Prepared {
    access_key_id: String,
    secret_access_key: String,
}

impl Moto {
    /// Starts moto on a free port and creates `function` (which returns its event).
    pub fn start(function: &str) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            // Four unauthenticated IAM calls create the user; then SigV4 is verified.
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "4")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = Command::new(python())
            .arg(script("moto_lambda.py"))
            .args([&endpoint, function])
            .output()
            .expect("run moto_lambda.py");
        assert!(
            output.status.success(),
            "moto_lambda.py: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let prepared: Prepared = serde_json::from_slice(&output.stdout).unwrap();
        Moto {
            child,
            endpoint,
            access_key_id: prepared.access_key_id,
            secret_access_key: prepared.secret_access_key,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
