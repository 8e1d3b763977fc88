//! The INI files cloud CLIs keep credentials in (`~/.aws/credentials`,
//! `~/.alibabacloud/credentials.ini`): `[section]` headers, `key = value`
//! lines, `#` and `;` comments.

use std::collections::BTreeMap;

/// The `key = value` pairs of `[section]`; `Ok(None)` when it is absent.
///
/// # Errors
/// A line of the section that is not `key = value` (never the value itself).
pub(crate) fn section(
    text: &str,
    section: &str,
) -> Result<Option<BTreeMap<String, String>>, String> {
    let mut current: Option<&str> = None;
    let mut found: Option<BTreeMap<String, String>> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim());
            if name.trim() == section {
                found.get_or_insert_with(BTreeMap::new);
            }
            continue;
        }
        if current != Some(section) {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("[{section}]: a line is not `key = value`"));
        };
        found
            .get_or_insert_with(BTreeMap::new)
            .insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_section_and_ignores_comments() {
        let text = "# c\n[default]\na = 1\n; c\n[profile x]\na = 2\nb=3\n";
        let x = section(text, "profile x").unwrap().unwrap();
        assert_eq!(x.get("a").map(String::as_str), Some("2"));
        assert_eq!(x.get("b").map(String::as_str), Some("3"));
        assert_eq!(section(text, "default").unwrap().unwrap().len(), 1);
        assert_eq!(section(text, "other").unwrap(), None);
        assert!(section("[s]\nnot a pair\n", "s").is_err());
    }
}
