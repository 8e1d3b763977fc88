//! The invocation log on stdout, laid out like an FC `hello_world` function's log.
//!
//! ```text
//! FC Invoke Start RequestId: 1d5f6e2a-…
//! [{"topic":"orders","value":"hello"}]
//! FC Invoke End RequestId: 1d5f6e2a-…
//! ```
//!
//! The event is the payload as UTF-8 text (invalid bytes become U+FFFD) with `\r` and
//! `\n` escaped, so each entry is exactly three lines. Each entry is one `print!`, so
//! concurrent invocations do not interleave, and an in-process emulator's log is captured
//! by the test harness like any other test output.

/// Logs one invocation that reached the function.
pub fn invocation(request_id: &str, payload: &[u8]) {
    write_lines(&entry(request_id, payload));
}

/// The three log lines for an invocation, each ending in `\n`.
pub fn entry(request_id: &str, payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload)
        .replace('\r', "\\r")
        .replace('\n', "\\n");
    format!(
        "FC Invoke Start RequestId: {request_id}\n{text}\nFC Invoke End RequestId: {request_id}\n"
    )
}

/// Logs an invocation that an injected fault failed before it reached the function.
pub fn injected_failure(request_id: &str, status: u16) {
    write_lines(&format!(
        "FC Invoke Failed RequestId: {request_id} Status: {status} (injected fault)\n"
    ));
}

fn write_lines(lines: &str) {
    print!("{lines}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_lines_per_invocation() {
        assert_eq!(
            entry("r-1", b"{\"a\":\"x\ny\"}"),
            "FC Invoke Start RequestId: r-1\n{\"a\":\"x\\ny\"}\nFC Invoke End RequestId: r-1\n"
        );
    }
}
