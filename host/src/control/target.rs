//! The target behind a switch, so `fcsink set send_mode=…` takes effect
//! without a restart: the next request goes to a target rebuilt for the new mode.

use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;

use crate::config::{SendMode, TargetSettings};
use crate::invoke::{Target, Verdict};

/// Builds a target from its settings (credentials from the environment).
pub type TargetFactory =
    Arc<dyn Fn(&TargetSettings) -> anyhow::Result<Box<dyn Target>> + Send + Sync>;

/// The current target, replaceable while requests are in flight.
pub struct Switchable {
    current: RwLock<Arc<dyn Target>>,
    settings: TargetSettings,
    /// `None` when the caller built the target (tests): it cannot be rebuilt.
    factory: Option<TargetFactory>,
}

impl Switchable {
    /// Wraps the target built from `settings`.
    pub fn new(
        target: Box<dyn Target>,
        settings: TargetSettings,
        factory: Option<TargetFactory>,
    ) -> Self {
        Switchable {
            current: RwLock::new(Arc::from(target)),
            settings,
            factory,
        }
    }

    /// Rebuilds the target for `mode`; requests in flight finish on the old one.
    ///
    /// # Errors
    /// When the target cannot be rebuilt; the old one stays.
    pub fn set_send_mode(&self, mode: SendMode) -> anyhow::Result<()> {
        let mut settings = self.settings.clone();
        match &mut settings {
            TargetSettings::Fc(fc) => fc.send_mode = mode,
            TargetSettings::Lambda(lambda) => lambda.send_mode = mode,
            TargetSettings::Http(_) => {
                anyhow::ensure!(mode == SendMode::Sync, "an HTTP target is always sync")
            }
        }
        let factory = self.factory.as_ref().ok_or_else(|| {
            anyhow::anyhow!("the target was built by the caller and cannot be rebuilt")
        })?;
        let target = factory(&settings)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::from(target);
        Ok(())
    }

    fn current(&self) -> Arc<dyn Target> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Target for Switchable {
    fn send(&self, body: bytes::Bytes) -> BoxFuture<'_, Verdict> {
        let target = self.current();
        Box::pin(async move { target.send(body).await })
    }

    fn describe(&self) -> String {
        self.current().describe()
    }
}
