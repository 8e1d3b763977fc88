//! `fcsink … | grep -q …`: the reader exits first and stdout is a closed
//! pipe. fcsink must stop quietly with exit code 0, never panic (101).

use std::process::{Command, Stdio};

const FCSINK: &str = env!("CARGO_BIN_EXE_fcsink-under-test");

/// Runs fcsink with its stdout the write end of a pipe whose read end is
/// already closed, and returns (exit code, stderr).
fn run_into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(FCSINK)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fcsink");
    // Close the read end before fcsink writes anything.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait for fcsink");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn plugin_test_into_a_closed_pipe_exits_quietly() {
    let (code, stderr) = run_into_closed_pipe(&["plugin", "test", "passthrough"]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn import_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("connector.json");
    std::fs::write(
        &file,
        r#"{"name":"n","config":{"connector.class":"io.confluent.connect.aws.lambda.AwsLambdaSinkConnector","topics":"t","aws.lambda.function.name":"f","aws.lambda.region":"us-east-1"}}"#,
    )
    .unwrap();
    let (code, stderr) = run_into_closed_pipe(&["import", "confluent", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}
