//! A tiny TCP proxy between clients and the server that can cut every
//! connection through it at once, by a reset (RST, as a dropped network
//! path or a crashed middlebox) or a close (FIN), while it keeps accepting
//! new ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// How a connection is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Both sides get a TCP reset.
    Reset,
    /// Both sides see the connection closed.
    Close,
}

/// The proxy; it stops, cutting everything, when dropped.
pub struct Proxy {
    pub port: u16,
    cuts: broadcast::Sender<Cut>,
    live: Arc<AtomicUsize>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to
    /// `127.0.0.1:{upstream}`.
    pub async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let (cuts, _) = broadcast::channel(16);
        let live = Arc::new(AtomicUsize::new(0));
        let accepting = tokio::spawn({
            let cuts = cuts.clone();
            let live = live.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(pipe(client, upstream, cuts.subscribe(), live.clone()));
                }
            }
        });
        Proxy {
            port,
            cuts,
            live,
            accepting,
        }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Cuts every connection open through the proxy; returns how many.
    pub fn cut(&self, how: Cut) -> usize {
        let live = self.live.load(Ordering::SeqCst);
        let _ = self.cuts.send(how);
        live
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        let _ = self.cuts.send(Cut::Reset);
    }
}

/// Forwards one connection both ways until either side closes or a cut.
async fn pipe(
    mut client: TcpStream,
    upstream: u16,
    mut cuts: broadcast::Receiver<Cut>,
    live: Arc<AtomicUsize>,
) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    live.fetch_add(1, Ordering::SeqCst);
    let cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => None,
        // A closed channel (the proxy is gone) cuts too.
        how = cuts.recv() => Some(how.unwrap_or(Cut::Reset)),
    };
    live.fetch_sub(1, Ordering::SeqCst);
    if cut == Some(Cut::Reset) {
        // SO_LINGER 0: dropping the socket sends RST instead of FIN.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
}
