//! Labelled series that cannot corrupt the exposition or grow without end.
//!
//! Some label values come from outside: the dead-letter code can be a
//! function's `X-Fc-Error-Type` header or a word of its error body. Every
//! value is cut to [`MAX_VALUE_LEN`] and escaped as the Prometheus text
//! format requires (backslash, double quote, newline), and a family holds
//! at most [`MAX_SERIES`] label sets: the rest are counted under [`OTHER`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Longest label value kept, in bytes; a longer one is cut at a character boundary.
pub const MAX_VALUE_LEN: usize = 128;
/// Most label sets one family holds, [`OTHER`] included.
pub const MAX_SERIES: usize = 64;
/// The value of every label of the series that counts label sets beyond [`MAX_SERIES`].
pub const OTHER: &str = "other";

/// `value` cut to [`MAX_VALUE_LEN`] bytes, with `\`, `"` and newlines escaped.
pub fn escape(value: &str) -> String {
    let mut end = value.len().min(MAX_VALUE_LEN);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let mut escaped = String::with_capacity(end);
    for c in value[..end].chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `name="value",…`, values escaped; labels with an empty value are left out.
pub fn render(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (name, value) in labels.iter().filter(|(_, v)| !v.is_empty()) {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"{}\"", escape(value));
    }
    out
}

/// The counters of one family, by rendered label set.
#[derive(Debug, Default)]
pub struct Family {
    series: BTreeMap<String, u64>,
}

impl Family {
    /// Adds `n` to the series of `labels`, or to the [`OTHER`] series when
    /// the family is full and `labels` is new.
    pub fn add(&mut self, labels: &[(&str, &str)], n: u64) {
        let key = render(labels);
        if !self.series.contains_key(&key) && self.series.len() >= MAX_SERIES - 1 {
            let other: Vec<(&str, &str)> = labels.iter().map(|(name, _)| (*name, OTHER)).collect();
            *self.series.entry(render(&other)).or_default() += n;
            return;
        }
        *self.series.entry(key).or_default() += n;
    }

    /// Every series: rendered labels and value.
    pub fn series(&self) -> impl Iterator<Item = (&str, u64)> {
        self.series.iter().map(|(labels, n)| (labels.as_str(), *n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sample line of the text format: name, labels, value.
    type Sample = (String, Vec<(String, String)>, f64);

    /// Parses one sample line, unescaping label values.
    fn parse_sample(line: &str) -> Option<Sample> {
        let (series, value) = line.rsplit_once(' ')?;
        let value = value.parse().ok()?;
        let Some((name, rest)) = series.split_once('{') else {
            return Some((series.to_string(), Vec::new(), value));
        };
        let mut labels = Vec::new();
        let mut chars = rest.chars();
        loop {
            let label: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if chars.next()? != '"' {
                return None;
            }
            let mut text = String::new();
            loop {
                match chars.next()? {
                    '\\' => match chars.next()? {
                        '\\' => text.push('\\'),
                        '"' => text.push('"'),
                        'n' => text.push('\n'),
                        _ => return None,
                    },
                    '"' => break,
                    '\n' => return None,
                    c => text.push(c),
                }
            }
            labels.push((label, text));
            match chars.next()? {
                ',' => continue,
                '}' if chars.next().is_none() => return Some((name.into(), labels, value)),
                _ => return None,
            }
        }
    }

    #[test]
    fn a_hostile_label_renders_as_valid_exposition() {
        let hostile = "x\"} 1\nfcsink_fake{a=\"b\\";
        let mut family = Family::default();
        family.add(&[("code", hostile), ("topic", "t")], 3);
        let (labels, n) = family.series().next().unwrap();
        let line = format!("fcsink_records_dead_lettered_by_code_total{{{labels}}} {n}");
        assert_eq!(line.lines().count(), 1, "{line}");
        let (name, labels, value) =
            parse_sample(&line).unwrap_or_else(|| panic!("invalid: {line}"));
        assert_eq!(name, "fcsink_records_dead_lettered_by_code_total");
        assert_eq!(
            labels,
            vec![
                ("code".into(), hostile.into()),
                ("topic".into(), "t".into())
            ]
        );
        assert_eq!(value, 3.0);
    }

    #[test]
    fn a_long_label_is_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_VALUE_LEN);
        let escaped = escape(&long);
        assert!(escaped.len() <= MAX_VALUE_LEN, "{}", escaped.len());
        assert_eq!(escaped, "é".repeat(MAX_VALUE_LEN / 2));
        // A cut never splits an escape: the value is cut first.
        let quotes = "\"".repeat(MAX_VALUE_LEN + 10);
        assert_eq!(escape(&quotes), "\\\"".repeat(MAX_VALUE_LEN));
    }

    #[test]
    fn ten_thousand_codes_make_at_most_the_cap() {
        let mut family = Family::default();
        for i in 0..10_000 {
            family.add(&[("code", &format!("code-{i}"))], 1);
        }
        let series: Vec<(&str, u64)> = family.series().collect();
        assert_eq!(series.len(), MAX_SERIES);
        assert_eq!(series.iter().map(|(_, n)| n).sum::<u64>(), 10_000);
        let other = series.iter().find(|(l, _)| *l == "code=\"other\"").unwrap();
        assert_eq!(other.1, 10_000 - (MAX_SERIES as u64 - 1));
        // A code seen before the cap keeps counting on its own.
        family.add(&[("code", "code-0")], 1);
        assert!(family.series().any(|s| s == ("code=\"code-0\"", 2)));
    }

    #[test]
    fn empty_values_are_left_out() {
        assert_eq!(
            render(&[("cause", "failure_policy"), ("code", "")]),
            "cause=\"failure_policy\""
        );
    }
}
