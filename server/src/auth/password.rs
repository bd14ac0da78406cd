//! Password hashing (argon2id), queued so that a flood of logins or
//! signups cannot exhaust memory or the blocking thread pool.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use rand::RngCore;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::AppError;

/// Password hashing is deliberately costly (argon2id, ~19 MiB each): at most
/// one hash per core runs at a time, so a flood of logins or signups queues
/// instead of exhausting memory and the blocking thread pool.
static PASSWORD_WORK: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

async fn password_slot() -> Result<SemaphorePermit<'static>, AppError> {
    PASSWORD_WORK
        .acquire()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("password work queue closed: {e}")))
}

pub(super) async fn hash_password(password: String) -> Result<String, AppError> {
    let _slot = password_slot().await?;
    tokio::task::spawn_blocking(move || {
        let mut salt_bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut salt_bytes);
        let salt = SaltString::encode_b64(&salt_bytes)
            .map_err(|e| anyhow::anyhow!("encoding a salt: {e}"))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(AppError::from)
}

/// The hash an unknown email's password is checked against: a real hash
/// (of a random password, made once), so the check costs what a real one
/// does.
pub(super) async fn stand_in_hash() -> Result<String, AppError> {
    static STAND_IN: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    STAND_IN
        .get_or_try_init(|| {
            let mut password = [0u8; 32];
            rand::rng().fill_bytes(&mut password);
            hash_password(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(password))
        })
        .await
        .cloned()
}

pub(super) async fn verify_password(password: String, hash: String) -> Result<bool, AppError> {
    let _slot = password_slot().await?;
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .map_err(|e| anyhow::anyhow!("stored password hash unreadable: {e}"))
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(AppError::from)
}
