//! Scrubbing: what a service says back may carry credentials. Alibaba's STS
//! echoes its string to sign (which holds the caller's `SecurityToken`),
//! AWS echoes canonical requests, endpoints echo headers. Every message
//! built from an answer goes through [`scrub`] before it reaches a log, a
//! metric, the status topic or a dead-letter header.

/// What replaces a credential.
pub const REDACTED: &str = "<redacted>";

/// Keys whose value is a credential, lowercase. `token` covers
/// `SecurityToken`, `sessionToken`, `sts_token` and the like.
const SECRET_KEYS: &[&str] = &[
    "token",
    "signature",
    "accesskeysecret",
    "access_key_secret",
    "secretaccesskey",
    "secret_access_key",
    "secret",
];

/// Keys after which everything to the end of the value is a credential or
/// holds one: the `Authorization` header, strings to sign, canonical requests.
const SECRET_TAILS: &[&str] = &[
    "authorization",
    "string to sign",
    "string-to-sign",
    "stringtosign",
    "string_to_sign",
    "canonical string",
    "canonicalrequest",
    "canonical request",
];

/// Shorter values after a key are words of a sentence ("token: The …"),
/// not credentials.
const MIN_SECRET_LEN: usize = 12;

/// A word after a key without a separator ("token AbC…") is a
/// credential from this length.
const MIN_BARE_LEN: usize = 20;

/// Runs of token characters this long are redacted wherever they are.
const LONG_TOKEN: usize = 100;

/// `text` with every credential-looking value replaced by [`REDACTED`].
pub fn scrub(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    // Ranges to redact, found first, then merged while copying.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for tail in SECRET_TAILS {
        for (at, _) in lower.match_indices(tail) {
            // Only strings to sign say "… is 'GET&…'" without a separator.
            let words = *tail != "authorization";
            let start = skip_separator(&lower, at + tail.len(), words);
            let end = tail_end(bytes, start);
            if end > start {
                ranges.push((start, end));
            }
        }
    }
    for key in SECRET_KEYS {
        for (at, _) in lower.match_indices(key) {
            let after = at + key.len();
            // Only `key=value`, `key: value`, `"key":"value"`, `key%3Dvalue`.
            let start = skip_separator(&lower, after, false);
            if start == after {
                // "token AbC…": a long token-looking word right after the key.
                let word = after + 1;
                if lower[after..].starts_with(' ') {
                    let end = value_end(&lower, word);
                    if end - word >= MIN_BARE_LEN
                        && bytes[word..end].iter().all(|b| is_token_byte(*b))
                    {
                        ranges.push((word, end));
                    }
                }
                continue;
            }
            let end = value_end(&lower, start);
            if end - start >= MIN_SECRET_LEN {
                ranges.push((start, end));
            }
        }
    }
    let mut run_start = None;
    for (i, b) in bytes.iter().chain(std::iter::once(&b' ')).enumerate() {
        match (is_token_byte(*b), run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                if i - start >= LONG_TOKEN {
                    ranges.push((start, i));
                }
                run_start = None;
            }
            _ => {}
        }
    }
    if ranges.is_empty() {
        return text.to_string();
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in ranges {
        if end <= copied {
            continue;
        }
        if start >= copied {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
        }
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// After a key: the start of its value past `"`, spaces and one of `=`,
/// `:`, `>`, `%3d` (with `words`, also after words such as ` is`). `at` when there is none.
fn skip_separator(lower: &str, at: usize, words: bool) -> usize {
    let rest = &lower[at..];
    let trimmed = rest.trim_start_matches(['"', '\'', ' ']);
    let trimmed = if words {
        trimmed
            .strip_prefix("should have been")
            .or_else(|| trimmed.strip_prefix("is"))
            .unwrap_or(trimmed)
            .trim_start_matches(' ')
    } else {
        trimmed
    };
    // `>` for XML elements: `<AccessKeySecret>…</AccessKeySecret>`.
    let value = if let Some(v) = trimmed.strip_prefix(['=', ':', '>']) {
        v
    } else if let Some(v) = trimmed.strip_prefix("%3d") {
        v
    } else if words && trimmed.len() < rest.len() {
        // "string to sign is 'GET&…'": the words are the separator.
        trimmed
    } else {
        return at;
    };
    let value = value.trim_start_matches([' ', '"', '\'', '\n']);
    lower.len() - value.len()
}

/// The end of a simple value: a delimiter, or `%26` (an encoded `&`).
fn value_end(lower: &str, start: usize) -> usize {
    let bytes = lower.as_bytes();
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b'&' | b'"' | b'\'' | b',' | b';' | b'<' | b'>'
            | b')' | b']' | b'}' | b'\\' => break,
            b'%' if lower[i..].starts_with("%26") => break,
            _ => i += 1,
        }
    }
    i
}

/// The end of a tail: the closing quote of a JSON or XML value, else the end.
fn tail_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' | b'<' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-' | b'%' | b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "CAIS8QF1q6Ft5B2yfSjIr5bNLNn9v7lE1YKPRW_gL2ykkAt1dGUSlZDWHT87b2abcdefTOKEN";
    const SECRET: &str = "Q8kVeryVerySecretAccessKeySecret";

    fn clean(text: &str) {
        let scrubbed = scrub(text);
        for secret in [TOKEN, SECRET, "b6gL9Zh0BjiCrCn8Z5x4FcKkQc8="] {
            assert!(
                !scrubbed.contains(secret),
                "{secret} survived in {scrubbed}"
            );
        }
    }

    /// Alibaba STS refusing a signature echoes the string to sign, with the
    /// caller's security token percent-encoded inside it.
    #[test]
    fn alibaba_sts_string_to_sign_is_removed() {
        let body = format!(
            r#"{{"RequestId":"7B3B4D1A","HostId":"sts.aliyuncs.com","Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation. server string to sign is:GET&%2F&AccessKeyId%3DSTS.NUx%26Action%3DAssumeRole%26SecurityToken%3D{TOKEN}%26Signature%3Db6gL9Zh0BjiCrCn8Z5x4FcKkQc8%3D","Recommend":"https://api.aliyun.com/troubleshoot?q=SignatureDoesNotMatch"}}"#
        );
        clean(&body);
        let scrubbed = scrub(&body);
        assert!(scrubbed.contains("SignatureDoesNotMatch"), "{scrubbed}");
        assert!(
            scrubbed.contains("Specified signature is not matched"),
            "{scrubbed}"
        );
        assert!(
            scrubbed.contains("7B3B4D1A"),
            "the request ID is kept: {scrubbed}"
        );
        // The message alone, as fcsink extracts it.
        clean(&format!(
            "HTTP 400 SignatureDoesNotMatch: Specified signature is not matched with our calculation. server string to sign is:GET&%2F&SecurityToken%3D{TOKEN}"
        ));
    }

    #[test]
    fn key_value_pairs_in_every_spelling_are_removed() {
        for text in [
            format!("SecurityToken={TOKEN}&Action=AssumeRole"),
            format!("x-acs-security-token: {TOKEN}\nx-acs-date: now"),
            format!("X-Amz-Security-Token: {TOKEN}"),
            format!("{{\"sessionToken\":\"{TOKEN}\"}}"),
            format!("AccessKeySecret={SECRET}"),
            format!("<AccessKeySecret>{SECRET}</AccessKeySecret>"),
            format!("aws_secret_access_key = {SECRET}"),
            format!("Authorization: FC LTAI5t:{SECRET}"),
            format!(
                "authorization=ACS3-HMAC-SHA256 Credential=LTAI,SignedHeaders=host,Signature={SECRET}"
            ),
            format!("token {TOKEN}"),
        ] {
            clean(&text);
        }
    }

    #[test]
    fn aws_canonical_requests_are_removed() {
        let text = format!(
            "The request signature we calculated does not match the signature you provided. \
             The Canonical String for this request should have been\n'POST\n/2015-03-31/functions/f/invocations\n\n\
             host:lambda\nx-amz-security-token:{TOKEN}\n'\n\nThe String-to-Sign should have been 'AWS4-HMAC-SHA256\n20261123T040000Z\n{SECRET}'"
        );
        clean(&text);
        assert!(scrub(&text).starts_with("The request signature we calculated does not match"));
    }

    #[test]
    fn ordinary_messages_are_kept() {
        for text in [
            "ExpiredToken: The security token included in the request is expired",
            "HTTP 403 InvalidAccessKeyId.NotFound: Specified access key is not found.",
            "The function returned an error: {\"errorMessage\":\"boom\",\"errorType\":\"Error\"}",
            "SignatureMethod=HMAC-SHA1&SignatureVersion=1.0",
            "sha256 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",
        ] {
            assert_eq!(scrub(text), text);
        }
    }
}
