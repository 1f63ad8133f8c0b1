//! A value several async tasks share (the store, above all), used on blocking threads so that no
//! SQLite work ever runs on the async threads or a frame waits for a write. The loop and the
//! workbench both go through [`blocking`].

use std::sync::{Arc, Mutex, MutexGuard};

/// Owned by one mutex, shared by reference count.
pub type Shared<S> = Arc<Mutex<S>>;

pub fn shared<S>(value: S) -> Shared<S> {
    Arc::new(Mutex::new(value))
}

/// Locks `value`; a job that panicked while holding the lock does not poison it for the others
/// (every store write is a transaction, so a half-done job left nothing behind).
pub fn lock<S>(value: &Shared<S>) -> MutexGuard<'_, S> {
    value.lock().unwrap_or_else(|e| e.into_inner())
}

/// A blocking job that never ran to its end because the runtime shut down under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a background job was dropped because the program is shutting down")]
pub struct JobLost;

/// Runs `job` on the value behind `value` on a blocking thread and returns its result. A panic in
/// the job is a bug and goes on unwinding here.
pub async fn blocking<S, T, E>(
    value: &Shared<S>,
    job: impl FnOnce(&mut S) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    S: Send + 'static,
    T: Send + 'static,
    E: From<JobLost> + Send + 'static,
{
    let value = value.clone();
    match tokio::task::spawn_blocking(move || job(&mut lock(&value))).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(JobLost.into()),
    }
}
