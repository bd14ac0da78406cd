//! A raw HTTP/1.1 client: a request written byte for byte on a connection
//! of its own, and the answer read off the wire (length or chunked).

use super::*;

/// An answer read off the wire.
#[derive(Debug)]
pub(super) struct RawResponse {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl RawResponse {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "{} {}",
            self.status,
            String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
        )
    }
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The response in `bytes` once it is complete (head and the body its
/// framing announces).
pub(super) fn complete_response(bytes: &[u8], closed: bool) -> Option<RawResponse> {
    let end = find(bytes, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let rest = &bytes[end + 4..];
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest, closed)?
    } else if let Some(length) = value("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < length && !closed {
            return None;
        }
        rest[..length.min(rest.len())].to_vec()
    } else if closed {
        rest.to_vec()
    } else {
        return None;
    };
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

pub(super) fn dechunk(mut rest: &[u8], closed: bool) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            return closed.then_some(body);
        };
        let line = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        let start = line_end + 2;
        if rest.len() < start + size + 2 {
            return closed.then_some(body);
        }
        body.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
}

/// Sends `request` on a connection of its own and reads the answer. The
/// request is written while the answer is read: a server may answer (413)
/// before it has read everything.
pub(super) async fn send_raw(addr: SocketAddr, request: Vec<u8>) -> Result<RawResponse, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).ok();
    let (mut reader, mut writer) = stream.into_split();
    // The write half stays open until the answer is read: closing it would
    // tell the server the client is gone.
    let writing = tokio::spawn(async move {
        writer.write_all(&request).await.ok();
        writer
    });
    let mut received = Vec::new();
    let reading = tokio::time::timeout(HTTP_PATIENCE, async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return complete_response(&received, true),
                Ok(n) => {
                    received.extend_from_slice(&buffer[..n]);
                    if let Some(response) = complete_response(&received, false) {
                        return Some(response);
                    }
                }
            }
        }
    })
    .await;
    drop(writing.await);
    match reading {
        Ok(Some(response)) => Ok(response),
        Ok(None) => Err(format!(
            "no readable answer: {:?}",
            String::from_utf8_lossy(&received[..received.len().min(300)])
        )),
        Err(_) => Err(format!("no answer within {HTTP_PATIENCE:?}")),
    }
}
