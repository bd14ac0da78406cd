//! The Socket.IO table run: each case's frames played on a connection of
//! its own and its reply checked.

use super::*;

pub(super) async fn open_for(world: &World, who: Who) -> Result<RawSocket, String> {
    match who {
        Who::Owner => RawSocket::connect(&world.app, &world.owner.token).await,
        Who::Viewer => RawSocket::connect(&world.app, &world.viewer.token).await,
        Who::Anonymous => RawSocket::open(&world.app).await,
    }
}

/// Sends the case's frames and checks the answer; the connection is
/// returned when it should still serve.
pub(super) async fn play(world: &World, case: &SocketCase) -> Result<Option<RawSocket>, String> {
    let mut socket = open_for(world, case.by).await?;
    for frame in &case.frames {
        if let Err(error) = socket.send(frame).await {
            // A server that closed the connection already may refuse the
            // rest of the frames.
            if !matches!(case.reply, Reply::Closed) {
                return Err(error);
            }
        }
    }
    match &case.reply {
        Reply::Error {
            acked,
            code,
            message,
        } => {
            let detail = if *acked {
                let ack = socket.ack(1).await?;
                if ack["ok"] != false {
                    return Err(format!("acked {ack}, the contract says {code}"));
                }
                ack["error"].clone()
            } else {
                socket.error_event().await?
            };
            if detail["code"] != *code {
                return Err(format!("answered {detail}, the contract says {code}"));
            }
            check_message(message, &detail["message"])?;
            Ok(Some(socket))
        }
        Reply::Closed => {
            socket.closed().await?;
            Ok(None)
        }
        Reply::Ignored => {
            let answered = socket.round_trip().await?;
            if answered.is_empty() {
                Ok(Some(socket))
            } else {
                Err(format!("expected no answer, got {answered:?}"))
            }
        }
        Reply::Packet(packet) => {
            socket
                .until(packet, |text| (text == *packet).then_some(()))
                .await?;
            Ok(Some(socket))
        }
        Reply::Refused(message) => {
            let refusal = socket
                .until("CONNECT_ERROR", |text| {
                    text.strip_prefix("44")
                        .and_then(|rest| serde_json::from_str::<Value>(rest).ok())
                })
                .await?;
            if refusal["message"] == *message {
                socket.close().await;
                Ok(None)
            } else {
                Err(format!("refused with {refusal}, expected {message}"))
            }
        }
    }
}

pub(super) async fn run_socket_case(
    world: &World,
    control: &mut TestSocket,
    case: &SocketCase,
) -> Result<(), String> {
    let before = snapshot(&world.app, &world.vault).await;
    let played = play(world, case).await;
    let result = match played {
        Ok(Some(mut socket)) => {
            // The same connection still serves a normal command.
            let served = socket.round_trip().await.map(|_| ());
            socket.close().await;
            served
        }
        Ok(None) => Ok(()),
        Err(why) => Err(why),
    };
    // Whatever happened, nothing reached the vault's watchers...
    control.sync().await;
    let leaked = control.take_matching(|name| names::ALL.contains(&name));
    let after = snapshot(&world.app, &world.vault).await;
    result?;
    if !leaked.is_empty() {
        return Err(format!("broadcast to the vault: {leaked:?}"));
    }
    // ...nothing was written, and the server serves others.
    unchanged(&before, &after)?;
    still_serves(world).await
}

pub(super) async fn hostile_socket_packets(backend: Backend) {
    let world = world(backend).await;
    let mut control = SocketBuilder::new(&world.app)
        .token(&world.contributor.token)
        .connect()
        .await;
    control.join_ok(&world.vault).await;
    let cases = socket_cases(&world);
    assert!(cases.len() >= 22, "{} socket cases", cases.len());
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        if let Err(why) = run_socket_case(&world, &mut control, case).await {
            let failure = format!("socket #{index} {:?}: {why}", case.what);
            eprintln!("{failure}");
            failures.push(failure);
        }
    }
    // A fresh socket is accepted and served after all of it.
    let mut fresh = SocketBuilder::new(&world.app)
        .token(&world.owner.token)
        .connect()
        .await;
    fresh.join_ok(&world.vault).await;
    report("Socket.IO", cases.len(), &failures);
}
