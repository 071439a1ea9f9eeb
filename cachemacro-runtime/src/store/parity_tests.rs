//! The protocol on both stores: one trace of operations, driven through the
//! memory store and a real redis-server, must give the same results (and
//! the ones the rules say).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::memory::MemoryStore;
use super::protocol::{self, Acquire, Claim, Expect, Meta, Seen, Token};
use super::redis::RedisStore;
use super::{Found, Store};
use crate::codec::Bincode;

/// A redis-server of this test's own on a free loopback port.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start() -> Option<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("redis-server cannot run under CI: {e}")
        }
        Err(e) => {
            eprintln!("skipping: redis-server cannot run here ({e})");
            return None;
        }
    };
    let server = Server { child, port };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("redis-server did not start on port {port}");
}

/// What one step of the trace gave, comparable across stores.
#[derive(Debug, PartialEq)]
enum Step {
    Read(&'static str, Vec<Option<[u8; 8]>>),
    Acquire(Acquire),
    Bool(bool),
    Count(u64),
    Int(i64),
}

fn seen(found: &Found) -> &'static str {
    match found {
        Seen::Nothing => "nothing",
        Seen::Lease => "lease",
        Seen::Unreadable => "unreadable",
        Seen::Entry { .. } => "entry",
    }
}

async fn trace(store: &dyn Store) -> Vec<Step> {
    let key = "k:1";
    let tags = vec!["t:a".to_string()];
    let ttl = Duration::from_secs(60);
    let (t1, t2, t3) = (Token([1; 16]), Token([2; 16]), Token([3; 16]));
    let mut out = Vec::new();
    let (found, versions) = store.read(key, &tags, 0.0).await.unwrap();
    out.push(Step::Read(
        seen(&found),
        versions.iter().map(|v| v.map(|_| [0; 8])).collect(),
    ));
    // A miss takes the lease; a second caller finds it busy.
    let (a, created) = store
        .acquire(key, Expect::Nothing, t1, ttl, &tags, ttl)
        .await
        .unwrap();
    out.push(Step::Acquire(a));
    let (b, again) = store
        .acquire(key, Expect::Nothing, t2, ttl, &tags, ttl)
        .await
        .unwrap();
    out.push(Step::Acquire(b));
    out.push(Step::Bool(created == again));
    // The lease holder stores; a claim by another token is refused.
    let entry = |version| {
        Arc::new(
            protocol::encode::<Bincode, _>(&7u32, &[(tags[0].clone(), version)], Meta::default())
                .unwrap(),
        )
    };
    let first = entry(created[0]);
    out.push(Step::Bool(
        store
            .store(key, Claim::Lease(t2), first.clone(), None, &tags, ttl)
            .await
            .unwrap(),
    ));
    out.push(Step::Bool(
        store
            .store(key, Claim::Lease(t1), first.clone(), None, &tags, ttl)
            .await
            .unwrap(),
    ));
    let (found, versions) = store.read(key, &tags, 0.0).await.unwrap();
    let id = found.stored().map(|s| s.header.id).unwrap();
    out.push(Step::Read(
        seen(&found),
        versions.iter().map(|v| v.map(|_| [0; 8])).collect(),
    ));
    out.push(Step::Bool(
        found.state(&tags, &versions, 0.0) == protocol::State::Fresh { due: false },
    ));
    // A read that saw nothing must not lease over the value stored since.
    let (c, _) = store
        .acquire(key, Expect::Nothing, t3, ttl, &tags, ttl)
        .await
        .unwrap();
    out.push(Step::Acquire(c));
    // The refresh lock: one holder; freed by its release; taken again.
    out.push(Step::Bool(store.lock(key, id, t2, ttl).await.unwrap()));
    out.push(Step::Bool(store.lock(key, id, t3, ttl).await.unwrap()));
    store.release(key, t2).await.unwrap();
    out.push(Step::Bool(store.lock(key, id, t3, ttl).await.unwrap()));
    out.push(Step::Bool(store.lock(key, [9; 8], t2, ttl).await.unwrap()));
    // A refresh stores over the entry it read, once.
    let second = entry(created[0]);
    out.push(Step::Bool(
        store
            .store(key, Claim::Entry(id), second.clone(), None, &tags, ttl)
            .await
            .unwrap(),
    ));
    out.push(Step::Bool(
        store
            .store(key, Claim::Entry(id), second, None, &tags, ttl)
            .await
            .unwrap(),
    ));
    // Invalidating the tag makes the entry stale; a lease replaces it.
    out.push(Step::Count(store.delete(&tags).await.unwrap()));
    let (found, versions) = store.read(key, &tags, 0.0).await.unwrap();
    out.push(Step::Bool(
        found.state(&tags, &versions, 0.0) == protocol::State::Stale,
    ));
    let stale_id = found.stored().map(|s| s.header.id).unwrap();
    let (d, renewed) = store
        .acquire(key, Expect::Entry(stale_id), t1, ttl, &tags, ttl)
        .await
        .unwrap();
    out.push(Step::Acquire(d));
    out.push(Step::Bool(renewed != created));
    // Giving the lease back empties the key.
    store.release(key, t1).await.unwrap();
    let (found, _) = store.read(key, &[], 0.0).await.unwrap();
    out.push(Step::Read(seen(&found), Vec::new()));
    // Unreadable bytes are replaced by a lease only with `Anything`.
    store
        .set_many(vec![(key.to_string(), b"junk".to_vec())], ttl)
        .await
        .unwrap();
    let (found, _) = store.read(key, &[], 0.0).await.unwrap();
    out.push(Step::Read(seen(&found), Vec::new()));
    let (e, _) = store
        .acquire(key, Expect::Anything, t2, ttl, &[], ttl)
        .await
        .unwrap();
    out.push(Step::Acquire(e));
    // Bytes that only start like a lease are unreadable too, and replaced.
    store
        .set_many(vec![(key.to_string(), vec![0xCA, 0x1E, 1, 2, 3])], ttl)
        .await
        .unwrap();
    let (found, _) = store.read(key, &[], 0.0).await.unwrap();
    out.push(Step::Read(seen(&found), Vec::new()));
    let (f, _) = store
        .acquire(key, Expect::Anything, t3, ttl, &[], ttl)
        .await
        .unwrap();
    out.push(Step::Acquire(f));
    // The manual operations.
    out.push(Step::Bool(
        store
            .set_if_absent("m:1", b"x".to_vec(), ttl)
            .await
            .unwrap(),
    ));
    out.push(Step::Bool(
        store
            .set_if_absent("m:1", b"y".to_vec(), ttl)
            .await
            .unwrap(),
    ));
    out.push(Step::Int(store.incr("n", 5, Some(ttl)).await.unwrap()));
    out.push(Step::Int(store.incr("n", -2, None).await.unwrap()));
    out.push(Step::Count(store.delete_prefix("m:").await.unwrap()));
    out.push(Step::Count(
        store.delete(&[key.to_string(), "n".into()]).await.unwrap(),
    ));
    out
}

#[tokio::test]
async fn memory_and_redis_follow_one_protocol() {
    let memory = trace(&MemoryStore::new(1 << 20)).await;
    let expected = vec![
        Step::Read("nothing", vec![None]),
        Step::Acquire(Acquire::Leased),
        Step::Acquire(Acquire::Busy),
        Step::Bool(true),
        Step::Bool(false),
        Step::Bool(true),
        Step::Read("entry", vec![Some([0; 8])]),
        Step::Bool(true),
        Step::Acquire(Acquire::Changed),
        Step::Bool(true),
        Step::Bool(false),
        Step::Bool(true),
        Step::Bool(false),
        Step::Bool(true),
        Step::Bool(false),
        Step::Count(1),
        Step::Bool(true),
        Step::Acquire(Acquire::Leased),
        Step::Bool(true),
        Step::Read("nothing", Vec::new()),
        Step::Read("unreadable", Vec::new()),
        Step::Acquire(Acquire::Leased),
        Step::Read("unreadable", Vec::new()),
        Step::Acquire(Acquire::Leased),
        Step::Bool(true),
        Step::Bool(false),
        Step::Int(5),
        Step::Int(3),
        Step::Count(1),
        Step::Count(2),
    ];
    assert_eq!(memory, expected, "memory follows the rules");
    let Some(server) = start().await else { return };
    let url = format!("redis://127.0.0.1:{}", server.port);
    let redis = RedisStore::lazy(&url, Duration::from_secs(1), Duration::from_secs(1)).unwrap();
    assert_eq!(trace(&redis).await, memory, "Redis gives what memory gives");
}

/// The race the memory backend used to lose: a caller reads a miss, the
/// lease holder stores its value, and only then does the caller try to take
/// a lease. It must find the value (and read again), not cover it with a
/// new lease (which cost an extra load).
#[tokio::test]
async fn a_lease_never_covers_a_value_stored_since_the_read() {
    let store = MemoryStore::new(1 << 20);
    let ttl = Duration::from_secs(60);
    let (holder, late) = (Token([1; 16]), Token([2; 16]));
    let (taken, _) = store
        .acquire("k", Expect::Nothing, holder, ttl, &[], ttl)
        .await
        .unwrap();
    assert_eq!(taken, Acquire::Leased);
    // The late caller's read: another caller's lease.
    let (found, _) = store.read("k", &[], 0.0).await.unwrap();
    assert!(matches!(found, Seen::Lease));
    // The holder stores its value.
    let bytes = Arc::new(protocol::encode::<Bincode, _>(&1u8, &[], Meta::default()).unwrap());
    assert!(
        store
            .store("k", Claim::Lease(holder), bytes, None, &[], ttl)
            .await
            .unwrap()
    );
    // The late caller now tries to lease what it saw (nothing usable).
    let (late_take, _) = store
        .acquire("k", Expect::Nothing, late, ttl, &[], ttl)
        .await
        .unwrap();
    assert_eq!(late_take, Acquire::Changed);
    let (found, _) = store.read("k", &[], 0.0).await.unwrap();
    assert!(
        matches!(found, Seen::Entry { .. }),
        "the stored value is still there"
    );
}
