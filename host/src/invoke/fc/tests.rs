//! Signature vectors were computed with Alibaba's official Python SDKs:
//! `aliyun-fc2==2.5.2` (`fc2.auth.Auth.sign_request`) for FC 2.0 and
//! `alibabacloud-tea-openapi==0.4.6` (`alibabacloud_tea_openapi.utils.Utils.get_authorization`)
//! for FC 3.0, given exactly the headers fcsink signs.

use std::time::Duration;

use super::*;
use crate::config::{FcApi, FcSettings, SendMode};
use crate::invoke::Response;

const KEY_ID: &str = "LTAI5tTestKeyId0000000";
const SECRET: &str = "TestSecretForFcsinkVectors00000";

fn settings(api: FcApi, qualifier: &str, send_mode: SendMode, account: Option<&str>) -> FcSettings {
    FcSettings {
        endpoint: reqwest::Url::parse("https://1234567890123456.cn-hangzhou.fc.aliyuncs.com")
            .unwrap(),
        api,
        function: "hello_world".into(),
        qualifier: qualifier.into(),
        send_mode,
        account_id: account.map(str::to_string),
        role: None,
        timeout: Duration::from_secs(5),
        max_response_bytes: 1 << 20,
        task_ids: false,
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name}"))
}

fn v2() -> FcApi {
    FcApi::V2 {
        service: "guide-hello_world".into(),
    }
}

#[test]
fn fc2_async_request_is_signed_like_the_official_sdk() {
    let target = FcTarget::with_credentials(
        settings(v2(), "LATEST", SendMode::Async, Some("1234567890123456")),
        Credentials::new(KEY_ID.into(), SECRET.into(), None),
    )
    .unwrap();
    assert_eq!(
        target.path,
        "/2016-08-15/services/guide-hello_world.LATEST/functions/hello_world/invocations"
    );
    let headers = target.fc2_headers(
        &Credentials::new(KEY_ID.into(), SECRET.into(), None),
        "Mon, 23 Nov 2026 04:00:00 GMT".into(),
        SendMode::Async,
        None,
    );
    assert_eq!(header(&headers, "x-fc-invocation-type"), "Async");
    assert_eq!(
        header(&headers, "authorization"),
        "FC LTAI5tTestKeyId0000000:131Q5VPCGhLUOr1EMxKZ1vV8caD018JK7ql2EPOKTn8="
    );
}

#[test]
fn fc2_sync_request_with_sts_token_is_signed_like_the_official_sdk() {
    let sts = Credentials::new(
        "STS.TmpKeyId".into(),
        "TmpSecret".into(),
        Some("sts-token-value".into()),
    );
    let target = FcTarget::with_credentials(
        settings(v2(), "v2", SendMode::Sync, Some("1234567890123456")),
        sts.clone(),
    )
    .unwrap();
    let headers = target.fc2_headers(
        &sts,
        "Mon, 23 Nov 2026 04:00:00 GMT".into(),
        SendMode::Sync,
        None,
    );
    assert!(
        !headers.iter().any(|(k, _)| k == "x-fc-invocation-type"),
        "sync sends no invocation type, like the managed connector"
    );
    assert_eq!(header(&headers, "x-fc-security-token"), "sts-token-value");
    assert_eq!(
        header(&headers, "authorization"),
        "FC STS.TmpKeyId:NF5ujEHYfFzr3yLL83rSyAYtwFZcTxXnIzzsXI7H8Nw="
    );
}

const BODY: &[u8] =
    br#"[{"offset":0,"overflowFlag":false,"partition":0,"timestamp":1,"topic":"t","valueSize":0}]"#;

#[test]
fn fc3_request_is_signed_like_the_official_sdk() {
    let credentials = Credentials::new(KEY_ID.into(), SECRET.into(), None);
    let target = FcTarget::with_credentials(
        settings(FcApi::V3, "LATEST", SendMode::Async, None),
        credentials.clone(),
    )
    .unwrap();
    let headers = target.fc3_headers(
        &credentials,
        BODY,
        "2026-11-23T04:00:00Z".into(),
        "0123456789abcdef0123456789abcdef",
        SendMode::Async,
        None,
    );
    assert_eq!(
        header(&headers, "x-acs-content-sha256"),
        "b440b63962c600d3cc19ff1de106f2ca048460149cbe0e0ea2e3a9aa847292f9"
    );
    assert_eq!(
        header(&headers, "authorization"),
        "ACS3-HMAC-SHA256 Credential=LTAI5tTestKeyId0000000,SignedHeaders=content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=48029d50ac5833d6afd0b6dbcd5f44c51a720813e73ed0136689a5dc5ff602ba"
    );
}

#[test]
fn fc3_request_with_sts_token_is_signed_like_the_official_sdk() {
    let sts = Credentials::new(
        "STS.TmpKeyId".into(),
        "TmpSecret".into(),
        Some("sts-token-value".into()),
    );
    let target = FcTarget::with_credentials(
        settings(FcApi::V3, "LATEST", SendMode::Async, None),
        sts.clone(),
    )
    .unwrap();
    let headers = target.fc3_headers(
        &sts,
        BODY,
        "2026-11-23T04:00:00Z".into(),
        "0123456789abcdef0123456789abcdef",
        SendMode::Async,
        None,
    );
    assert_eq!(
        header(&headers, "authorization"),
        "ACS3-HMAC-SHA256 Credential=STS.TmpKeyId,SignedHeaders=content-type;host;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version,Signature=13c1f60ac277111edec299f762183f640e5ef6ac9278de4a71d1b71b1066fe99"
    );
}

/// The task ID is an `x-fc-*` header: FC 2.0 signs it among the
/// canonicalized headers, sorted by name, as the Go and Java SDKs do.
#[test]
fn fc2_task_id_is_signed_among_the_fc_headers() {
    let credentials = Credentials::new(KEY_ID.into(), SECRET.into(), None);
    let target = FcTarget::with_credentials(
        settings(v2(), "LATEST", SendMode::Async, Some("1234567890123456")),
        credentials.clone(),
    )
    .unwrap();
    let date = "Mon, 23 Nov 2026 04:00:00 GMT";
    let headers = target.fc2_headers(&credentials, date.into(), SendMode::Async, Some("fcsink_a"));
    assert_eq!(header(&headers, FC2_TASK_ID), "fcsink_a");
    let string_to_sign = format!(
        "POST\n\napplication/json\n{date}\nx-fc-account-id:1234567890123456\n\
         x-fc-invocation-type:Async\nx-fc-stateful-async-invocation-id:fcsink_a\n{}",
        target.path
    );
    assert_eq!(
        header(&headers, "authorization"),
        format!(
            "FC {KEY_ID}:{}",
            fcsink_sign::fc2_signature(SECRET, &string_to_sign)
        )
    );
}

/// FC 3.0's task ID is not an `x-acs-*` header: the Go, Java and TS SDKs
/// leave it out of `SignedHeaders`, so the signature is the one without it.
#[test]
fn fc3_task_id_is_sent_unsigned_like_the_go_sdk() {
    let credentials = Credentials::new(KEY_ID.into(), SECRET.into(), None);
    let target = FcTarget::with_credentials(
        settings(FcApi::V3, "LATEST", SendMode::Async, None),
        credentials.clone(),
    )
    .unwrap();
    let sign = |task_id| {
        target.fc3_headers(
            &credentials,
            BODY,
            "2026-11-23T04:00:00Z".into(),
            "0123456789abcdef0123456789abcdef",
            SendMode::Async,
            task_id,
        )
    };
    let with = sign(Some("fcsink_a"));
    assert_eq!(header(&with, FC3_TASK_ID), "fcsink_a");
    assert_eq!(
        header(&with, "authorization"),
        header(&sign(None), "authorization")
    );
}

#[test]
fn the_task_id_goes_only_with_fc_task_id_and_async() {
    let credentials = Credentials::new(KEY_ID.into(), SECRET.into(), None);
    let id = crate::invoke::idempotency::RequestId::new(
        &crate::invoke::idempotency::BatchOrigin {
            connector: "c",
            topic: "t",
            partition: 0,
            first_offset: 0,
            last_offset: 1,
        },
        0,
    );
    let request = |mode| Outgoing {
        body: bytes::Bytes::new(),
        mode,
        id: Some(id.clone()),
        forwarded: Default::default(),
    };
    let mut with_ids = settings(v2(), "LATEST", SendMode::Async, None);
    with_ids.task_ids = true;
    let target = FcTarget::with_credentials(with_ids, credentials.clone()).unwrap();
    assert_eq!(target.task_id(&request(SendMode::Async)), Some(id.as_str()));
    assert_eq!(target.task_id(&request(SendMode::Sync)), None);
    let without =
        FcTarget::with_credentials(settings(v2(), "LATEST", SendMode::Async, None), credentials)
            .unwrap();
    assert_eq!(without.task_id(&request(SendMode::Async)), None);
}

#[test]
fn a_409_already_exists_is_a_refused_duplicate_and_other_409s_are_not() {
    let duplicate = |code: &str| {
        Verdict::Reject(Failure {
            code: code.into(),
            message: String::new(),
            status: Some(409),
        })
    };
    for code in [
        "StatefulAsyncInvocationAlreadyExists",
        "AsyncTaskAlreadyExists",
        "http-409",
    ] {
        assert!(
            matches!(
                duplicate_refused(duplicate(code)),
                Verdict::Delivered(Response {
                    status: 409,
                    duplicate: true,
                    ..
                })
            ),
            "{code}"
        );
    }
    let other = duplicate("ConcurrentUpdateError");
    assert_eq!(duplicate_refused(other.clone()), other);
    let not_409 = Verdict::Reject(Failure {
        code: "StatefulAsyncInvocationAlreadyExists".into(),
        message: String::new(),
        status: Some(400),
    });
    assert_eq!(duplicate_refused(not_409.clone()), not_409);
}

fn response(
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut builder = http::Response::builder().status(status);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    Ok(reqwest::Response::from(
        builder.body(body.to_string()).unwrap(),
    ))
}

#[tokio::test]
async fn accepted_and_ok_are_delivered() {
    assert!(matches!(
        classify(response(202, &[], ""), 1 << 20).await,
        Verdict::Delivered(Response { status: 202, .. })
    ));
    let Verdict::Delivered(ok) = classify(response(200, &[], "hello world"), 1 << 20).await else {
        panic!()
    };
    assert_eq!(ok.body, b"hello world");
}

#[tokio::test]
async fn http_200_with_a_function_error_is_a_failure() {
    let verdict = classify(
        response(
            200,
            &[("X-Fc-Error-Type", "UnhandledInvocationError")],
            r#"{"errorMessage":"boom","errorType":"Error"}"#,
        ),
        1 << 20,
    )
    .await;
    let Verdict::Retry { failure, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(
        (
            failure.code.as_str(),
            failure.message.as_str(),
            failure.status
        ),
        ("UnhandledInvocationError", "boom", Some(200))
    );
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_with_retry_after() {
    let verdict = classify(
        response(
            429,
            &[("Retry-After", "3")],
            r#"{"ErrorCode":"ResourceExhausted","ErrorMessage":"too many"}"#,
        ),
        1 << 20,
    )
    .await;
    assert_eq!(
        verdict,
        Verdict::Retry {
            failure: Failure {
                code: "ResourceExhausted".into(),
                message: "too many".into(),
                status: Some(429)
            },
            after: Some(Duration::from_secs(3)),
        }
    );
    let verdict = classify(
        response(
            503,
            &[],
            r#"{"errorCode":"ResourceThrottled","errorMessage":"busy"}"#,
        ),
        1 << 20,
    )
    .await;
    assert!(
        matches!(verdict, Verdict::Retry { ref failure, after: None } if failure.code == "ResourceThrottled"),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn other_client_errors_and_501_are_rejected() {
    for (status, body) in [
        (
            400,
            r#"{"ErrorCode":"EntityTooLarge","ErrorMessage":"payload size exceeds"}"#,
        ),
        (413, ""),
        (501, ""),
    ] {
        let verdict = classify(response(status, &[], body), 1 << 20).await;
        assert!(
            matches!(verdict, Verdict::Reject(ref f) if f.status == Some(status)),
            "{status}: {verdict:?}"
        );
    }
    let Verdict::Reject(failure) = classify(response(400, &[], ""), 1 << 20).await else {
        panic!()
    };
    assert_eq!(failure.code, "http-400");
}

/// Authentication refused or the function not found: the target is wrong,
/// not the records.
#[tokio::test]
async fn authentication_and_not_found_are_target_failures() {
    for (status, body) in [
        (401, ""),
        (403, r#"{"ErrorCode":"SignatureNotMatch"}"#),
        (403, r#"{"ErrorCode":"InvalidSecurityToken.Expired"}"#),
        (404, r#"{"ErrorCode":"FunctionNotFound"}"#),
        (400, r#"{"ErrorCode":"ExpiredToken"}"#),
    ] {
        let verdict = classify(response(status, &[], body), 1 << 20).await;
        assert!(
            matches!(verdict, Verdict::TargetFailure(ref f) if f.status == Some(status)),
            "{status} {body}: {verdict:?}"
        );
    }
}

/// A redirect is never followed, and never delivery: a rejection naming the
/// status and where it pointed (scrubbed).
#[tokio::test]
async fn redirects_are_rejected_with_their_location() {
    for status in [301, 302, 303, 307, 308] {
        let verdict = classify(
            response(
                status,
                &[(
                    "Location",
                    "https://elsewhere.example/x?token=AAAABBBBCCCCDDDDEEEEFFFF",
                )],
                "",
            ),
            1 << 20,
        )
        .await;
        let Verdict::Reject(failure) = verdict else {
            panic!("{status}: {verdict:?}")
        };
        assert_eq!(
            (failure.code.as_str(), failure.status),
            ("redirect", Some(status))
        );
        assert!(
            failure.message.contains(&status.to_string())
                && failure
                    .message
                    .contains("https://elsewhere.example/x?token=")
                && !failure.message.contains("AAAABBBBCCCCDDDDEEEEFFFF"),
            "{}",
            failure.message
        );
    }
}

#[tokio::test]
async fn answers_past_the_limit_are_rejected_naming_the_setting() {
    let body = "x".repeat(2000);
    let verdict = classify(response(200, &[], &body), 1024).await;
    let Verdict::Reject(failure) = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(failure.code, "response-too-large");
    assert!(
        failure.message.contains("1024")
            && failure.message.contains("target.fc.max_response_bytes"),
        "{}",
        failure.message
    );
    assert!(matches!(
        classify(response(200, &[], &body), 2000).await,
        Verdict::Delivered(_)
    ));
}

#[tokio::test]
async fn error_messages_are_scrubbed() {
    let token = "CAIS8QF1q6Ft5B2yfSjIr5bNLNn9v7lE1YKPRW_gL2ykkAt1dGUSlZDWHT87b2";
    let body = format!(
        r#"{{"ErrorCode":"InvalidArgument","ErrorMessage":"bad header x-acs-security-token: {token}"}}"#
    );
    let Verdict::Reject(failure) = classify(response(400, &[], &body), 1 << 20).await else {
        panic!()
    };
    assert!(!failure.message.contains(token), "{}", failure.message);
}
