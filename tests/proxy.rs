//! The fault-injecting proxy (`cachemacro_tests::Proxy`) in front of a
//! redis-server, driven by a plain redis-rs client.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cachemacro_tests::{Proxy, RedisServer, eventually};
use redis::aio::MultiplexedConnection;

/// Short, so a stalled PING fails fast; the latency step uses its own.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(300);

async fn connect(
    url: &str,
    response_timeout: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(response_timeout));
    redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

async fn ping(con: &mut MultiplexedConnection) -> redis::RedisResult<String> {
    redis::cmd("PING").query_async(con).await
}

/// A new connection through the proxy answers PING.
async fn ping_new(url: &str) -> redis::RedisResult<String> {
    ping(&mut connect(url, RESPONSE_TIMEOUT).await?).await
}

#[tokio::test]
async fn proxy_injects_latency_stalls_and_cuts() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let upstream: SocketAddr = server
        .url()
        .strip_prefix("redis://")
        .expect("a redis:// url")
        .trim_end_matches('/')
        .parse()
        .expect("a loopback address");
    let proxy = Proxy::start(upstream);
    assert_eq!(proxy.url(), format!("redis://{}", proxy.addr()));

    let mut con = connect(&proxy.url(), RESPONSE_TIMEOUT).await.unwrap();
    assert_eq!(ping(&mut con).await.unwrap(), "PONG");
    assert!(proxy.connections() >= 1);

    // Latency applies in both directions: a round trip pays it twice. A
    // connection that waits long enough for that.
    let mut patient = connect(&proxy.url(), Duration::from_secs(3)).await.unwrap();
    proxy.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(ping(&mut patient).await.unwrap(), "PONG");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "PING took {took:?}");
    proxy.set_latency(Duration::ZERO);
    drop(patient);

    proxy.stall();
    assert!(ping(&mut con).await.is_err(), "a stalled PING times out");
    proxy.unstall();
    assert_eq!(ping_new(&proxy.url()).await.unwrap(), "PONG");

    proxy.cut();
    assert!(ping(&mut con).await.is_err(), "a cut connection fails");
    eventually("every connection closed", async || proxy.connections() == 0).await;
    assert!(
        ping_new(&proxy.url()).await.is_err(),
        "new connections are refused"
    );

    proxy.restore();
    assert_eq!(ping_new(&proxy.url()).await.unwrap(), "PONG");
}
