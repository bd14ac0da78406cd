//! The REST tables run: each case's bytes put on the wire, its answer and
//! what it stored checked; and bodies trickled a byte at a time.

use super::*;

/// The request's bytes, as a client would put them on the wire.
pub(super) fn wire_request(world: &World, case: &RestCase) -> Vec<u8> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        case.method, case.target, world.app.addr
    )
    .into_bytes();
    let mut header = |name: &str, value: &[u8]| {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    };
    match &case.auth {
        Auth::Owner => header(
            "Authorization",
            format!("Bearer {}", world.owner.token).as_bytes(),
        ),
        Auth::Viewer => header(
            "Authorization",
            format!("Bearer {}", world.viewer.token).as_bytes(),
        ),
        Auth::Nobody => {}
        Auth::Header(name, value) => header(name, value),
    }
    if let Some(content_type) = case.content_type {
        header("Content-Type", content_type.as_bytes());
    }
    for (name, value) in &case.headers {
        header(name, value);
    }
    let body = match &case.body {
        Body::None => Vec::new(),
        Body::Bytes(bytes) => {
            header("Content-Length", bytes.len().to_string().as_bytes());
            bytes.clone()
        }
        Body::Chunked(bytes) => {
            header("Transfer-Encoding", b"chunked");
            let mut chunked = Vec::new();
            for chunk in bytes.chunks(4096) {
                chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                chunked.extend_from_slice(chunk);
                chunked.extend_from_slice(b"\r\n");
            }
            chunked.extend_from_slice(b"0\r\n\r\n");
            chunked
        }
        Body::Lying { length, sent } => {
            header("Content-Length", length.to_string().as_bytes());
            sent.clone()
        }
    };
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(&body);
    head
}

/// Reads a stored row back through the API, by the answer's id.
pub(super) async fn read_back(world: &World, kind: Kind, answer: &Value) -> Result<Value, String> {
    let (path, key) = match kind {
        Kind::SourceCreated | Kind::SourceUpdated => (
            format!(
                "/api/sources/{}",
                answer["source"]["id"].as_str().unwrap_or("")
            ),
            "source",
        ),
        Kind::VaultCreated => (
            format!(
                "/api/vaults/{}",
                answer["vault"]["id"].as_str().unwrap_or("")
            ),
            "vault",
        ),
    };
    let (status, body) = world
        .app
        .call(Method::GET, &path, Some(&world.owner), None)
        .await;
    if status == StatusCode::OK {
        Ok(body[key].clone())
    } else {
        Err(format!("reading {path} back: {status} {body}"))
    }
}

pub(super) async fn run_rest_case(world: &World, case: &RestCase) -> Result<(), String> {
    let before = snapshot(&world.app, &world.vault).await;
    let response = send_raw(world.app.addr, wire_request(world, case)).await?;
    let answer = response.json();
    let mut expected_after = before.clone();
    match &case.expect {
        Expect::Refused {
            status,
            code,
            message,
        } => {
            if response.status != *status || answer["error"]["code"] != *code {
                return Err(format!(
                    "answered {}, the contract says {status} {code}",
                    response.describe()
                ));
            }
            check_message(message, &answer["error"]["message"])?;
        }
        Expect::Bare(status) => {
            if response.status != *status {
                return Err(format!(
                    "answered {}, expected a bare {status}",
                    response.describe()
                ));
            }
        }
        Expect::Answered {
            status,
            pointer,
            value,
        } => {
            let got = answer.pointer(pointer).cloned().unwrap_or(Value::Null);
            if response.status != *status || value.as_ref().is_some_and(|value| *value != got) {
                return Err(format!(
                    "answered {}, expected {status} with {pointer} = {value:?}",
                    response.describe()
                ));
            }
        }
        Expect::Stored { kind, field, value } => {
            let (status, key, table, rows, events) = match kind {
                Kind::SourceCreated => (201, "source", "sources", 1, 1),
                Kind::SourceUpdated => (200, "source", "sources", 0, 1),
                Kind::VaultCreated => (201, "vault", "vaults", 1, 0),
            };
            if response.status != status || answer[key][*field] != *value {
                return Err(format!(
                    "answered {}, expected {status} with {key}.{field} = {value:?}",
                    response.describe()
                ));
            }
            let again = read_back(world, *kind, &answer).await?;
            if again[*field] != *value {
                return Err(format!("read back {key}.{field} as {}", again[*field]));
            }
            let new_vault = matches!(kind, Kind::VaultCreated)
                .then(|| answer["vault"]["id"].as_str().unwrap_or_default());
            expected_after = before.after(table, rows, &world.vault, events, new_vault);
        }
        Expect::Replayed => {
            if response.status != 201 || answer != world.retried_answer {
                return Err(format!(
                    "answered {}, expected the first answer again: 201 {}",
                    response.describe(),
                    world.retried_answer
                ));
            }
            if response.header("idempotency-replayed") != Some("true") {
                return Err("no `Idempotency-Replayed: true` header".into());
            }
        }
    }
    let after = snapshot(&world.app, &world.vault).await;
    if after != expected_after {
        return Err(format!(
            "wrote something else than expected:\n  before   {before:?}\n  expected {expected_after:?}\n  after    {after:?}"
        ));
    }
    still_serves(world).await
}

pub(super) async fn hostile_rest_requests(backend: Backend) {
    let world = world(backend).await;
    let cases = rest_cases(&world);
    assert!(cases.len() >= 55, "{} REST cases", cases.len());
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        if let Err(why) = run_rest_case(&world, case).await {
            let failure = format!(
                "REST #{index} {:?} ({} {}): {why}",
                case.what,
                case.method,
                shorten(&case.target)
            );
            eprintln!("{failure}");
            failures.push(failure);
        }
    }
    report("REST", cases.len(), &failures);
}

/// A body trickled a byte at a time holds one connection, not the server:
/// REST and Socket.IO clients are served while it trickles, and the slow
/// request is then answered (and refused) like any other. A client that
/// gives up halfway through its body leaves nothing behind.
pub(super) async fn slow_bodies_do_not_hold_up_other_clients(backend: Backend) {
    let world = world(backend).await;
    let before = snapshot(&world.app, &world.vault).await;
    let body = br#"{"name": 7, "pad": "trickled slowly"}"#.to_vec();
    let head = format!(
        "POST /api/vaults HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        world.app.addr,
        world.owner.token,
        body.len()
    );
    let (started, has_started) = oneshot::channel();
    let (finish, may_finish) = oneshot::channel::<()>();
    let addr = world.app.addr;
    let slow = tokio::spawn(async move {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).ok();
        let (mut reader, mut writer) = stream.into_split();
        writer.write_all(head.as_bytes()).await.expect("head");
        let (last, first) = body.split_last().expect("a body");
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        let mut started = Some(started);
        for byte in first {
            pace.tick().await;
            writer.write_all(&[*byte]).await.expect("a byte");
            if let Some(started) = started.take() {
                started.send(()).ok();
            }
        }
        // The last byte waits until the other clients have been served.
        may_finish.await.ok();
        writer.write_all(&[*last]).await.expect("the last byte");
        let mut answer = Vec::new();
        reader.read_to_end(&mut answer).await.ok();
        drop(writer);
        complete_response(&answer, true)
    });
    has_started.await.expect("the slow body started");

    // Meanwhile: several REST requests, and a socket that joins.
    for _ in 0..10 {
        still_serves(&world)
            .await
            .expect("served during the slow body");
    }
    let mut socket = SocketBuilder::new(&world.app)
        .token(&world.contributor.token)
        .connect()
        .await;
    socket.join_ok(&world.vault).await;
    assert!(
        !slow.is_finished(),
        "the slow request was still being sent while the others were served"
    );
    finish.send(()).ok();
    let answer = tokio::time::timeout(HTTP_PATIENCE, slow)
        .await
        .expect("the slow request is answered")
        .expect("the slow client ran")
        .expect("a complete answer");
    assert_eq!(answer.status, 400, "{}", answer.describe());
    assert_eq!(answer.json()["error"]["code"], "BAD_REQUEST");

    // A client that stops halfway and goes away.
    let stream = TcpStream::connect(world.app.addr).await.expect("connect");
    let (reader, mut writer) = stream.into_split();
    let half = format!(
        "POST /api/vaults/{}/sources HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"title\": \"Half",
        world.vault, world.app.addr, world.owner.token
    );
    writer
        .write_all(half.as_bytes())
        .await
        .expect("half a body");
    drop(writer);
    drop(reader);

    // Headers that never end hold their connection only.
    let mut never = TcpStream::connect(world.app.addr).await.expect("connect");
    never
        .write_all(b"POST /api/vaults HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("half a head");
    still_serves(&world)
        .await
        .expect("served during endless headers");
    socket.sync().await;
    assert!(
        socket
            .take_matching(|name| names::ALL.contains(&name))
            .is_empty(),
        "nothing was broadcast"
    );
    drop(never);
    let after = snapshot(&world.app, &world.vault).await;
    unchanged(&before, &after).expect("the slow clients wrote nothing");
    still_serves(&world).await.expect("served afterwards");
}
