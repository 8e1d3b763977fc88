//! Credentials that can change under a running connector: temporary keys in
//! a credentials file, rewritten by whatever rotates them. They are read
//! again when the file changes (checked at most once per [`CHECK_EVERY`])
//! and when the service refused them (`reload`). Keys from the environment
//! or given explicitly cannot change and are kept.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// How often the file's modification time is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Reads the credentials, and the file they came from (none for the
/// environment). The error names where it looked, never a secret.
pub type Loader<T> = Box<dyn Fn() -> Result<(T, Option<PathBuf>), String> + Send + Sync>;

/// Credentials, read again when their file changes or they are refused.
pub struct Reloading<T> {
    load: Option<Loader<T>>,
    state: Mutex<State<T>>,
}

struct State<T> {
    value: T,
    file: Option<PathBuf>,
    modified: Option<SystemTime>,
    checked: Instant,
}

fn modified(file: Option<&PathBuf>) -> Option<SystemTime> {
    std::fs::metadata(file?).and_then(|m| m.modified()).ok()
}

impl<T: Clone> Reloading<T> {
    /// Credentials that never change.
    pub fn fixed(value: T) -> Self {
        Reloading {
            load: None,
            state: Mutex::new(State {
                value,
                file: None,
                modified: None,
                checked: Instant::now(),
            }),
        }
    }

    /// Credentials from `load`, read now.
    ///
    /// # Errors
    /// The loader's, when there are no credentials now.
    pub fn new(load: Loader<T>) -> Result<Self, String> {
        let (value, file) = load()?;
        Ok(Reloading {
            state: Mutex::new(State {
                value,
                modified: modified(file.as_ref()),
                file,
                checked: Instant::now(),
            }),
            load: Some(load),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The credentials now: read again first if their file changed.
    pub fn get(&self) -> T {
        let mut state = self.lock();
        if state.file.is_some() && state.checked.elapsed() >= CHECK_EVERY {
            state.checked = Instant::now();
            let now = modified(state.file.as_ref());
            if now != state.modified {
                self.read(&mut state, "its file changed");
            }
        }
        state.value.clone()
    }

    /// Reads the credentials again, after the service refused them (an
    /// expired or revoked token). Keeps the old ones when that fails.
    pub fn reload(&self) {
        let mut state = self.lock();
        self.read(&mut state, "the service refused them");
    }

    fn read(&self, state: &mut State<T>, why: &str) {
        let Some(load) = &self.load else { return };
        match load() {
            Ok((value, file)) => {
                tracing::info!(file = ?file, why, "Read the credentials again");
                state.value = value;
                state.modified = modified(file.as_ref());
                state.file = file;
            }
            Err(err) => {
                tracing::warn!(error = %err, why, "Could not read the credentials again; keeping the old ones");
                state.modified = modified(state.file.as_ref());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads the first line of a file.
    fn from(file: PathBuf) -> Loader<String> {
        Box::new(move || {
            let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
            Ok((
                text.lines().next().unwrap_or("").to_string(),
                Some(file.clone()),
            ))
        })
    }

    fn age(state: &Reloading<String>) {
        state.lock().checked = Instant::now() - CHECK_EVERY;
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_refusal_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(&file, "one\n").unwrap();
        let credentials = Reloading::new(from(file.clone())).unwrap();
        assert_eq!(credentials.get(), "one");

        std::fs::write(&file, "two\n").unwrap();
        // A different modification time, whatever the filesystem's resolution.
        let later = SystemTime::now() + Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(credentials.get(), "one", "looked at once per CHECK_EVERY");
        age(&credentials);
        assert_eq!(credentials.get(), "two");

        // Rewritten within the same second: only a refusal finds out.
        std::fs::write(&file, "three\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        age(&credentials);
        assert_eq!(credentials.get(), "two");
        credentials.reload();
        assert_eq!(credentials.get(), "three");

        // A file that disappears keeps the last credentials.
        std::fs::remove_file(&file).unwrap();
        credentials.reload();
        assert_eq!(credentials.get(), "three");
    }

    #[test]
    fn fixed_credentials_never_change() {
        let credentials = Reloading::fixed("k".to_string());
        credentials.reload();
        assert_eq!(credentials.get(), "k");
    }
}
