//! API errors as Function Compute and Lambda return them: a status and a JSON body.
//!
//! FC 2.0 writes `{"ErrorCode","ErrorMessage"}` (what the FC 2.0 SDKs read). FC 3.0 goes
//! through the OpenAPI gateway, whose SDK reads `Code`/`Message`/`RequestId`; the exact
//! FC 3.0 keys are unconfirmed, so that shape is an assumption. STS errors use the RPC
//! shape `{"RequestId","HostId","Code","Message"}`.
//!
//! Lambda (rest-json) names the error in the `x-amzn-ErrorType` header, which botocore
//! reads first, and writes the members of the error shape in botocore's Lambda model:
//! `{"Type":"User","message"}`, `{"Type":"Service","Message"}` for `ServiceException`,
//! plus `Reason` and `retryAfterSeconds` for `TooManyRequestsException`. Errors from
//! the AWS authentication layer carry only `{"message"}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which API's error body to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// FC 2.0: `{"ErrorCode","ErrorMessage"}`.
    Fc2,
    /// FC 3.0: `{"Code","Message","RequestId"}`.
    Fc3,
    /// STS (RPC): `{"RequestId","HostId","Code","Message"}`.
    Sts,
    /// Lambda: `x-amzn-ErrorType` and `{"Type","message"}` (see the module doc).
    Lambda,
    /// AWS authentication: `x-amzn-ErrorType` and `{"message"}`.
    AwsAuth,
}

/// The header a Lambda error names its type in.
pub const AWS_ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// What a throttled Lambda invocation gives as its `Reason`.
pub const THROTTLE_REASON: &str = "ReservedFunctionConcurrentInvocationLimitExceeded";

/// An error response: status, error code and message, written in one of the
/// [`ErrorShape`]s. The request id is added later by the request-id layer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error code, e.g. `SignatureNotMatch`.
    pub code: String,
    /// The human-readable message.
    pub message: String,
    /// Seconds for a `Retry-After` header, if any.
    pub retry_after_secs: Option<u64>,
    shape: ErrorShape,
}

/// The message FC returns with `SignatureNotMatch`.
pub const SIGNATURE_NOT_MATCH: &str = "The request signature we calculated does not match the \
     signature you provided. Check your access key and signing method";

impl ApiError {
    /// An FC 2.0 error.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            retry_after_secs: None,
            shape: ErrorShape::Fc2,
        }
    }

    /// 403 `SignatureNotMatch` with FC's standard message.
    pub fn signature_not_match() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "SignatureNotMatch",
            SIGNATURE_NOT_MATCH,
        )
    }

    /// 400 `MissingRequiredHeader` for `header`.
    pub fn missing_header(header: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingRequiredHeader",
            format!("required HTTP header {header} was not specified"),
        )
    }

    /// 400 `InvalidArgument`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }

    /// The same error written in another shape.
    pub fn with_shape(mut self, shape: ErrorShape) -> Self {
        self.shape = shape;
        self
    }

    /// Adds a `Retry-After` header.
    pub fn with_retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after_secs = secs;
        self
    }

    /// The response, with `request_id` in the body where the shape has one.
    pub fn into_response_with_id(self, request_id: &str) -> Response {
        let body = match self.shape {
            ErrorShape::Fc2 => json!({"ErrorCode": self.code, "ErrorMessage": self.message}),
            ErrorShape::Fc3 => {
                json!({"Code": self.code, "Message": self.message, "RequestId": request_id})
            }
            ErrorShape::Sts => json!({
                "RequestId": request_id,
                "HostId": "sts.aliyuncs.com",
                "Code": self.code,
                "Message": self.message,
            }),
            ErrorShape::Lambda => self.lambda_body(),
            ErrorShape::AwsAuth => json!({"message": self.message}),
        };
        let mut response = (self.status, Json(body)).into_response();
        if matches!(self.shape, ErrorShape::Lambda | ErrorShape::AwsAuth)
            && let Ok(code) = HeaderValue::from_str(&self.code)
        {
            response.headers_mut().insert(AWS_ERROR_TYPE_HEADER, code);
        }
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }

    fn lambda_body(&self) -> serde_json::Value {
        if self.status.is_server_error() {
            return json!({"Type": "Service", "Message": self.message});
        }
        let mut body = json!({"Type": "User", "message": self.message});
        if self.code == "TooManyRequestsException" {
            body["Reason"] = json!(THROTTLE_REASON);
            if let Some(secs) = self.retry_after_secs {
                body["retryAfterSeconds"] = json!(secs.to_string());
            }
        }
        body
    }
}
