//! `[[transform]]` and `[sandbox]`: the plugins and the limits they run under.

use super::*;

pub(super) fn transforms(
    raw: Vec<super::raw::RawTransform>,
    base: &Path,
) -> Result<Vec<PluginSpec>> {
    raw.into_iter()
        .enumerate()
        .map(|(i, t)| {
            let field = format!("transform[{i}]");
            let config = t
                .config
                .iter()
                .map(|(k, v)| Ok((k.clone(), scalar(&format!("{field}.config.{k}"), v)?)))
                .collect::<Result<Vec<_>>>()?;
            plugin_spec(&format!("{field}.plugin"), &t.plugin, config, base)
        })
        .collect()
}

/// A built-in plugin's name, or a `.wasm` file that exists (relative to the config file).
pub(crate) fn plugin_spec(
    field: &str,
    plugin: &str,
    config: Vec<(String, String)>,
    base: &Path,
) -> Result<PluginSpec> {
    if transform::BUILTINS.iter().any(|(name, _)| *name == plugin) {
        return Ok(PluginSpec::resolve(plugin, config));
    }
    let path = base.join(plugin);
    if !path.is_file() {
        let builtins: Vec<_> = transform::BUILTINS.iter().map(|(n, _)| *n).collect();
        return Err(ConfigError::invalid(
            field,
            format!(
                "must be a built-in plugin ({}) or a path to a .wasm file; {} does not exist",
                builtins.join(", "),
                path.display()
            ),
        ));
    }
    Ok(PluginSpec::resolve(&path.to_string_lossy(), config))
}

pub(super) fn sandbox(raw: RawSandbox) -> Result<SandboxSettings> {
    let memory_mb: usize = int_in(
        "sandbox.memory_mb",
        raw.memory_mb,
        Limits::default().memory_bytes >> 20,
        1..=4096,
    )?;
    let timeout_ms: u64 = int_in(
        "sandbox.call_timeout_ms",
        raw.call_timeout_ms,
        Limits::default().call_timeout.as_millis() as u64,
        10..=600_000,
    )?;
    let max_output_ratio: usize = int_in(
        "sandbox.max_output_ratio",
        raw.max_output_ratio,
        Limits::default().max_output_ratio,
        1..=1000,
    )?;
    let cache_dir = match raw.cache_dir {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => transform::default_cache_dir(),
    };
    Ok(SandboxSettings {
        limits: Limits {
            memory_bytes: memory_mb << 20,
            call_timeout: Duration::from_millis(timeout_ms),
            max_output_ratio,
        },
        cache_dir,
    })
}
