//! The subscription to the announcement channel, and its heartbeat.
//!
//! ## Behavior
//!
//! * Subscribes on the first node that answers (a cluster's seeds in turn),
//!   retrying every 50 ms, backing off to 250 ms.
//! * Pings on the subscription every heartbeat; a ping unanswered within
//!   half the operation timeout, or the connection closing, makes the
//!   instance deaf (`Tier::deaf`) and starts over. An answered ping
//!   confirms, once the messages received before its reply are applied,
//!   that the local tier is still coherent (`Tier::coherent`).
//! * Ends when the cache is dropped; if its runtime shuts down first, the
//!   instance is marked deaf, and the next call restarts it.

use std::sync::Weak;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use futures_util::StreamExt as _;

use super::{Tier, alive};

/// Marks the instance deaf however the listener ends.
struct Stopped(Weak<Tier>);

impl Drop for Stopped {
    fn drop(&mut self) {
        alive(&self.0, |t| {
            if !t.unsupported() {
                t.deaf("the announcement listener stopped".into());
                t.running.store(false, SeqCst);
            }
        });
    }
}

pub(super) async fn listen(tier: Weak<Tier>, clients: Vec<redis::Client>) {
    if clients.is_empty() {
        // Nothing to listen on: stay deaf, and do not restart.
        alive(&tier, |t| t.refused("no node to subscribe on".into()));
        return;
    }
    let _stopped = Stopped(tier.clone());
    let mut attempt = 0usize;
    let mut delay = Duration::from_millis(50);
    loop {
        let Some((channel, connect_timeout, heartbeat, deaf_after)) = alive(&tier, |t| {
            (
                t.channel.clone(),
                t.connect_timeout,
                t.heartbeat,
                t.deaf_after,
            )
        }) else {
            return;
        };
        let client = &clients[attempt % clients.len()];
        let node = client.get_connection_info().addr().to_string();
        let subscribed = tokio::time::timeout(connect_timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            redis::RedisResult::Ok(pubsub)
        })
        .await;
        let pubsub = match subscribed {
            Ok(Ok(pubsub)) => pubsub,
            failed => {
                let why = match failed {
                    Ok(Err(e)) if super::pubsub_refused(&e.to_string()) => {
                        alive(&tier, |t| t.refused(e.to_string()));
                        return;
                    }
                    Ok(Err(e)) => format!("cannot subscribe on {node}: {e}"),
                    _ => format!("cannot subscribe on {node} within {connect_timeout:?}"),
                };
                alive(&tier, |t| t.deaf(why));
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(250));
                continue;
            }
        };
        delay = Duration::from_millis(50);
        let (sink, mut stream) = pubsub.split();
        let (confirm, mut confirmed) = tokio::sync::mpsc::unbounded_channel();
        let beat = tokio::spawn(beat(tier.clone(), sink, heartbeat, deaf_after, confirm));
        tokio::pin!(beat);
        alive(&tier, |t| t.heard_on(node.clone()));
        let why = loop {
            // Biased: messages that arrived before a heartbeat's reply are
            // applied before the heartbeat vouches for them.
            tokio::select! {
                biased;
                message = stream.next() => match message {
                    Some(message) => {
                        if alive(&tier, |t| t.hear(message.get_payload_bytes())).is_none() {
                            return;
                        }
                    }
                    None => break format!("the subscription on {node} closed"),
                },
                Some(sent) = confirmed.recv() => {
                    if alive(&tier, |t| t.confirm(sent)).is_none() {
                        return;
                    }
                }
                ended = &mut beat => break match ended {
                    Ok(why) => why,
                    Err(_) => "the heartbeat task stopped".into(),
                },
            }
        };
        beat.abort();
        if alive(&tier, |t| t.deaf(why)).is_none() {
            return;
        }
        attempt += 1;
    }
}

/// Pings on the subscription until a ping goes unanswered; says why.
/// Each answered ping sends when it went out to the listener, which then
/// has every message received before the reply.
async fn beat(
    tier: Weak<Tier>,
    mut sink: redis::aio::PubSubSink,
    every: Duration,
    deaf_after: Duration,
    confirm: tokio::sync::mpsc::UnboundedSender<u64>,
) -> String {
    loop {
        tokio::time::sleep(every).await;
        let Some(sent) = alive(&tier, |t| t.trust.clock()) else {
            return "the cache was dropped".into();
        };
        match tokio::time::timeout(deaf_after, sink.ping::<redis::Value>()).await {
            Ok(Ok(_)) => {
                let _ = confirm.send(sent);
            }
            Ok(Err(e)) => return format!("heartbeat failed: {e}"),
            Err(_) => return format!("heartbeat unanswered for {deaf_after:?}"),
        }
    }
}
