//! `fcsink plugin new`: writes a plugin project that builds, and whose
//! test passes, as generated.
//!
//! The templates are embedded in fcsink. A Rust project gets a copy of the
//! guest SDK (`fcsink-guest/`) and of the WIT (`wit/`), so it builds on a
//! machine without the fcsink repository and always matches the fcsink that
//! wrote it. (A path or git dependency on the repository would not build
//! elsewhere, and `fcsink-guest` is not on crates.io.) A Python project is a `deal_message` file and its unittest.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The language of a new plugin project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A crate using the `fcsink-guest` SDK.
    Rust,
    /// A `deal_message(message)` file for `fcsink plugin build-python`.
    Python,
}

/// A file of a project: where it goes and what it holds.
type Template = (&'static str, &'static str);

const RUST: &[Template] = &[
    ("Cargo.toml", include_str!("templates/rust/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("templates/rust/lib.rs.tmpl")),
    ("README.md", include_str!("templates/rust/README.md.tmpl")),
    (".gitignore", include_str!("templates/rust/gitignore.tmpl")),
];

/// Copied as they are: the contract, the guest SDK, and the lock file of
/// fcsink's own plugins, so that the SDK's dependencies start at the
/// versions fcsink is tested with (cargo drops the entries it does not need).
const RUST_COPIES: &[Template] = &[
    ("Cargo.lock", include_str!("../../../plugins/Cargo.lock")),
    ("wit/transform.wit", super::WIT),
    (
        "fcsink-guest/Cargo.toml",
        include_str!("../../../guest-sdk/Cargo.toml"),
    ),
    (
        "fcsink-guest/src/lib.rs",
        include_str!("../../../guest-sdk/src/lib.rs"),
    ),
    (
        "fcsink-guest/src/config.rs",
        include_str!("../../../guest-sdk/src/config.rs"),
    ),
    (
        "fcsink-guest/src/record.rs",
        include_str!("../../../guest-sdk/src/record.rs"),
    ),
];

const PYTHON: &[Template] = &[
    (
        "{{crate}}.py",
        include_str!("templates/python/plugin.py.tmpl"),
    ),
    (
        "test_{{crate}}.py",
        include_str!("templates/python/test_plugin.py.tmpl"),
    ),
    ("README.md", include_str!("templates/python/README.md.tmpl")),
    (
        ".gitignore",
        include_str!("templates/python/gitignore.tmpl"),
    ),
];

/// Writes the project `name` into `parent/name` and returns that folder.
///
/// # Errors
/// When `name` is not a plugin name (lowercase ASCII letters, digits and
/// dashes, starting with a letter), the folder exists and is not empty, or
/// a file cannot be written.
pub fn new(name: &str, lang: Lang, parent: &Path) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let (templates, copies) = match lang {
        Lang::Rust => (RUST, RUST_COPIES),
        Lang::Python => (PYTHON, &[][..]),
    };
    for (path, template) in templates {
        super::write_file(&dir.join(fill(path, name)), &fill(template, name))?;
    }
    for (path, contents) in copies {
        super::write_file(&dir.join(path), contents)?;
    }
    Ok(dir)
}

/// `template` with its placeholders replaced.
fn fill(template: &str, name: &str) -> String {
    template
        .replace("{{name}}", name)
        .replace("{{crate}}", &name.replace('-', "_"))
        .replace(
            "{{componentize_py}}",
            super::python::COMPONENTIZE_PY_VERSION,
        )
}

/// A name that is a valid crate name and, with `_` for `-`, a Python module name.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.len() <= 64;
    if !valid {
        bail!(
            "plugin name {name:?}: use up to 64 lowercase ASCII letters, digits and dashes, \
             starting with a letter"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_crate_and_module_names() {
        assert!(check_name("my-filter2").is_ok());
        for bad in ["", "2x", "My", "a_b", "a.b", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn placeholders_are_all_filled() {
        for (path, template) in RUST.iter().chain(PYTHON) {
            let filled = fill(template, "my-plugin");
            assert!(!fill(path, "my-plugin").contains("{{"), "{path}");
            assert!(!filled.contains("{{"), "{path} keeps a placeholder");
        }
    }

    #[test]
    fn refuses_a_folder_with_files() {
        let parent = tempfile::tempdir().unwrap();
        std::fs::create_dir(parent.path().join("p")).unwrap();
        std::fs::write(parent.path().join("p/keep.txt"), "mine").unwrap();
        let err = new("p", Lang::Python, parent.path()).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }

    #[test]
    fn writes_every_file() {
        let parent = tempfile::tempdir().unwrap();
        let dir = new("my-plugin", Lang::Python, parent.path()).unwrap();
        assert!(dir.join("my_plugin.py").is_file());
        assert!(dir.join("test_my_plugin.py").is_file());
        let dir = new("rusty", Lang::Rust, parent.path()).unwrap();
        assert!(dir.join("fcsink-guest/src/lib.rs").is_file());
        assert!(dir.join("wit/transform.wit").is_file());
    }
}
