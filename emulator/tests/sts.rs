//! STS AssumeRole and invocations signed with the temporary keys it issues.

use std::time::{Duration, SystemTime};

use fc_emulator::EmulatorConfig;
use fcsink_sign::rpc_signature;
use reqwest::Client;

use crate::util::*;

const ROLE_ARN: &str = "acs:ram::1234567890123456:role/AliyunKafkaConnectorRole";

/// AssumeRole parameters, signed for `method`, with `overrides` replacing defaults.
fn signed_params(method: &str, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let nonce = fc_emulator::request_id::new_request_id();
    let timestamp = acs_date(SystemTime::now());
    let mut params: Vec<(String, String)> = [
        ("Action", "AssumeRole"),
        ("Format", "JSON"),
        ("Version", "2015-04-01"),
        ("DurationSeconds", "3600"),
        ("RoleArn", ROLE_ARN),
        ("RoleSessionName", "fcsink-test"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce.as_str()),
        ("Timestamp", timestamp.as_str()),
        ("AccessKeyId", ID),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in overrides {
        params.retain(|(name, _)| name != k);
        params.push((k.to_string(), v.to_string()));
    }
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let signature = rpc_signature(SECRET, method, &pairs);
    params.push(("Signature".into(), signature));
    params
}

fn encoded(params: &[(String, String)]) -> String {
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    query_string(&pairs)
}

async fn assume_role_get(
    emulator: &fc_emulator::Emulator,
    params: &[(String, String)],
) -> (u16, serde_json::Value) {
    let url = format!("{}/?{}", emulator.url(), encoded(params));
    json(Client::new().get(url).send().await.expect("sent")).await
}

/// AssumeRole over GET, returning (id, secret, token).
async fn temporary_key(emulator: &fc_emulator::Emulator) -> Signer {
    let (status, body) = assume_role_get(emulator, &signed_params("GET", &[])).await;
    assert_eq!(status, 200, "{body}");
    let credentials = &body["Credentials"];
    Signer {
        id: credentials["AccessKeyId"].as_str().expect("id").to_owned(),
        secret: credentials["AccessKeySecret"]
            .as_str()
            .expect("secret")
            .to_owned(),
        token: Some(
            credentials["SecurityToken"]
                .as_str()
                .expect("token")
                .to_owned(),
        ),
    }
}

#[tokio::test]
async fn assume_role_response_shape() {
    let emulator = start().await;
    let (status, body) = assume_role_get(&emulator, &signed_params("GET", &[])).await;
    assert_eq!(status, 200);
    assert!(body["RequestId"].is_string());
    assert_eq!(
        body["AssumedRoleUser"]["Arn"],
        "acs:ram::1234567890123456:role/aliyunkafkaconnectorrole/fcsink-test"
    );
    assert!(
        body["AssumedRoleUser"]["AssumedRoleId"]
            .as_str()
            .expect("id")
            .ends_with(":fcsink-test")
    );
    let credentials = &body["Credentials"];
    assert!(
        credentials["AccessKeyId"]
            .as_str()
            .expect("id")
            .starts_with("STS.")
    );
    assert!(
        !credentials["AccessKeySecret"]
            .as_str()
            .expect("secret")
            .is_empty()
    );
    assert!(
        !credentials["SecurityToken"]
            .as_str()
            .expect("token")
            .is_empty()
    );
    let expiration = credentials["Expiration"].as_str().expect("expiration");
    let expected = acs_date(SystemTime::now() + Duration::from_secs(3600));
    // Same format, and within a few seconds of an hour from now.
    assert_eq!(expiration.len(), expected.len());
    assert_eq!(
        &expiration[..15],
        &expected[..15],
        "{expiration} vs {expected}"
    );
    assert_eq!(emulator.assume_role_calls(), 1);
}

#[tokio::test]
async fn post_with_form_body_is_accepted() {
    let emulator = start().await;
    let response = Client::new()
        .post(format!("{}/", emulator.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encoded(&signed_params("POST", &[])))
        .send()
        .await
        .expect("sent");
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    // A GET signature does not verify for a POST.
    let response = Client::new()
        .post(format!(
            "{}/?{}",
            emulator.url(),
            encoded(&signed_params("GET", &[]))
        ))
        .send()
        .await
        .expect("sent");
    let (status, body) = json(response).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("SignatureDoesNotMatch"))
    );
    assert_eq!(emulator.assume_role_calls(), 1);
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let emulator = start().await;
    let mut tampered = signed_params("GET", &[]);
    tampered.retain(|(k, _)| k != "RoleSessionName");
    tampered.push(("RoleSessionName".into(), "someone-else".into()));
    let (status, body) = assume_role_get(&emulator, &tampered).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("SignatureDoesNotMatch"))
    );

    for duration in ["899", "43201", "soon"] {
        let (status, body) = assume_role_get(
            &emulator,
            &signed_params("GET", &[("DurationSeconds", duration)]),
        )
        .await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (400, Some("InvalidParameter.DurationSeconds"))
        );
    }
    let (status, _) = assume_role_get(
        &emulator,
        &signed_params("GET", &[("DurationSeconds", "43200")]),
    )
    .await;
    assert_eq!(status, 200);

    let replayed = signed_params("GET", &[]);
    assert_eq!(assume_role_get(&emulator, &replayed).await.0, 200);
    let (status, body) = assume_role_get(&emulator, &replayed).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("SignatureNonceUsed"))
    );

    let (status, body) = assume_role_get(
        &emulator,
        &signed_params("GET", &[("AccessKeyId", "LTAIunknown")]),
    )
    .await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (404, Some("InvalidAccessKeyId.NotFound"))
    );
    assert_eq!(emulator.assume_role_calls(), 2);
}

#[tokio::test]
async fn temporary_key_invokes_fc2_and_fc3_with_its_token() {
    let emulator = start().await;
    let signer = temporary_key(&emulator).await;

    let headers = fc2_headers(&signer, FC2_PATH, &[], SystemTime::now());
    assert_eq!(
        post(&emulator.url(), FC2_PATH, &headers, b"x".to_vec())
            .await
            .status(),
        200
    );

    let host = emulator.addr().to_string();
    let query = [("qualifier", "LATEST")];
    let headers = fc3_headers(&signer, &host, &query, &[], b"x", SystemTime::now());
    let pq = format!("{FC3_PATH}?qualifier=LATEST");
    assert_eq!(
        post(&emulator.url(), &pq, &headers, b"x".to_vec())
            .await
            .status(),
        200
    );
    assert!(
        emulator
            .invocations()
            .iter()
            .all(|i| i.access_key_id == signer.id)
    );
}

#[tokio::test]
async fn temporary_key_without_token_is_refused() {
    let emulator = start().await;
    let without_token = Signer {
        token: None,
        ..temporary_key(&emulator).await
    };
    let headers = fc2_headers(&without_token, FC2_PATH, &[], SystemTime::now());
    let (status, body) = json(post(&emulator.url(), FC2_PATH, &headers, vec![]).await).await;
    assert_eq!(
        (status, body["ErrorCode"].as_str()),
        (403, Some("InvalidSecurityToken"))
    );

    let wrong_token = Signer {
        token: Some("CAISnotthetoken".into()),
        ..without_token
    };
    let headers = fc2_headers(&wrong_token, FC2_PATH, &[], SystemTime::now());
    assert_eq!(
        post(&emulator.url(), FC2_PATH, &headers, vec![])
            .await
            .status(),
        403
    );
    assert!(emulator.invocations().is_empty());
}

#[tokio::test]
async fn expired_temporary_key_is_refused() {
    let emulator = start_with(EmulatorConfig {
        sts_lifetime: Some(Duration::from_millis(800)),
        quiet: true,
        ..EmulatorConfig::new(ID, SECRET)
    })
    .await;
    let signer = temporary_key(&emulator).await;
    let headers = fc2_headers(&signer, FC2_PATH, &[], SystemTime::now());
    assert_eq!(
        post(&emulator.url(), FC2_PATH, &headers, vec![])
            .await
            .status(),
        200
    );

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let headers = fc2_headers(&signer, FC2_PATH, &[], SystemTime::now());
    let (status, body) = json(post(&emulator.url(), FC2_PATH, &headers, vec![]).await).await;
    assert_eq!(
        (status, body["ErrorCode"].as_str()),
        (403, Some("InvalidSecurityToken.Expired"))
    );

    // A refresh gives working keys again.
    let refreshed = temporary_key(&emulator).await;
    let headers = fc2_headers(&refreshed, FC2_PATH, &[], SystemTime::now());
    assert_eq!(
        post(&emulator.url(), FC2_PATH, &headers, vec![])
            .await
            .status(),
        200
    );
    assert_eq!(emulator.assume_role_calls(), 2);
}
