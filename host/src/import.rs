//! Configurations of other connectors turned into fcsink TOML, with a
//! warning for everything that cannot be carried over.

pub mod confluent;

/// A converted configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The fcsink TOML file.
    pub toml: String,
    /// What was not carried over, or changed, and what to do about it.
    pub warnings: Vec<String>,
}
