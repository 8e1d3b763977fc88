//! Write fcsink transform plugins in Rust.
//!
//! A plugin is a type that implements [`Transform`], exported with
//! [`export!`]. fcsink builds it once with the plugin's configuration, then
//! hands it batches of Kafka records; for each record the plugin says
//! whether to keep it, drop it, replace it, or fail it (which sends it to the
//! dead-letter topic).
//!
//! ```no_run
//! use fcsink_guest::{Config, Outcome, Record, Transform};
//!
//! struct DropEmpty;
//!
//! impl Transform for DropEmpty {
//!     fn new(_config: Config) -> Result<Self, String> {
//!         Ok(DropEmpty)
//!     }
//!
//!     fn transform(&mut self, record: &Record) -> Outcome {
//!         match &record.value {
//!             Some(v) if !v.is_empty() => Outcome::Keep,
//!             _ => Outcome::Drop,
//!         }
//!     }
//! }
//!
//! fcsink_guest::export!(DropEmpty);
//! ```
//!
//! The logic is plain Rust: call `DropEmpty::new(..)` and `transform(..)` from
//! an ordinary `#[test]` and run `cargo test` natively, no Wasm needed. Build
//! the plugin with `cargo build --release --target wasm32-wasip2`.
#![deny(missing_docs)]

mod config;
mod record;

pub use config::Config;
/// One Kafka record as the plugin sees it.
pub use wit::KafkaRecord as Record;
pub use wit::Outcome;
pub use wit::fcsink::transform::types::{Header, Level};
/// The bindings generator, re-exported so a plugin needs no other dependency.
pub use wit_bindgen;

/// Bindings generated from `wit/transform.wit`; used by [`export!`].
#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "transformer",
        pub_export_macro: true,
        export_macro_name: "__export_transformer",
        default_bindings_module: "fcsink_guest::wit",
        additional_derives: [PartialEq, Eq],
    });
}

/// A transform plugin.
///
/// fcsink calls [`Transform::new`] once, then [`Transform::transform_batch`]
/// for every batch. Most plugins only implement [`Transform::transform`], which
/// the default `transform_batch` calls for each record in order.
pub trait Transform: Sized + 'static {
    /// Builds the plugin from its configuration.
    ///
    /// # Errors
    /// Return a message that names the offending key and the rule; fcsink then
    /// refuses to start and shows the message.
    fn new(config: Config) -> Result<Self, String>;

    /// Decides the fate of one record.
    fn transform(&mut self, record: &Record) -> Outcome;

    /// Decides the fate of a whole batch: one outcome per record, in order.
    ///
    /// # Errors
    /// An error rejects the whole batch: every record in it goes to the
    /// dead-letter topic with the message as the reason.
    fn transform_batch(&mut self, batch: &[Record]) -> Result<Vec<Outcome>, String> {
        Ok(batch.iter().map(|record| self.transform(record)).collect())
    }
}

/// Writes a line to fcsink's log, tagged with the plugin's name.
///
/// Outside Wasm (in native unit tests) the line goes to standard error.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    wit::fcsink::transform::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Exports a [`Transform`] implementation as the plugin's entry points.
///
/// Use it once per plugin crate: `fcsink_guest::export!(MyPlugin);`
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static PLUGIN: ::std::cell::RefCell<::std::option::Option<$plugin>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            struct Exported;

            impl $crate::wit::Guest for Exported {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    let plugin =
                        <$plugin as $crate::Transform>::new($crate::Config::from_pairs(config))?;
                    PLUGIN.with(|slot| *slot.borrow_mut() = ::std::option::Option::Some(plugin));
                    ::std::result::Result::Ok(())
                }

                fn transform(
                    batch: ::std::vec::Vec<$crate::Record>,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Outcome>, ::std::string::String>
                {
                    PLUGIN.with(|slot| match slot.borrow_mut().as_mut() {
                        ::std::option::Option::Some(plugin) => {
                            $crate::Transform::transform_batch(plugin, &batch)
                        }
                        ::std::option::Option::None => ::std::result::Result::Err(
                            ::std::string::String::from("plugin called before init"),
                        ),
                    })
                }
            }

    $crate::wit::__export_transformer!(Exported with_types_in $crate::wit);
        };
    };
}
