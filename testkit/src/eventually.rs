//! `eventually`: polls a condition until it holds, for states that no event
//! announces (a port that frees, a budget that refills, a process that
//! answers), and says on failure what it saw last.

use std::fmt::Debug;
use std::time::Duration;

use tokio::time::Instant;

/// How long [`eventually`] waits between two probes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Runs `probe` every [`POLL_INTERVAL`] until it returns `Ok`, and returns
/// that value; panics naming `what` and the probe's last `Err` if none
/// came within `within`. The probe runs at least once.
pub async fn eventually<T, E: Debug>(
    what: &str,
    within: Duration,
    probe: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    match try_eventually(within, probe).await {
        Ok(value) => value,
        Err(last) => panic!("{what}: not within {within:?}; last saw {last:?}"),
    }
}

/// [`eventually`] for callers that report instead of panicking: the
/// probe's last `Err` when none came within `within`.
pub async fn try_eventually<T, E>(
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return Ok(value),
            Err(last) if Instant::now() >= deadline => return Err(last),
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_ok() {
        let mut tries = 0;
        let value = eventually("the third try", Duration::from_secs(5), async || {
            tries += 1;
            if tries == 3 { Ok(tries) } else { Err(tries) }
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn reports_what_it_saw_last() {
        let last = try_eventually(Duration::from_millis(50), async || {
            Err::<(), _>("still closed")
        })
        .await;
        assert_eq!(last, Err("still closed"));
    }

    #[tokio::test]
    #[should_panic(expected = "the port frees: not within 50ms; last saw \"in use\"")]
    async fn panics_naming_what_and_the_last_answer() {
        eventually("the port frees", Duration::from_millis(50), async || {
            Err::<(), _>("in use")
        })
        .await;
    }
}
