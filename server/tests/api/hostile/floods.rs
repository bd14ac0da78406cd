//! Floods (docs/protocol.md, Limits): every command is answered, the
//! limits hold, and the server keeps serving others.

use super::*;

/// Sends `count` commands at once (ack ids 1..=count) and returns their
/// acks in order.
pub(super) async fn burst(
    socket: &mut RawSocket,
    count: u64,
    packet: impl Fn(u64) -> String,
) -> Result<Vec<Value>, String> {
    for id in 1..=count {
        socket.send(&Frame::Text(packet(id))).await?;
    }
    let mut acks = vec![Value::Null; count as usize];
    let mut missing = count;
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    while missing > 0 {
        match socket
            .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            Received::Text(text) => {
                let Some(rest) = text.strip_prefix("43") else {
                    continue;
                };
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let Ok(id) = digits.parse::<u64>() else {
                    continue;
                };
                if let Some(ack) = parse_ack(&text, id)
                    && (1..=count).contains(&id)
                    && acks[(id - 1) as usize].is_null()
                {
                    acks[(id - 1) as usize] = ack;
                    missing -= 1;
                }
            }
            Received::Binary(_) => {}
            other => {
                return Err(format!(
                    "{missing} of {count} commands unanswered: {other:?}"
                ));
            }
        }
    }
    Ok(acks)
}

pub(super) fn code_of(ack: &Value) -> &str {
    if ack["ok"] == true {
        "ok"
    } else {
        ack["error"]["code"].as_str().unwrap_or("?")
    }
}

pub(super) fn tally(acks: &[Value]) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for ack in acks {
        let code = code_of(ack).to_owned();
        match counts.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => counts.push((code, 1)),
        }
    }
    counts
}

pub(super) fn count_of(tally: &[(String, usize)], code: &str) -> usize {
    tally.iter().find(|(c, _)| c == code).map_or(0, |(_, n)| *n)
}

/// A flood run against the world: `Err` says how the answers differ from
/// the contract.
pub(super) type FloodRun =
    for<'a> fn(&'a World) -> Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;

/// One flood and what the contract says of it.
pub(super) struct Flood {
    pub(super) what: &'static str,
    /// Puts back the limit of `syncscript serve` under test (TestApp lifts
    /// the socket budgets for load tests; each flood meets only its own).
    pub(super) limit: fn(&mut Config),
    /// Vaults the owner needs besides the world's.
    pub(super) spare_vaults: usize,
    pub(super) run: FloodRun,
}

pub(super) fn command_rate(config: &mut Config) {
    config.limits.socket_command_rate = Limits::default().socket_command_rate;
}

pub(super) fn sockets_per_user(config: &mut Config) {
    config.limits.max_sockets_per_user = Limits::default().max_sockets_per_user;
}

pub(super) fn vaults_per_socket(config: &mut Config) {
    config.limits.max_vaults_per_socket = Limits::default().max_vaults_per_socket;
}

/// 150 joins of one vault in a burst: every one answered, the burst of
/// 100 honoured, the rest `RATE_LIMITED`.
pub(super) fn joins_in_a_burst(
    world: &World,
) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
    Box::pin(async move {
        let mut socket = RawSocket::connect(&world.app, &world.owner.token).await?;
        let vault = world.vault.clone();
        let acks = burst(&mut socket, 150, |id| {
            format!("42{id}{}", json!(["vault:join", vault]))
        })
        .await?;
        let tally = tally(&acks);
        let allowed = tally
            .iter()
            .all(|(code, _)| code == "ok" || code == "RATE_LIMITED");
        socket.close().await;
        if allowed && count_of(&tally, "ok") >= 100 && count_of(&tally, "RATE_LIMITED") >= 1 {
            Ok(())
        } else {
            Err(format!(
                "answers {tally:?}; the contract says at least 100 ok (the burst) and the rest RATE_LIMITED"
            ))
        }
    })
}

/// 300 unknown events in a burst: each answered, `BAD_REQUEST` within the
/// budget and `RATE_LIMITED` beyond it.
pub(super) fn unknown_events_in_a_burst(
    world: &World,
) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
    Box::pin(async move {
        let mut socket = RawSocket::connect(&world.app, &world.owner.token).await?;
        let acks = burst(&mut socket, 300, |id| {
            format!("42{id}[\"flood:{id}\",{{}}]")
        })
        .await?;
        let tally = tally(&acks);
        socket.close().await;
        let allowed = tally
            .iter()
            .all(|(code, _)| code == "BAD_REQUEST" || code == "RATE_LIMITED");
        if allowed
            && count_of(&tally, "BAD_REQUEST") >= 100
            && count_of(&tally, "RATE_LIMITED") >= 1
        {
            Ok(())
        } else {
            Err(format!(
                "answers {tally:?}; the contract says BAD_REQUEST within the burst of 100, RATE_LIMITED beyond"
            ))
        }
    })
}

/// A socket in 100 vault rooms may not join a 101st (`RATE_LIMITED`); after
/// leaving one it may.
pub(super) fn joins_of_101_vaults(
    world: &World,
) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
    Box::pin(async move {
        let vaults: Vec<&String> = std::iter::once(&world.vault)
            .chain(&world.spare_vaults)
            .collect();
        if vaults.len() != 101 {
            return Err(format!("{} vaults to join", vaults.len()));
        }
        let mut socket = RawSocket::connect(&world.app, &world.owner.token).await?;
        let mut answers = Vec::new();
        for (index, vault) in vaults.iter().enumerate() {
            let id = index as u64 + 1;
            socket
                .send(&Frame::Text(format!(
                    "42{id}{}",
                    json!(["vault:join", vault])
                )))
                .await?;
            answers.push(code_of(&socket.ack(id).await?).to_owned());
        }
        let first_100_ok = answers[..100].iter().all(|code| code == "ok");
        let refused = answers[100] == "RATE_LIMITED";
        socket
            .send(&emit_ack("vault:leave", json!(vaults[0])))
            .await?;
        let left = code_of(&socket.ack(1).await?).to_owned();
        socket
            .send(&Frame::Text(format!(
                "42200{}",
                json!(["vault:join", vaults[100]])
            )))
            .await?;
        let rejoined = code_of(&socket.ack(200).await?).to_owned();
        socket.close().await;
        if first_100_ok && refused && left == "ok" && rejoined == "ok" {
            Ok(())
        } else {
            Err(format!(
                "joins answered {:?}…, the 101st {:?}, leave {left}, then join {rejoined}; the contract says 100 ok, RATE_LIMITED, ok, ok",
                &answers[..3],
                answers[100]
            ))
        }
    })
}

/// 51 connections of one user: the 51st handshake is refused with
/// `RATE_LIMITED`, the 50 others keep working.
pub(super) fn sockets_of_one_user(
    world: &World,
) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
    Box::pin(async move {
        let mut open = Vec::new();
        for _ in 0..50 {
            open.push(RawSocket::connect(&world.app, &world.viewer.token).await?);
        }
        let mut extra = RawSocket::open(&world.app).await?;
        extra
            .send(&Frame::Text(format!(
                "40{}",
                json!({"token": world.viewer.token})
            )))
            .await?;
        let answer = extra
            .until("CONNECT answer", |text| {
                (text.starts_with("40") || text.starts_with("44")).then(|| text.to_owned())
            })
            .await?;
        extra.close().await;
        let refusal = answer
            .strip_prefix("44")
            .and_then(|rest| serde_json::from_str::<Value>(rest).ok())
            .unwrap_or(Value::Null);
        let mut served = Ok(());
        if let Some(first) = open.first_mut() {
            served = first.round_trip().await.map(|_| ());
        }
        for socket in open {
            socket.close().await;
        }
        served?;
        if refusal["message"] == "RATE_LIMITED" {
            Ok(())
        } else {
            Err(format!(
                "the 51st handshake got {answer:?}; the contract says connect_error RATE_LIMITED"
            ))
        }
    })
}

pub(super) async fn floods_are_limited_and_answered(backend: Backend) {
    let floods = [
        Flood {
            what: "150 joins of one vault in a burst",
            limit: command_rate,
            spare_vaults: 0,
            run: joins_in_a_burst,
        },
        Flood {
            what: "300 unknown events in a burst",
            limit: command_rate,
            spare_vaults: 0,
            run: unknown_events_in_a_burst,
        },
        Flood {
            what: "51 sockets of one user",
            limit: sockets_per_user,
            spare_vaults: 0,
            run: sockets_of_one_user,
        },
        Flood {
            what: "joins of 101 vaults by one socket",
            limit: vaults_per_socket,
            spare_vaults: 100,
            run: joins_of_101_vaults,
        },
    ];
    let mut failures = Vec::new();
    for flood in &floods {
        let mut world = world_with(backend, flood.limit).await;
        for index in 0..flood.spare_vaults {
            let name = format!("Spare {index}");
            let vault = world.app.create_vault(&world.owner, &name).await;
            world.spare_vaults.push(vault.id);
        }
        let mut control = SocketBuilder::new(&world.app)
            .token(&world.contributor.token)
            .connect()
            .await;
        control.join_ok(&world.vault).await;
        let before = snapshot(&world.app, &world.vault).await;
        let result = (flood.run)(&world).await;
        control.sync().await;
        let leaked = control.take_matching(|name| names::ALL.contains(&name));
        let after = snapshot(&world.app, &world.vault).await;
        let checked = result
            .and_then(|()| {
                if leaked.is_empty() {
                    Ok(())
                } else {
                    Err(format!("broadcast to the vault: {leaked:?}"))
                }
            })
            .and_then(|()| unchanged(&before, &after));
        let checked = match checked {
            Ok(()) => still_serves(&world).await,
            Err(why) => Err(why),
        };
        if let Err(why) = checked {
            let failure = format!("flood {:?}: {why}", flood.what);
            eprintln!("{failure}");
            failures.push(failure);
        }
    }
    report("flood", floods.len(), &failures);
}
