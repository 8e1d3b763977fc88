//! Alibaba Cloud request signatures, computed byte for byte as the official SDKs do.
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
//!
//! The tests hold fixed vectors produced by the official Python SDKs with
//! `scripts/sdk_vectors.py`; rerun it to regenerate them.

pub mod acs3;
pub mod encode;
pub mod fc2;
pub mod rpc;

pub use acs3::{
    ACS3_HMAC_SHA256, Acs3Authorization, Acs3Request, acs3_authorization, acs3_canonical_headers,
    acs3_canonical_query, acs3_canonical_request, acs3_signature, acs3_signed_headers,
    acs3_string_to_sign,
};
pub use encode::{percent_decode, percent_encode, sha256_hex};
pub use fc2::{fc2_authorization, fc2_signature, fc2_string_to_sign, parse_fc2_authorization};
pub use rpc::{rpc_canonicalized_query, rpc_signature, rpc_string_to_sign};
