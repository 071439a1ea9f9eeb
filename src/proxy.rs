//! A loopback TCP proxy between a client (a cache, redis-rs) and a
//! redis-server, for fault injection: slow, stalled or cut connections that
//! a stopped or paused server cannot imitate.
//!
//! ## Behavior
//!
//! * [`Proxy::start`] listens on `127.0.0.1:<free port>` and relays every
//!   accepted connection to a new connection to `upstream`. It runs on a
//!   thread of its own with its own current-thread runtime, so it works from
//!   any test (a `#[tokio::test]`, a paused clock, a blocked runtime) and
//!   keeps relaying while the test's runtime is busy.
//! * [`Proxy::set_latency`] delays every chunk read, in both directions, by
//!   that much before it is written on (a round trip pays it twice). Chunks
//!   of one direction stay in order, so a chunk that arrives during a delay
//!   waits for it too.
//! * [`Proxy::stall`] stops forwarding on existing and new connections: they
//!   stay open, bytes read are held, and TCP backpressure holds the rest.
//!   [`Proxy::unstall`] forwards the held bytes and carries on.
//! * [`Proxy::cut`] closes every connection (both sides) and closes new ones
//!   as soon as they are accepted, until [`Proxy::restore`], which also ends
//!   a stall; the latency stays as set.
//! * A connection whose either side ends (EOF or error) is closed on both
//!   sides: Redis clients do not half-close, so nothing is lost.
//! * Dropping the proxy closes the listener and every connection, waiting at
//!   most [`DROP_WAIT`] for its thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long a relayed connection may take to reach the upstream server
/// before it is closed: a dead upstream must not hold a connection forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a drop waits for the proxy's thread. Shutting down takes
/// milliseconds; the bound only guarantees a drop can never hang a test.
const DROP_WAIT: Duration = Duration::from_secs(2);

/// What the test asked for; every task watches it, so a change reaches
/// existing connections at once.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    latency: Duration,
    stalled: bool,
    cut: bool,
    shutdown: bool,
}

/// A fault-injecting TCP proxy in front of one server; stops on drop.
pub struct Proxy {
    addr: SocketAddr,
    faults: watch::Sender<Faults>,
    open: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
    /// Signalled when the thread has shut its runtime down.
    done: mpsc::Receiver<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free loopback port. Synchronous, and
    /// independent of the caller's runtime (if any).
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port for the proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("a bound address");
        let (faults, watch) = watch::channel(Faults::default());
        let open = Arc::new(AtomicUsize::new(0));
        let (done_tx, done) = mpsc::channel();
        let counter = open.clone();
        let thread = std::thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the proxy");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("a tokio listener");
                    accept(listener, upstream, watch, counter).await;
                });
                // Dropping the runtime cancels every relay task, closing
                // their sockets.
                drop(rt);
                let _ = done_tx.send(());
            })
            .expect("a thread for the proxy");
        Proxy {
            addr,
            faults,
            open,
            thread: Some(thread),
            done,
        }
    }

    /// The address clients connect to instead of the server's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://127.0.0.1:<port>`, for a client that should go through the
    /// proxy.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Delays every chunk, in both directions, by `latency` (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        self.faults.send_modify(|f| f.latency = latency);
    }

    /// Stops forwarding bytes, keeping connections open: a server that hangs.
    pub fn stall(&self) {
        self.faults.send_modify(|f| f.stalled = true);
    }

    /// Resumes forwarding, held bytes first.
    pub fn unstall(&self) {
        self.faults.send_modify(|f| f.stalled = false);
    }

    /// Closes every connection and refuses new ones (accepts, then closes):
    /// a network partition, or a server that went away.
    pub fn cut(&self) {
        self.faults.send_modify(|f| f.cut = true);
    }

    /// Ends a cut and a stall; the latency stays as set.
    pub fn restore(&self) {
        self.faults.send_modify(|f| {
            f.cut = false;
            f.stalled = false;
        });
    }

    /// Connections being relayed right now.
    pub fn connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.faults.send_modify(|f| f.shutdown = true);
        // Join only a thread known to have finished: a drop never hangs.
        if self.done.recv_timeout(DROP_WAIT).is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

/// Counts a relayed connection while it lives (also when its task is
/// cancelled by the runtime's shutdown).
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(count: &Arc<AtomicUsize>) -> Open {
        count.fetch_add(1, Ordering::SeqCst);
        Open(count.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts until shutdown, relaying each connection on a task of its own.
async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    mut faults: watch::Receiver<Faults>,
    open: Arc<AtomicUsize>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = faults.wait_for(|f| f.shutdown) => return,
        };
        let client = match accepted {
            Ok((client, _)) => client,
            Err(_) => {
                // E.g. out of file descriptors: don't spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if faults.borrow().cut {
            // Accept-then-close: the client sees its connection reset.
            drop(client);
            continue;
        }
        let open = Open::new(&open);
        tokio::spawn(relay(client, upstream, faults.clone(), open));
    }
}

/// Relays one connection until either side ends, a cut or shutdown.
async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    mut faults: watch::Receiver<Faults>,
    _open: Open,
) {
    let relayed = forward(client, upstream, faults.clone());
    tokio::select! {
        _ = relayed => {}
        _ = faults.wait_for(|f| f.cut || f.shutdown) => {}
    }
    // The sockets drop here, closing both sides.
}

async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    faults: watch::Receiver<Faults>,
) -> std::io::Result<()> {
    let mut server = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    // Small Redis commands must not wait for Nagle on top of the latency.
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    tokio::select! {
        r = pump(client_read, server_write, faults.clone()) => r,
        r = pump(server_read, client_write, faults) => r,
    }
}

/// Copies one direction chunk by chunk, applying latency and stalls.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut faults: watch::Receiver<Faults>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let latency = faults.borrow().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        // Checked after the delay, so a stall that began during it holds
        // this chunk too. A closed channel means the proxy is gone.
        if faults.wait_for(|f| !f.stalled).await.is_err() {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
    }
}
