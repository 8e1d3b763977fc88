//! Keeps every record unchanged. fcsink embeds this plugin and uses it when no
//! `[[transform]]` is configured.

use fcsink_guest::{Config, Outcome, Record, Transform};

/// The plugin; it has no state and accepts no configuration.
pub struct Passthrough;

impl Transform for Passthrough {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(&[])?;
        Ok(Passthrough)
    }

    fn transform(&mut self, _record: &Record) -> Outcome {
        Outcome::Keep
    }
}

fcsink_guest::export!(Passthrough);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_record() {
        let mut plugin = Passthrough::new(Config::default()).unwrap();
        let record = Record::new(Some(b"demo"), Some(b"{\"key\": \"test\"}"));
        assert_eq!(plugin.transform(&record), Outcome::Keep);
    }

    #[test]
    fn refuses_configuration() {
        let err = Passthrough::new(Config::from_pairs([("x", "1")]))
            .err()
            .unwrap();
        assert!(err.contains("`x`"), "{err}");
    }
}
