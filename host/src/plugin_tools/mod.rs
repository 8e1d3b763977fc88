//! Tools for plugin authors, behind `fcsink plugin …`: package a Python
//! `deal_message` file as a plugin ([`python`]) and scaffold a new plugin
//! project ([`scaffold`]). The pipeline never uses them.

pub mod python;
pub mod scaffold;

/// The plugin contract, embedded so that these tools work outside the repository.
pub const WIT: &str = include_str!("../../../wit/transform.wit");

/// Writes `contents` to `path`, creating its folders.
fn write_file(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}
