//! A JavaScript plugin built with componentize-js (`plugins-js/`): the ETL
//! template's port gives the same output as the Rust `etl-compat` plugin.

use fcsink::transform::{Chain, LoadError};
use fcsink_tests::plugins::{js_plugin, plugin, repo_root};

use crate::python_plugins::{etl_sample, load};

#[test]
fn the_javascript_etl_template_gives_the_same_output_as_etl_compat() {
    let js = load(
        &js_plugin(&repo_root().join("plugins-js/add_suffix.js")),
        &[],
    )
    .unwrap();
    let rust = load(&plugin("etl-compat"), &[]).unwrap();
    let got = Chain::new(&[js]).run(etl_sample()).unwrap();
    let expected = Chain::new(&[rust]).run(etl_sample()).unwrap();
    assert_eq!(got, expected);
}

#[test]
fn the_javascript_plugin_refuses_configuration_with_its_message() {
    let wasm = js_plugin(&repo_root().join("plugins-js/add_suffix.js"));
    let err = load(&wasm, &[("suffix", "x")]).err().unwrap();
    assert!(matches!(err, LoadError::Config { .. }), "{err}");
    assert!(err.to_string().contains("`suffix`"), "{err}");
}
