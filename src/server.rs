//! A redis-server of the test's own on a free loopback port, which a test
//! can stop, pause and restart.
//!
//! ## Behavior
//!
//! * [`RedisServer::start`] runs `redis-server` (or `$REDIS_SERVER`) on
//!   `127.0.0.1:<free port>` with persistence off, and returns once the
//!   server has logged that it accepts connections. The server is killed
//!   when the `RedisServer` drops, and with the test binary in any case
//!   (see the keeper module).
//! * If no server can be started and `REDIS_URL` is set, that server is used
//!   and every test gets a namespace of its own (stop/restart tests need a
//!   server of their own and are then not possible).
//! * If neither works, the test says so on stderr (not captured by the test
//!   harness) and is skipped; when `CI` is set it fails instead.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cachemacro_runtime::{Cache, CacheBuilder};

/// A redis-server for one test; killed on drop.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// Certificate directory of a TLS-only server.
    tls: Option<PathBuf>,
    /// Data directory of a server that keeps its data across restarts.
    data: Option<PathBuf>,
    /// `REDIS_URL` when no server of our own could be started.
    external: Option<String>,
    /// The password the server requires (`--requirepass`), if any.
    password: Option<String>,
    namespace: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// `<pid>-<n>`, unique in this machine's running test binaries: for
/// namespaces and scratch directories.
pub(crate) fn unique() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh namespace for a test on a server it shares.
pub(crate) fn fresh_namespace() -> String {
    format!("cmtest-{}", unique())
}

/// Says loudly that Redis tests cannot run (`why`, then `remedy`); fails
/// under CI.
pub(crate) fn unavailable(why: &str, remedy: &str) {
    let msg = format!("\n*** cachemacro: Redis tests cannot run: {why}.\n*** {remedy}\n");
    if std::env::var_os("CI").is_some() {
        panic!("{msg}*** CI is set, so this is a failure, not a skip.");
    }
    // Straight to the stream: the test harness captures `eprintln!`.
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

const INSTALL: &str = "Install redis-server (apt-get install redis-server) or set REDIS_URL.";

/// `n` distinct loopback ports free right now (all held at once while
/// chosen, so none repeats).
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("a bound address").port())
        .collect()
}

/// Runs openssl, failing with what it printed.
fn openssl(args: &[&str], dir: &Path) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("could not run openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {} failed: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A throwaway CA (`ca.pem`) and a certificate it signed for `localhost`
/// and `127.0.0.1` (`cert.pem`, `key.pem`), in a fresh directory.
pub(crate) fn make_certificates() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("cachemacro-tls-{}", unique()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
               keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n";
    std::fs::write(dir.join("server.ext"), ext).map_err(|e| e.to_string())?;
    let days = ["-days", "1"];
    openssl(
        &[
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=cachemacro test CA",
            ][..],
            &days,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
        &dir,
    )?;
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ],
        &dir,
    )?;
    openssl(
        &[
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
            ][..],
            &days,
            &["-extfile", "server.ext", "-out", "cert.pem"],
        ]
        .concat(),
        &dir,
    )?;
    Ok(dir)
}

/// Runs redis-server on `port`: over TLS with the certificates in `tls`,
/// and, with a `data` directory, keeping every write in an append-only file
/// there (`fsync` on each write) so it survives a kill and restart. `extra`
/// arguments come last, so they override the defaults (a cluster node's
/// `--dir`: redis takes the last value of a setting).
pub(crate) fn spawn(
    port: u16,
    tls: Option<&Path>,
    data: Option<&Path>,
    extra: &[OsString],
) -> Result<Child, String> {
    let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let mut command = Command::new(&binary);
    match tls {
        None => command.args(["--port", &port.to_string()]),
        Some(dir) => command
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--tls-auth-clients", "no"])
            .arg("--tls-cert-file")
            .arg(dir.join("cert.pem"))
            .arg("--tls-key-file")
            .arg(dir.join("key.pem"))
            .arg("--tls-ca-cert-file")
            .arg(dir.join("ca.pem")),
    };
    match data {
        Some(dir) => command
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir),
        None => command
            .args(["--appendonly", "no", "--dir"])
            .arg(std::env::temp_dir()),
    };
    command
        .args(["--bind", "127.0.0.1", "--save", "", "--loglevel", "notice"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child =
        crate::keeper::spawn(command).map_err(|e| format!("could not run `{binary}`: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    // Wait for the server's own word that it is ready: no sleeping, no polling.
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("Ready to accept connections") => break,
            Some(Ok(_)) => {}
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{binary}` exited before accepting connections on port {port}"
                ));
            }
        }
    }
    // Keep draining its log so the pipe never fills up.
    std::thread::spawn(move || lines.for_each(drop));
    Ok(child)
}

impl RedisServer {
    /// A server of this test's own, or `None` (after saying so loudly)
    /// when none can be had. Panics under `CI` instead of returning `None`.
    pub fn start() -> Option<RedisServer> {
        match Self::start_owned() {
            Ok(server) => Some(server),
            Err(why) => match std::env::var("REDIS_URL") {
                Ok(url) => Some(RedisServer {
                    port: 0,
                    child: None,
                    tls: None,
                    data: None,
                    external: Some(url),
                    password: None,
                    namespace: fresh_namespace(),
                }),
                Err(_) => {
                    unavailable(&why, INSTALL);
                    None
                }
            },
        }
    }

    /// A server this test controls (for stop/pause/restart), or `None`
    /// (after saying so loudly; a failure under `CI`).
    pub fn start_controllable() -> Option<RedisServer> {
        match Self::start_owned() {
            Ok(server) => Some(server),
            Err(why) => {
                unavailable(
                    &format!(
                        "{why} (this test stops and restarts its own server, so REDIS_URL cannot stand in)"
                    ),
                    INSTALL,
                );
                None
            }
        }
    }

    /// A TLS-only server with a certificate for `localhost` from a fresh
    /// throwaway CA, or `None` (said loudly; a failure under `CI`).
    pub fn start_tls() -> Option<RedisServer> {
        match make_certificates().and_then(|dir| Self::start_with(Some(dir), None)) {
            Ok(server) => Some(server),
            Err(why) => {
                unavailable(&format!("{why} (needed for the TLS test)"), INSTALL);
                None
            }
        }
    }

    /// The CA that signed a TLS server's certificate.
    pub fn ca_certificate(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|dir| dir.join("ca.pem"))
    }

    /// A server of this test's own that keeps its data across
    /// [`RedisServer::stop`] and [`RedisServer::restart`] (append-only file,
    /// `fsync` on every write), or `None` (said loudly; a failure under `CI`).
    pub fn start_persistent() -> Option<RedisServer> {
        let dir = std::env::temp_dir().join(format!("cachemacro-data-{}", unique()));
        let started = std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| Self::start_with(None, Some(dir)));
        match started {
            Ok(server) => Some(server),
            Err(why) => {
                unavailable(
                    &format!("{why} (this test restarts a server that keeps its data)"),
                    INSTALL,
                );
                None
            }
        }
    }

    /// A server of this test's own that requires `password` (`requirepass`),
    /// or `None` (said loudly; a failure under `CI`). Its [`RedisServer::url`]
    /// carries the password.
    pub fn start_with_password(password: &str) -> Option<RedisServer> {
        match Self::start_configured(None, None, Some(password.to_owned())) {
            Ok(server) => Some(server),
            Err(why) => {
                unavailable(
                    &format!("{why} (this test needs a server that requires a password)"),
                    INSTALL,
                );
                None
            }
        }
    }

    fn start_owned() -> Result<RedisServer, String> {
        Self::start_with(None, None)
    }

    fn start_with(tls: Option<PathBuf>, data: Option<PathBuf>) -> Result<RedisServer, String> {
        Self::start_configured(tls, data, None)
    }

    fn start_configured(
        tls: Option<PathBuf>,
        data: Option<PathBuf>,
        password: Option<String>,
    ) -> Result<RedisServer, String> {
        let mut last = String::new();
        let extra = password_args(password.as_deref());
        // A port found free can be taken before redis binds it: try a few.
        for _ in 0..5 {
            let port = free_ports(1)[0];
            match spawn(port, tls.as_deref(), data.as_deref(), &extra) {
                Ok(child) => {
                    let namespace = String::new();
                    return Ok(RedisServer {
                        port,
                        child: Some(child),
                        tls,
                        data,
                        external: None,
                        password,
                        namespace,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://localhost:<port>` for TLS;
    /// with the password (`redis://:<password>@…`) of a server that needs one.
    pub fn url(&self) -> String {
        let auth = self
            .password
            .as_ref()
            .map(|p| format!(":{p}@"))
            .unwrap_or_default();
        match (&self.external, &self.tls) {
            (Some(url), _) => url.clone(),
            (None, Some(_)) => format!("rediss://{auth}localhost:{}", self.port),
            (None, None) => format!("redis://{auth}127.0.0.1:{}", self.port),
        }
    }

    /// The server's loopback address (not that of a `REDIS_URL` server).
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The key as stored in Redis (with this test's namespace, if any).
    pub fn stored_key(&self, key: &str) -> String {
        if self.namespace.is_empty() {
            key.to_owned()
        } else {
            format!("{}:{key}", self.namespace)
        }
    }

    /// A builder for a cache on this server (its URL and this test's
    /// namespace), for tests that configure the cache themselves.
    pub fn builder(&self) -> CacheBuilder {
        Cache::builder()
            .url(self.url())
            .namespace(self.namespace.clone())
    }

    /// Sets `key` (under this test's namespace) to raw `value` for `ms`
    /// milliseconds: another process's lease or lock, or hostile bytes.
    pub async fn plant(&self, key: &str, value: &[u8], ms: u64) {
        let mut raw = self.raw().await;
        let _: () = redis::cmd("SET")
            .arg(self.stored_key(key))
            .arg(value)
            .arg("PX")
            .arg(ms)
            .query_async(&mut raw)
            .await
            .expect("SET");
    }

    /// A cache on this server with a short operation timeout, so outage
    /// tests finish quickly.
    pub async fn cache(&self) -> Cache {
        self.builder()
            .operation_timeout(Duration::from_millis(200))
            .connect_timeout(Duration::from_millis(500))
            .connect()
            .await
            .expect("connect to the test redis-server")
    }

    /// A plain redis-rs connection, for planting and inspecting raw bytes.
    pub async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("valid url")
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection to the test redis-server")
    }

    /// Kills the server (SIGKILL): connections drop, the port refuses.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            kill(child);
        }
    }

    /// Starts the server again on the same port: empty, or with its data
    /// for a [`RedisServer::start_persistent`] one.
    pub fn restart(&mut self) {
        self.stop();
        let extra = password_args(self.password.as_deref());
        self.child = Some(
            spawn(self.port, self.tls.as_deref(), self.data.as_deref(), &extra)
                .expect("restart redis-server on its port"),
        );
    }

    /// SIGSTOP: the port still accepts connections but nothing answers, as
    /// with an overloaded or partitioned server.
    pub fn pause(&self) {
        signal(
            self.child.as_ref().expect("a server of our own"),
            libc::SIGSTOP,
        );
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        signal(
            self.child.as_ref().expect("a server of our own"),
            libc::SIGCONT,
        );
    }
}

/// The arguments that make a server require `password`.
fn password_args(password: Option<&str>) -> Vec<OsString> {
    password
        .map(|p| vec!["--requirepass".into(), p.into()])
        .unwrap_or_default()
}

/// Sends `sig` to a server process of ours; panics if it cannot.
pub(crate) fn signal(child: &Child, sig: libc::c_int) {
    if let Err(e) = send(child, sig) {
        panic!("signal {sig} to redis-server {}: {e}", child.id());
    }
}

fn send(child: &Child, sig: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    // SAFETY: kill(2) takes no pointers. The child is reaped only by
    // `kill` below, which consumes it, so the pid still names our server.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Kills and reaps a server process, paused or not.
pub(crate) fn kill(mut child: Child) {
    // As the harness always has: continue a paused server before the kill.
    let _ = send(&child, libc::SIGCONT);
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            kill(child);
        }
        for dir in [&self.tls, &self.data].into_iter().flatten() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
