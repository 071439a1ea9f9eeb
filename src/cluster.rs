//! A real Redis Cluster on loopback: three primaries, each with a replica.
//!
//! ## Behavior
//!
//! * [`RedisCluster::start`] runs six `redis-server --cluster-enabled yes`
//!   processes on free loopback ports (each with its own node file in a
//!   fresh scratch directory, persistence off, a 1 s node timeout so a
//!   failover takes seconds), joins them with `redis-cli --cluster create
//!   … --cluster-replicas 1` (`$REDIS_CLI` or `redis-cli`), and returns once
//!   every node reports `cluster_state:ok`, all agree on which three
//!   primaries serve the 16384 slots, and every replica's link is up. Each
//!   step is bounded (20 s); the cluster is killed when it drops.
//! * [`RedisCluster::shared`] is one such cluster for the whole test binary,
//!   started by its first caller; tests on it keep apart by namespace
//!   ([`RedisCluster::in_fresh_namespace`]). It never drops, but its nodes
//!   die with the test binary (see the keeper module), and its scratch
//!   directory is removed by the next test binary that starts a cluster.
//!   Killing or pausing one of its nodes panics: other tests run on it.
//! * If no cluster can be started, the test says so on stderr and is
//!   skipped; when `CI` is set it fails instead. There is no `REDIS_URL`
//!   stand-in for a cluster.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use cachemacro_runtime::{Cache, CacheBuilder};
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;

use crate::server::{free_ports, fresh_namespace, kill, signal, spawn, unavailable, unique};

const PRIMARIES: usize = 3;
const SLOTS: u16 = 16384;
/// Bounds each step of starting a cluster.
const START_WITHIN: Duration = Duration::from_secs(20);
/// Bounds [`RedisCluster::wait_for_failover`]: detection (the 1 s node
/// timeout, then a majority's vote) usually takes 2 to 3 s.
const FAILOVER_WITHIN: Duration = Duration::from_secs(30);
const REMEDY: &str = "Install redis-server and redis-cli (apt-get install redis-server).";

/// A Redis Cluster of three primaries and three replicas; killed on drop
/// (the last handle on a cluster of a test's own).
pub struct RedisCluster {
    nodes: Arc<Nodes>,
    namespace: String,
}

struct Nodes {
    nodes: Vec<Node>,
    /// The primaries when the cluster was created.
    seeds: Vec<u16>,
    /// Node files and replicas' snapshots.
    dir: PathBuf,
    /// Other tests use it: no killing or pausing.
    shared: bool,
    /// The certificates of a [`RedisCluster::start_tls`] cluster.
    tls: Option<PathBuf>,
}

struct Node {
    port: u16,
    /// The TLS port of a [`RedisCluster::start_tls`] node.
    tls_port: Option<u16>,
    /// `None` once killed.
    child: Mutex<Option<Child>>,
    paused: AtomicBool,
}

impl Node {
    fn is_live(&self) -> bool {
        !self.paused.load(Ordering::SeqCst) && lock(&self.child).is_some()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(child) = lock(&node.child).take() {
                kill(child);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(tls) = &self.tls {
            let _ = std::fs::remove_dir_all(tls);
        }
    }
}

impl RedisCluster {
    /// The test binary's cluster, started by the first caller (about 2 s);
    /// `None` when no cluster can run here (said loudly; a failure under
    /// `CI`). Its namespace is empty: take [`RedisCluster::in_fresh_namespace`].
    pub fn shared() -> Option<&'static RedisCluster> {
        static SHARED: OnceLock<Result<RedisCluster, String>> = OnceLock::new();
        match SHARED.get_or_init(|| Self::create(true, None)) {
            Ok(cluster) => Some(cluster),
            Err(why) => {
                unavailable(why, REMEDY);
                None
            }
        }
    }

    /// A cluster of this test's own, for killing and pausing nodes; `None`
    /// when none can run here (said loudly; a failure under `CI`).
    pub fn start() -> Option<RedisCluster> {
        match Self::create(false, None) {
            Ok(cluster) => Some(cluster),
            Err(why) => {
                unavailable(&why, REMEDY);
                None
            }
        }
    }

    /// A cluster of this test's own whose nodes also take TLS, with a
    /// certificate for `localhost` and `127.0.0.1` from a fresh throwaway
    /// CA ([`RedisCluster::ca_certificate`]); nodes talk to each other over
    /// TLS, and tell TLS clients their TLS ports. The plain ports stay for
    /// the harness's own checks. `None` when none can run here (said
    /// loudly; a failure under `CI`).
    pub fn start_tls() -> Option<RedisCluster> {
        let started = crate::server::make_certificates().and_then(|dir| {
            Self::create(false, Some(dir.clone())).inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&dir);
            })
        });
        match started {
            Ok(cluster) => Some(cluster),
            Err(why) => {
                unavailable(&format!("{why} (needed for the TLS cluster test)"), REMEDY);
                None
            }
        }
    }

    /// `rediss+cluster://127.0.0.1:<tls port>,…` of a TLS cluster.
    pub fn tls_url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .seeds
            .iter()
            .filter_map(|&port| self.node_of(port)?.tls_port)
            .map(addr)
            .collect();
        assert!(!seeds.is_empty(), "not a TLS cluster");
        format!("rediss+cluster://{}", seeds.join(","))
    }

    /// The CA that signed a TLS cluster's certificate.
    pub fn ca_certificate(&self) -> Option<PathBuf> {
        self.nodes.tls.as_ref().map(|dir| dir.join("ca.pem"))
    }

    /// A handle on the same nodes under a namespace no other test uses.
    pub fn in_fresh_namespace(&self) -> RedisCluster {
        RedisCluster {
            nodes: self.nodes.clone(),
            namespace: fresh_namespace(),
        }
    }

    fn create(shared: bool, tls: Option<PathBuf>) -> Result<RedisCluster, String> {
        remove_stale_directories();
        let dir = std::env::temp_dir().join(format!("cachemacro-cluster-{}", unique()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut nodes = Nodes {
            nodes: Vec::new(),
            seeds: Vec::new(),
            dir,
            shared,
            tls,
        };
        // On any error below, dropping `nodes` kills what was started.
        for _ in 0..2 * PRIMARIES {
            let (port, tls_port, child) = start_node(&nodes.dir, nodes.tls.as_deref())?;
            nodes.nodes.push(Node {
                port,
                tls_port,
                child: Mutex::new(Some(child)),
                paused: AtomicBool::new(false),
            });
        }
        let ports: Vec<u16> = nodes.nodes.iter().map(|n| n.port).collect();
        create_with_cli(&ports)?;
        let owners = block_on(wait_settled(&ports, true, START_WITHIN))?;
        nodes.seeds = primaries_of(&owners);
        Ok(RedisCluster {
            nodes: Arc::new(nodes),
            namespace: String::new(),
        })
    }

    /// `redis+cluster://127.0.0.1:<p1>,…`: the primaries the cluster was
    /// created with (less any this test killed), as seeds.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .seeds
            .iter()
            .filter(|&&port| self.node_of(port).is_some_and(|n| lock(&n.child).is_some()))
            .map(|&port| addr(port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// This handle's namespace (empty on a cluster of a test's own).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key as stored in Redis (with this handle's namespace, if any).
    pub fn stored_key(&self, key: &str) -> String {
        if self.namespace.is_empty() {
            key.to_owned()
        } else {
            format!("{}:{key}", self.namespace)
        }
    }

    /// A builder for a cache on this cluster (its URL and this handle's
    /// namespace), for tests that configure the cache themselves.
    pub fn builder(&self) -> CacheBuilder {
        Cache::builder()
            .url(self.url())
            .namespace(self.namespace.clone())
    }

    /// A cache on this cluster with the short timeouts of
    /// [`RedisServer::cache`](crate::RedisServer::cache).
    pub async fn cache(&self) -> Cache {
        self.builder()
            .operation_timeout(Duration::from_millis(200))
            .connect_timeout(Duration::from_millis(500))
            .connect()
            .await
            .expect("connect to the test cluster")
    }

    /// Sets `key` (under this handle's namespace) to raw `value` for `ms`
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

    /// A redis-rs cluster connection (seeded with every running node) that
    /// sends each command to the node serving its key, following
    /// redirections; keyless commands go to any node.
    pub async fn raw(&self) -> ClusterConnection {
        let seeds: Vec<String> = self
            .live_ports()
            .into_iter()
            .map(|port| format!("redis://{}", addr(port)))
            .collect();
        redis::cluster::ClusterClient::builder(seeds)
            .connection_timeout(Duration::from_millis(500))
            .response_timeout(Duration::from_secs(1))
            .overall_response_timeout(Some(Duration::from_secs(5)))
            .build()
            .expect("valid node URLs")
            .get_async_connection()
            .await
            .expect("raw connection to the test cluster")
    }

    /// A plain connection to the one node at `addr` (`host:port`), for
    /// commands about that node (DBSIZE, SCAN, INFO); with timeouts, so a
    /// paused node fails rather than hangs.
    pub async fn node(&self, addr: &str) -> MultiplexedConnection {
        connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connection to cluster node {addr}: {e}"))
    }

    /// The primaries now serving slots, as `host:port`, in slot order (the
    /// first serves slot 0), as a running node sees them.
    pub async fn primaries(&self) -> Vec<String> {
        primaries_of(&self.view().await.owners)
            .into_iter()
            .map(addr)
            .collect()
    }

    /// Each replica with the primary it follows, as `(replica, primary)`
    /// `host:port` pairs, as a running node sees them.
    pub async fn replicas(&self) -> Vec<(String, String)> {
        let view = self.view().await;
        view.entries
            .iter()
            .filter(|e| e.has("slave") && !e.failed())
            .filter_map(|e| {
                let primary = view
                    .entries
                    .iter()
                    .find(|p| Some(&p.id) == e.master.as_ref())?;
                Some((addr(e.port), addr(primary.port)))
            })
            .collect()
    }

    /// For each primary (`host:port`), how many of its keys match the glob
    /// `pattern` under this handle's namespace.
    pub async fn keys_on_each_primary(&self, pattern: &str) -> Vec<(String, usize)> {
        let pattern = self.stored_key(pattern);
        let mut counts = Vec::new();
        for primary in self.primaries().await {
            let mut conn = self.node(&primary).await;
            let (mut cursor, mut count) = (0u64, 0usize);
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("SCAN on {primary}: {e}"));
                count += keys.len();
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            counts.push((primary, count));
        }
        counts
    }

    /// The primary (`host:port`) serving `key` (under this handle's
    /// namespace).
    pub async fn primary_for(&self, key: &str) -> String {
        let view = self.view().await;
        let mut conn = self.node(&addr(view.port)).await;
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(self.stored_key(key))
            .query_async(&mut conn)
            .await
            .expect("CLUSTER KEYSLOT");
        view.owners
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|&(_, _, port)| addr(port))
            .unwrap_or_else(|| panic!("no primary serves slot {slot}:\n{}", view.text))
    }

    /// Kills the node at `addr` (SIGKILL). Not on the shared cluster.
    pub fn kill(&self, addr: &str) {
        let node = self.controlled(addr);
        let child = lock(&node.child)
            .take()
            .unwrap_or_else(|| panic!("{addr} was already killed"));
        kill(child);
    }

    /// SIGSTOP to the node at `addr`: its port accepts connections but it
    /// answers nothing, and the others soon count it as failed. Not on the
    /// shared cluster.
    pub fn pause(&self, addr: &str) {
        let node = self.controlled(addr);
        signal(
            lock(&node.child).as_ref().expect("a running node"),
            libc::SIGSTOP,
        );
        node.paused.store(true, Ordering::SeqCst);
    }

    /// SIGCONT after [`RedisCluster::pause`]. A paused primary that was
    /// failed over meanwhile comes back as a replica.
    pub fn resume(&self, addr: &str) {
        let node = self.controlled(addr);
        signal(
            lock(&node.child).as_ref().expect("a running node"),
            libc::SIGCONT,
        );
        node.paused.store(false, Ordering::SeqCst);
    }

    /// Waits until the running, unpaused nodes all report `cluster_state:ok`
    /// and agree that three of them serve every slot: after a primary was
    /// killed or paused, until its replica has taken over. Panics with the
    /// cluster's view if that takes over 30 s.
    pub async fn wait_for_failover(&self) {
        if let Err(why) = wait_settled(&self.live_ports(), false, FAILOVER_WITHIN).await {
            panic!("the cluster never failed over: {why}");
        }
    }

    fn node_of(&self, port: u16) -> Option<&Node> {
        self.nodes.nodes.iter().find(|n| n.port == port)
    }

    /// The node at `addr`, which this test may kill or pause.
    fn controlled(&self, addr: &str) -> &Node {
        assert!(
            !self.nodes.shared,
            "the shared cluster serves other tests: start one of your own to kill or pause nodes"
        );
        addr.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .and_then(|port| self.node_of(port))
            .unwrap_or_else(|| panic!("{addr} is no node of this cluster"))
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .nodes
            .iter()
            .filter(|n| n.is_live())
            .map(|n| n.port)
            .collect()
    }

    /// The cluster as the first running node that answers sees it.
    async fn view(&self) -> View {
        let mut errors = Vec::new();
        for port in self.live_ports() {
            match view_of(port).await {
                Ok(view) => return view,
                Err(e) => errors.push(e),
            }
        }
        panic!("no cluster node answers: {errors:?}");
    }
}

/// Starts one cluster node in `dir` on fresh ports (a port found free can
/// be taken before redis binds it: a few tries).
fn start_node(
    dir: &std::path::Path,
    tls: Option<&std::path::Path>,
) -> Result<(u16, Option<u16>, Child), String> {
    let mut last = String::new();
    for _ in 0..5 {
        let ports = free_ports(3);
        let (port, bus, tls_port) = (ports[0], ports[1], tls.map(|_| ports[2]));
        let mut extra: Vec<OsString> = Vec::new();
        let mut set = |name: &str, value: OsString| {
            extra.push(format!("--{name}").into());
            extra.push(value);
        };
        set("cluster-enabled", "yes".into());
        set(
            "cluster-config-file",
            dir.join(format!("nodes-{port}.conf")).into(),
        );
        // The bus port defaults to port + 10000, which may be taken or above 65535.
        set("cluster-port", bus.to_string().into());
        set("cluster-node-timeout", "1000".into());
        // A replica may always take over, however long its link was down
        // (a paused primary): failover tests must not depend on timing.
        set("cluster-replica-validity-factor", "0".into());
        // A primary waits 5 s by default for more replicas before a full
        // sync; each has one.
        set("repl-diskless-sync-delay", "0".into());
        // Replicas keep the snapshot of a full sync: in this cluster's directory.
        set("dir", dir.into());
        set("dbfilename", format!("dump-{port}.rdb").into());
        if let (Some(certs), Some(tls_port)) = (tls, tls_port) {
            set("tls-port", tls_port.to_string().into());
            set("tls-cluster", "yes".into());
            set("tls-replication", "yes".into());
            set("tls-auth-clients", "no".into());
            set("tls-cert-file", certs.join("cert.pem").into());
            set("tls-key-file", certs.join("key.pem").into());
            set("tls-ca-cert-file", certs.join("ca.pem").into());
        }
        match spawn(port, None, None, &extra) {
            Ok(child) => return Ok((port, tls_port, child)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// `redis-cli --cluster create` on `ports`, the first three as primaries;
/// bounded, as it waits for the nodes to join.
fn create_with_cli(ports: &[u16]) -> Result<(), String> {
    let binary = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
    let mut command = Command::new(&binary);
    command
        .args(["--cluster", "create"])
        .args(ports.iter().map(|&p| addr(p)))
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child =
        crate::keeper::spawn(command).map_err(|e| format!("could not run `{binary}`: {e}"))?;
    let pid = child.id();
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let output = match outcome.recv_timeout(START_WITHIN) {
        Ok(output) => output.map_err(|e| format!("`{binary}`: {e}"))?,
        Err(_) => {
            // SAFETY: kill(2) takes no pointers; the waiting thread has not
            // reaped the child, as it has not exited.
            unsafe { libc::kill(libc::pid_t::try_from(pid).expect("a pid"), libc::SIGKILL) };
            return Err(format!(
                "`{binary} --cluster create` did not finish within {START_WITHIN:?}"
            ));
        }
    };
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{binary} --cluster create` failed ({}):\n{}{}",
            output.status,
            strip_colours(&String::from_utf8_lossy(&output.stdout)),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// redis-cli colours its report even into a pipe.
fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// Removes the scratch directories of clusters whose test binary has exited
/// (a shared cluster never drops, so never removes its own).
fn remove_stale_directories() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("cachemacro-cluster-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill(2) with signal 0 only asks whether `pid` exists.
        let gone = unsafe { libc::kill(pid, 0) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Runs `future` to completion on a runtime of its own, on a thread of its
/// own: the shared cluster starts inside a test's runtime, which must not
/// be blocked on from within.
fn block_on<F: Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to start the cluster on")
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

async fn connect(addr: &str) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    redis::Client::open(format!("redis://{addr}"))?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Slot ranges and the port of the primary serving each, in slot order.
type Owners = Vec<(u16, u16, u16)>;

fn primaries_of(owners: &Owners) -> Vec<u16> {
    let mut seen = Vec::new();
    for &(_, _, port) in owners {
        if !seen.contains(&port) {
            seen.push(port);
        }
    }
    seen
}

/// One node's view of the cluster.
struct View {
    /// The node asked.
    port: u16,
    /// Its `CLUSTER NODES` reply, for messages.
    text: String,
    entries: Vec<Entry>,
    /// Slots served by primaries it does not count as failed.
    owners: Owners,
}

/// A line of `CLUSTER NODES`: `<id> <ip:port@bus> <flags> <primary id|-> <ping>
/// <pong> <epoch> <link> <slot ranges…>`.
struct Entry {
    id: String,
    /// 0 while the node's address is unknown.
    port: u16,
    flags: Vec<String>,
    master: Option<String>,
    connected: bool,
    slots: Vec<(u16, u16)>,
}

impl Entry {
    fn parse(line: &str) -> Option<Entry> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            return None;
        }
        let host_port = fields[1].split(['@', ',']).next()?;
        let port = host_port.rsplit(':').next()?.parse().unwrap_or(0);
        let slots = fields[8..]
            .iter()
            // `[slot->-id]` and `[slot-<-id]`: a slot in migration.
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => s.parse().ok().map(|n| (n, n)),
            })
            .collect();
        Some(Entry {
            id: fields[0].to_owned(),
            port,
            flags: fields[2].split(',').map(str::to_owned).collect(),
            master: (fields[3] != "-").then(|| fields[3].to_owned()),
            connected: fields[7] == "connected",
            slots,
        })
    }

    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Failed, suspected, or not yet known.
    fn failed(&self) -> bool {
        ["fail", "fail?", "handshake", "noaddr"]
            .iter()
            .any(|f| self.has(f))
    }
}

async fn view_of(port: u16) -> Result<View, String> {
    let mut conn = connect(&addr(port))
        .await
        .map_err(|e| format!("{}: {e}", addr(port)))?;
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .map_err(|e| format!("{}: CLUSTER NODES: {e}", addr(port)))?;
    let entries: Vec<Entry> = text.lines().filter_map(Entry::parse).collect();
    let mut owners: Owners = entries
        .iter()
        .filter(|e| e.has("master") && !e.failed())
        .flat_map(|e| e.slots.iter().map(|&(a, b)| (a, b, e.port)))
        .collect();
    owners.sort_unstable();
    Ok(View {
        port,
        text,
        entries,
        owners,
    })
}

/// Whether the node at `port` is healthy in a cluster whose running nodes
/// are `live`: `cluster_state:ok`, three live primaries serving every slot
/// and, `with_replicas`, a connected replica for each (and, if the node is
/// one, its link up). Returns its view of who serves which slots.
async fn check(port: u16, live: &BTreeSet<u16>, with_replicas: bool) -> Result<Owners, String> {
    let name = addr(port);
    let mut conn = connect(&name).await.map_err(|e| format!("{name}: {e}"))?;
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut conn)
        .await
        .map_err(|e| format!("{name}: CLUSTER INFO: {e}"))?;
    if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
        return Err(format!("{name} does not report cluster_state:ok"));
    }
    let view = view_of(port).await?;
    let mut next = 0u32;
    for &(start, end, owner) in &view.owners {
        if u32::from(start) != next {
            return Err(format!("{name} sees no live primary for slot {next}"));
        }
        if !live.contains(&owner) {
            return Err(format!(
                "{name} sees slot {start} served by stopped {owner}"
            ));
        }
        next = u32::from(end) + 1;
    }
    if next != u32::from(SLOTS) {
        return Err(format!("{name} sees no live primary for slot {next}"));
    }
    let primaries = primaries_of(&view.owners);
    if primaries.len() != PRIMARIES {
        return Err(format!("{name} sees primaries {primaries:?}"));
    }
    if with_replicas {
        let following = view
            .entries
            .iter()
            .filter(|e| e.has("slave") && e.connected && !e.failed())
            .filter_map(|e| {
                let id = e.master.as_ref()?;
                view.entries
                    .iter()
                    .find(|p| &p.id == id && primaries.contains(&p.port))
            })
            .count();
        if following != PRIMARIES {
            return Err(format!(
                "{name} sees {following} replicas following a primary"
            ));
        }
        if view
            .entries
            .iter()
            .any(|e| e.has("myself") && e.has("slave"))
        {
            let replication: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut conn)
                .await
                .map_err(|e| format!("{name}: INFO: {e}"))?;
            if !replication.contains("master_link_status:up") {
                return Err(format!("{name} has no link to its primary yet"));
            }
        }
    }
    Ok(view.owners)
}

/// Polls until every node in `ports` passes [`check`] with one view of who
/// serves which slots, for up to `within`; on timeout, says what was last
/// wrong and how the first node saw the cluster.
async fn wait_settled(
    ports: &[u16],
    with_replicas: bool,
    within: Duration,
) -> Result<Owners, String> {
    let live: BTreeSet<u16> = ports.iter().copied().collect();
    let deadline = Instant::now() + within;
    let mut last;
    loop {
        let mut agreed: Option<Owners> = None;
        last = String::new();
        for &port in ports {
            match check(port, &live, with_replicas).await {
                Ok(owners) if agreed.as_ref().is_none_or(|a| *a == owners) => {
                    agreed = Some(owners);
                }
                Ok(_) => {
                    last = format!("{} disagrees with the others on slots", addr(port));
                    break;
                }
                Err(why) => {
                    last = why;
                    break;
                }
            }
        }
        if last.is_empty() {
            return agreed.ok_or_else(|| "no node to wait for".to_owned());
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = match ports.first() {
        Some(&port) => match view_of(port).await {
            Ok(view) => view.text,
            Err(e) => e,
        },
        None => String::new(),
    };
    Err(format!(
        "not settled within {within:?}: {last}\nCLUSTER NODES:\n{seen}"
    ))
}
