//! Password hashing (argon2id) on a small pool of threads of its own, with a bounded
//! queue: logins cannot starve the async runtime, and a flood is shed, not queued.
//!
//! The pool has by default one thread fewer than the cores (`NATTER_HASH_WORKERS`), so a
//! core is always left for requests; when the queue is full the answer is 503 `busy`, not
//! a wait. The threads run at normal priority: at nice 19 (tried, with `rustix`), logins
//! fell by a tenth and `natter bench auth`'s GET p99 did not improve
//! (docs/performance.md). An unknown handle is checked against a decoy hash, so its
//! answer costs as much as a wrong password. (Rate limits are checked before any hashing,
//! by the API.)

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use natter_domain::user::{Password, PasswordHash};
use tokio::sync::oneshot;

/// OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
pub const OWASP_MEMORY_KIB: u32 = 19 * 1024;
pub const OWASP_ITERATIONS: u32 = 2;
pub const OWASP_LANES: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the queue is full: try again shortly.
    #[error("password hashing is saturated")]
    Busy,
    #[error("password hashing failed")]
    Failed,
}

enum Job {
    Hash(Password, oneshot::Sender<Result<PasswordHash, HashError>>),
    Verify(Password, Option<PasswordHash>, oneshot::Sender<bool>),
}

/// Cheap to clone; clones share the workers.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHasher")
    }
}

impl PasswordHasher {
    /// `workers` threads (at least one), and at most `queue` jobs waiting for them.
    pub fn new(workers: usize, queue: usize) -> Self {
        Self::with_params(
            workers,
            queue,
            OWASP_MEMORY_KIB,
            OWASP_ITERATIONS,
            OWASP_LANES,
        )
    }

    pub fn with_params(
        workers: usize,
        queue: usize,
        memory_kib: u32,
        iterations: u32,
        lanes: u32,
    ) -> Self {
        let (jobs, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let params = Params::new(memory_kib, iterations, lanes, None).unwrap_or_default();
        // A hash of a password nobody has: verifying unknown accounts against it costs
        // as much as a real check, so timing does not tell whether a handle exists.
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let decoy = argon2
            .hash_password(b"natter decoy password", &SaltString::generate(&mut OsRng))
            .map(|hash| PasswordHash::new(hash.to_string()))
            .ok();
        for index in 0..workers.max(1) {
            let receiver = Arc::clone(&receiver);
            let argon2 = argon2.clone();
            let decoy = decoy.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("natter-hash-{index}"))
                .spawn(move || work(&argon2, &receiver, decoy.as_ref()));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        Self { jobs }
    }

    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash(password.clone(), reply))?;
        answer.await.map_err(|_| HashError::Failed)?
    }

    /// Whether `password` matches `hash`. With no hash (an unknown account), a decoy is
    /// checked instead and the answer is `false`, at the same cost.
    pub async fn verify(
        &self,
        password: &Password,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, HashError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Verify(password.clone(), hash.cloned(), reply))?;
        answer.await.map_err(|_| HashError::Failed)
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        self.jobs.try_send(job).map_err(|error| match error {
            TrySendError::Full(_) => HashError::Busy,
            TrySendError::Disconnected(_) => HashError::Failed,
        })
    }
}

fn work(
    argon2: &Argon2<'_>,
    jobs: &Mutex<std::sync::mpsc::Receiver<Job>>,
    decoy: Option<&PasswordHash>,
) {
    loop {
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        match job {
            Job::Hash(password, reply) => {
                let salt = SaltString::generate(&mut OsRng);
                let hashed = argon2
                    .hash_password(password.expose().as_bytes(), &salt)
                    .map(|hash| PasswordHash::new(hash.to_string()))
                    .map_err(|_| HashError::Failed);
                let _ = reply.send(hashed);
            }
            Job::Verify(password, hash, reply) => {
                let known = hash.is_some();
                let Some(phc) = hash.as_ref().or(decoy) else {
                    let _ = reply.send(false);
                    continue;
                };
                let matches = argon2::PasswordHash::new(phc.as_str()).is_ok_and(|parsed| {
                    argon2
                        .verify_password(password.expose().as_bytes(), &parsed)
                        .is_ok()
                });
                let _ = reply.send(known && matches);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() {
        let hasher = PasswordHasher::new(1, 4);
        let password = Password::parse("correct horse").unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        let wrong = Password::parse("wrong horse").unwrap();
        assert!(!hasher.verify(&wrong, Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&password, None).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_not_queued() {
        let hasher = PasswordHasher::new(1, 1);
        let password = Password::parse("correct horse").unwrap();
        let attempts: Vec<_> = (0..8).map(|_| hasher.hash(&password)).collect();
        let results = futures_join_all(attempts).await;
        assert!(results.contains(&Err(HashError::Busy)));
        assert!(results.iter().any(Result::is_ok));
    }

    async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
        // Submission happens on first poll: poll every future once before awaiting any.
        let mut outputs = Vec::new();
        let mut waiting = Vec::new();
        for future in futures {
            let mut future = Box::pin(future);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match future.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(output) => outputs.push(output),
                std::task::Poll::Pending => waiting.push(future),
            }
        }
        for future in waiting {
            outputs.push(future.await);
        }
        outputs
    }
}
