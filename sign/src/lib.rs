//! Alibaba Cloud and AWS request signatures, computed byte for byte as the official SDKs
//! do.
//!
//! Everything here is a pure function over strings and bytes: no clock, no I/O, no
//! randomness. A client calls these to sign a request; a server (the emulator) calls the
//! same pieces on the request it received to verify it.
//!
//! # Layout
//!
//! - [`encode`]: RFC 3986 percent-encoding and decoding, hex SHA-256.
//! - [`fc2`]: the FC 2.0 `FC {id}:{sig}` signature (InvokeFunction on API `2016-08-15`).
//! - [`acs3`]: OpenAPI V3 `ACS3-HMAC-SHA256` (FC 3.0, API `2023-03-30`).
//! - [`rpc`]: RPC V2 HMAC-SHA1 (STS `AssumeRole`).
//! - [`sigv4`]: AWS Signature Version 4 (Lambda `Invoke`), as botocore signs.
//!
//! The tests hold fixed vectors produced by the official Python SDKs (botocore for AWS) with
//! `scripts/sdk_vectors.py`; rerun it to regenerate them.

pub mod acs3;
pub mod encode;
pub mod fc2;
pub mod rpc;
pub mod sigv4;

pub use acs3::{
    ACS3_HMAC_SHA256, Acs3Authorization, Acs3Request, acs3_authorization, acs3_canonical_headers,
    acs3_canonical_query, acs3_canonical_request, acs3_signature, acs3_signed_headers,
    acs3_string_to_sign,
};
pub use encode::{percent_decode, percent_encode, sha256_hex};
pub use fc2::{fc2_authorization, fc2_signature, fc2_string_to_sign, parse_fc2_authorization};
pub use rpc::{rpc_canonicalized_query, rpc_signature, rpc_string_to_sign};
pub use sigv4::{
    AWS4_HMAC_SHA256, AwsCredentials, SigV4Authorization, SigV4Headers, SigV4Request,
    constant_time_eq, lambda_invoke_path, sigv4_amz_date, sigv4_canonical_headers,
    sigv4_canonical_query, sigv4_canonical_request, sigv4_canonical_uri, sigv4_scope, sigv4_sign,
    sigv4_signature, sigv4_signed_headers, sigv4_string_to_sign, sigv4_verify,
};
