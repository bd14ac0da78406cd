//! Abuse limits (docs/security.md "Limits"): login and signup attempts
//! per client address, member additions per user, commands per socket,
//! sockets per user. The sizes
//! and timeouts of Socket.IO itself are set on its builder
//! ([`crate::socket::start`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::config::Limits;
use crate::error::AppError;

/// Keys a per-key limit tracks before it forgets the idle ones.
const TRACKED_KEYS: usize = 10_000;

/// A per-minute limit per key (off when no rate is set): over it, 429
/// `RATE_LIMITED` with `Retry-After`.
struct PerKey<K: std::hash::Hash + Eq + Clone>(Option<DefaultKeyedRateLimiter<K>>);

impl<K: std::hash::Hash + Eq + Clone> PerKey<K> {
    fn per_minute(rate: Option<NonZeroU32>) -> PerKey<K> {
        PerKey(rate.map(|rate| RateLimiter::keyed(Quota::per_minute(rate))))
    }

    /// Counts one `what` for `key`; refused with "`what`; retry in N s"
    /// over the limit.
    fn count(&self, key: &K, what: &str) -> Result<(), AppError> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        if limiter.len() > TRACKED_KEYS {
            limiter.retain_recent();
        }
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            AppError::RateLimited {
                message: format!("{what}; retry in {seconds} s"),
                retry_after: Some(seconds),
            }
        })
    }
}

/// The login and signup limiter, keyed by client address.
pub struct AuthLimiter {
    limit: PerKey<IpAddr>,
    trusted_proxies: Vec<IpNet>,
}

impl AuthLimiter {
    pub fn new(limits: &Limits) -> AuthLimiter {
        AuthLimiter {
            limit: PerKey::per_minute(limits.auth_rate_per_minute),
            trusted_proxies: limits.trusted_proxies.clone(),
        }
    }
}

/// The member-additions limiter, keyed by the adding user's id.
pub struct MemberAdditions(PerKey<String>);

impl MemberAdditions {
    pub fn new(limits: &Limits) -> MemberAdditions {
        MemberAdditions(PerKey::per_minute(limits.member_additions_per_minute))
    }

    /// Counts one member addition by `user_id`; 429 with the wait when it
    /// is over the limit.
    pub fn attempt(&self, user_id: &str) -> Result<(), AppError> {
        self.0.count(&user_id.to_owned(), "Too many members added")
    }
}

/// The client address of a request, from its parts: the TCP peer the
/// accept loop recorded, read through trusted proxies as
/// [`client_address`] does.
pub fn request_client(extensions: &Extensions, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
    client_address(peer, headers, trusted)
}

/// The address a request comes from: the TCP peer, or, when the peer is a
/// trusted proxy, the nearest address in `X-Forwarded-For` (read from the
/// right, the end the proxies append to) that is not itself a trusted
/// proxy. A client can prepend anything to the header, but not what the
/// proxies append; reading stops at a hop that is not an address.
/// IPv4-mapped IPv6 addresses count as the IPv4 address.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        let Ok(address) = hop.parse::<IpAddr>() else {
            break;
        };
        client = address.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// What the auth limit counts by: an IPv4 address, or an IPv6 /64 (one
/// host can use every address of its /64).
fn limit_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

/// A login or signup attempt, counted against its client address before
/// the handler runs (429 `RATE_LIMITED` over the limit).
pub struct AuthAttempt;

impl<S> FromRequestParts<S> for AuthAttempt
where
    Arc<AuthLimiter>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<AuthAttempt, AppError> {
        let limiter = Arc::<AuthLimiter>::from_ref(state);
        let client = request_client(&parts.extensions, &parts.headers, &limiter.trusted_proxies);
        limiter
            .limit
            .count(&limit_key(client), "Too many attempts")?;
        Ok(AuthAttempt)
    }
}

/// A socket may send this many seconds' worth of commands at once.
const BURST_FACTOR: NonZeroU32 = NonZeroU32::new(2).unwrap();

/// One socket's command budget, kept in its extensions.
#[derive(Clone)]
pub struct CommandBudget(Option<Arc<DefaultDirectRateLimiter>>);

impl CommandBudget {
    /// `rate` commands per second, in bursts of up to twice as many.
    pub fn new(limits: &Limits) -> CommandBudget {
        CommandBudget(limits.socket_command_rate.map(|rate| {
            let burst = rate.saturating_mul(BURST_FACTOR);
            Arc::new(RateLimiter::direct(
                Quota::per_second(rate).allow_burst(burst),
            ))
        }))
    }

    /// Spends one command; `RATE_LIMITED` when the budget is empty.
    pub fn spend(&self) -> Result<(), AppError> {
        match &self.0 {
            Some(limiter) => limiter.check().map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                AppError::RateLimited {
                    message: format!(
                        "Too many commands on this socket; retry in {} ms",
                        wait.as_millis().max(1)
                    ),
                    retry_after: None,
                }
            }),
            None => Ok(()),
        }
    }
}

/// Which client address opened each Socket.IO session of this node. A
/// polling or upgrade request that names a session (its Engine.IO `sid`,
/// which is also the socket's id) is served only from that address:
/// knowing a session's id must not give control of it.
#[derive(Default)]
pub struct SessionOwners(Mutex<HashMap<String, IpAddr>>);

impl SessionOwners {
    /// The session `sid` was opened, and authenticated, from `client`.
    pub fn bind(&self, sid: String, client: IpAddr) {
        self.owners().insert(sid, client);
    }

    /// The session `sid` has ended.
    pub fn release(&self, sid: &str) {
        self.owners().remove(sid);
    }

    /// Whether `client` may use the session `sid`. A session not bound here
    /// (unknown, or before its handshake) is Engine.IO's to answer.
    pub fn allows(&self, sid: &str, client: IpAddr) -> bool {
        self.owners().get(sid).is_none_or(|owner| *owner == client)
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, IpAddr>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Open sockets per user on this node.
#[derive(Default)]
pub struct UserSockets {
    open: Mutex<HashMap<String, usize>>,
}

impl UserSockets {
    /// Counts a new socket of `user_id`, unless the user already has `max`;
    /// the socket stops counting when the returned seat is dropped.
    pub fn seat(self: &Arc<Self>, user_id: &str, max: usize) -> Option<Seat> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(user_id.to_owned()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Seat {
            sockets: self.clone(),
            user_id: user_id.to_owned(),
        })
    }
}

/// One counted socket (see [`UserSockets::seat`]).
pub struct Seat {
    sockets: Arc<UserSockets>,
    user_id: String,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut open = self
            .sockets
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.user_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        let trusted = vec!["10.0.0.0/8".parse::<IpNet>().unwrap()];
        let spoofed = headers("1.2.3.4");
        assert_eq!(client_address(stranger, &spoofed, &trusted), stranger);
        assert_eq!(client_address(stranger, &spoofed, &[]), stranger);
        let forwarded = headers("1.2.3.4, 198.51.100.7, 10.0.0.3");
        assert_eq!(
            client_address(proxy, &forwarded, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(client_address(proxy, &headers("junk"), &trusted), proxy);
        // What the client sent before the proxy's own entry is not read.
        let prepended = headers("junk, 198.51.100.7");
        assert_eq!(
            client_address(proxy, &prepended, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // An IPv4 peer seen through an IPv6 socket is still trusted.
        let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        assert_eq!(
            client_address(mapped, &forwarded, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit_key(one), limit_key(other));
        assert_ne!(limit_key(one), limit_key(elsewhere));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(limit_key(v4), v4);
    }

    #[test]
    fn a_session_is_served_only_to_the_address_that_opened_it() {
        let owners = SessionOwners::default();
        let (own, other): (IpAddr, IpAddr) =
            ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        assert!(owners.allows("s", other), "unknown: Engine.IO answers");
        owners.bind("s".into(), own);
        assert!(owners.allows("s", own));
        assert!(!owners.allows("s", other));
        owners.release("s");
        assert!(owners.allows("s", other));
    }

    #[test]
    fn seats_are_counted_per_user_and_freed_on_drop() {
        let sockets = Arc::new(UserSockets::default());
        let first = sockets.seat("u", 2).unwrap();
        let _second = sockets.seat("u", 2).unwrap();
        assert!(sockets.seat("u", 2).is_none());
        assert!(sockets.seat("v", 2).is_some());
        drop(first);
        assert!(sockets.seat("u", 2).is_some());
    }
}
