//! What a backend failure says about the setup: a wrong password, TLS on
//! one side only, nothing listening, no answer. The start-up check,
//! [`Cache::connect`](crate::Cache::connect)'s error and the circuit
//! breaker's health all name the [`Problem`].
//!
//! ## Behavior
//!
//! * [`diagnose`] reads an error as it is: the redis-rs error kind and
//!   code first (`AuthenticationFailed`, `NOAUTH`, `WRONGPASS`, connection
//!   refused, I/O timeout), then the text of the error and its sources
//!   (rustls's "received corrupt message of type InvalidContentType", "invalid
//!   peer certificate", "invalid username-password pair", …).
//! * Some mistakes leave no trace in the error, and only a failed connect
//!   (a `ping`) looks further, with one short connection of its own
//!   ([`Wire::probe`]), bounded by [`PROBE_LIMIT`]:
//!   - `rediss://` to a server that speaks plain RESP: Redis reads the TLS
//!     ClientHello as the start of an inline command that never ends (it
//!     holds a NUL before any newline), so the handshake just times out.
//!     The probe sends `PING` in plain text; a RESP reply means the server
//!     does not speak TLS.
//!   - `redis://` to a TLS-only server: the server resets the connection.
//!     The probe sends a TLS ClientHello; a TLS record in reply (a
//!     ServerHello or an alert) means the server speaks only TLS.
//!
//!   A probe that gets no such answer changes nothing. It never runs on the
//!   path of a cached call, and never against a server that answered.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{BoxError, Error};

/// The most a [`Wire::probe`] may take, after the failure it explains.
pub(crate) const PROBE_LIMIT: Duration = Duration::from_millis(250);

/// What a failure says about how the cache is set up, or about its backend.
///
/// Its `Display` is one line for a person: what is wrong and what to do.
///
/// ```
/// use cachemacro_runtime::Problem;
///
/// assert_eq!(
///     Problem::TlsToPlainServer.to_string(),
///     "the server does not speak TLS: use redis:// or enable TLS on the server"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// A `rediss://` URL for a server that speaks plain text.
    TlsToPlainServer,
    /// A `redis://` URL for a server that speaks only TLS.
    PlainToTlsServer,
    /// The server's TLS certificate is not trusted (unknown CA, or a name
    /// that does not match the URL's host).
    UntrustedCertificate,
    /// The server refused the credentials (`WRONGPASS`, `NOAUTH`, "invalid
    /// username-password pair").
    AuthFailed,
    /// Nothing accepts connections there: refused, no route, unknown host.
    Unreachable,
    /// The server did not answer in time.
    Timeout,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Problem::TlsToPlainServer => {
                "the server does not speak TLS: use redis:// or enable TLS on the server"
            }
            Problem::PlainToTlsServer => "the server speaks only TLS: use rediss://",
            Problem::UntrustedCertificate => {
                "the server's TLS certificate is not trusted: check the host name in the URL, or make its CA trusted (SSL_CERT_FILE)"
            }
            Problem::AuthFailed => {
                "authentication failed: check the user name and password in the URL"
            }
            Problem::Unreachable => {
                "nothing accepts connections there: check the host and port, and that Redis runs"
            }
            Problem::Timeout => {
                "the server did not answer in time: it may be down, overloaded or paused, or the network slow"
            }
        })
    }
}

/// What `error` says about the setup, from the error alone.
pub(crate) fn diagnose(error: &Error) -> Option<Problem> {
    match error {
        Error::Timeout(_) => Some(Problem::Timeout),
        Error::Connect {
            problem: Some(p), ..
        } => Some(*p),
        Error::Connect { source, .. } | Error::Backend(source) => from_source(source.as_ref()),
        Error::CircuitOpen { problem, .. } => *problem,
        _ => None,
    }
}

/// Text of the errors that tell a problem apart, lowercase, in the order
/// they are tried.
const RULES: &[(&[&str], Problem)] = &[
    (
        &["invalidcontenttype", "corrupt message", "invalidmessage"],
        Problem::TlsToPlainServer,
    ),
    (
        &[
            "invalid peer certificate",
            "unknownissuer",
            "notvalidforname",
        ],
        Problem::UntrustedCertificate,
    ),
    (
        &[
            "wrongpass",
            "noauth",
            "invalid username-password",
            "authentication",
        ],
        Problem::AuthFailed,
    ),
    (
        &[
            "connection refused",
            "host unreachable",
            "network unreachable",
            "no route to host",
            "failed to lookup address",
            "name or service not known",
        ],
        Problem::Unreachable,
    ),
    (&["timed out", "no answer within"], Problem::Timeout),
];

/// What a backend's error (and the errors under it) says.
pub(crate) fn from_source(error: &(dyn std::error::Error + 'static)) -> Option<Problem> {
    if let Some(redis) = error.downcast_ref::<redis::RedisError>() {
        if redis.kind() == redis::ErrorKind::AuthenticationFailed
            || matches!(redis.code(), Some("NOAUTH" | "WRONGPASS"))
        {
            return Some(Problem::AuthFailed);
        }
        if redis.is_connection_refusal() {
            return Some(Problem::Unreachable);
        }
        if redis.is_timeout() {
            return Some(Problem::Timeout);
        }
    }
    let text = chain(error).to_lowercase();
    RULES
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| text.contains(n)))
        .map(|(_, problem)| *problem)
}

/// An error and its sources, as one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        text.push_str(": ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

/// [`Error::Connect`] for `url`, with what `source` says about the setup.
pub(crate) fn connect_error(url: &str, source: BoxError, problem: Option<Problem>) -> Error {
    let problem = problem.or_else(|| from_source(source.as_ref()));
    Error::Connect {
        url: url.to_owned(),
        source,
        problem,
    }
}

/// Where a store connects, to look at what speaks there when connecting
/// failed without saying why.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    host: String,
    port: u16,
    /// Whether the URL asks for TLS.
    tls: bool,
}

/// `PING` in plain RESP.
const PING: &[u8] = b"PING\r\n";

/// A TLS 1.2 ClientHello (no SNI, common ECDHE and RSA suites), enough
/// for a TLS server to answer with a ServerHello or an alert.
const CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0x55, // record: handshake, 85 bytes
    0x01, 0x00, 0x00, 0x51, // ClientHello, 81 bytes
    0x03, 0x03, // TLS 1.2
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // random
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    //
    0x00, // no session id
    0x00, 0x0a, 0xc0, 0x2f, 0xc0, 0x2b, 0xc0, 0x30, 0x00, 0x9c, 0x00, 0x2f, // 5 suites
    0x01, 0x00, // no compression
    0x00, 0x1e, // extensions, 30 bytes
    0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // groups: x25519, P-256
    0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // point formats: uncompressed
    0x00, 0x0d, 0x00, 0x0a, 0x00, 0x08, 0x04, 0x01, 0x08, 0x04, 0x04, 0x03, 0x05,
    0x01, // signature algorithms
];

impl Wire {
    /// The host and port of a `redis://` or `rediss://` URL.
    pub(crate) fn of(url: &str) -> Option<Wire> {
        use redis::IntoConnectionInfo as _;
        let info = url.into_connection_info().ok()?;
        match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => Some(Wire {
                host: host.clone(),
                port: *port,
                tls: false,
            }),
            redis::ConnectionAddr::TcpTls { host, port, .. } => Some(Wire {
                host: host.clone(),
                port: *port,
                tls: true,
            }),
            _ => None,
        }
    }

    /// Whether a failure diagnosed as `seen` may hide a TLS mismatch: it
    /// says nothing more specific than "no answer" or "connection dropped".
    pub(crate) fn worth_probing(seen: Option<Problem>) -> bool {
        matches!(seen, None | Some(Problem::Timeout))
    }

    /// Connects once more, in the other protocol: a plain `PING` for a TLS
    /// URL, a ClientHello for a plain one. Names the mismatch if the server
    /// answers in the protocol the URL did not ask for; `None` otherwise.
    /// Bounded by `limit`.
    pub(crate) async fn probe(&self, limit: Duration) -> Option<Problem> {
        let probe = async {
            let mut stream =
                tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
            stream
                .write_all(if self.tls { PING } else { CLIENT_HELLO })
                .await?;
            let mut head = [0u8; 2];
            stream.read_exact(&mut head).await?;
            Ok::<_, std::io::Error>(head)
        };
        let head = tokio::time::timeout(limit, probe).await.ok()?.ok()?;
        if self.tls {
            // A RESP reply: `+PONG`, or `-NOAUTH …` on a server with a password.
            matches!(head[0], b'+' | b'-').then_some(Problem::TlsToPlainServer)
        } else {
            // A TLS record: a ServerHello (22) or an alert (21), version 3.x.
            (matches!(head[0], 0x15 | 0x16) && head[1] == 0x03).then_some(Problem::PlainToTlsServer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_hello_is_well_formed() {
        let record = usize::from(CLIENT_HELLO[3]) << 8 | usize::from(CLIENT_HELLO[4]);
        assert_eq!(CLIENT_HELLO.len(), 5 + record);
        let hello = usize::from(CLIENT_HELLO[7]) << 8 | usize::from(CLIENT_HELLO[8]);
        assert_eq!(record, 4 + hello);
        let extensions = usize::from(CLIENT_HELLO[58]) << 8 | usize::from(CLIENT_HELLO[59]);
        assert_eq!(CLIENT_HELLO.len(), 60 + extensions);
    }

    #[test]
    fn errors_name_their_problem() {
        let redis = |kind, what| Error::Backend(Box::new(redis::RedisError::from((kind, what))));
        assert_eq!(
            diagnose(&redis(
                redis::ErrorKind::AuthenticationFailed,
                "Password authentication failed"
            )),
            Some(Problem::AuthFailed)
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            diagnose(&Error::Backend(Box::new(redis::RedisError::from(refused)))),
            Some(Problem::Unreachable)
        );
        let corrupt: BoxError = "received corrupt message of type InvalidContentType".into();
        assert_eq!(
            diagnose(&connect_error("rediss://h:1", corrupt, None)),
            Some(Problem::TlsToPlainServer)
        );
        let cert: BoxError = "invalid peer certificate: UnknownIssuer".into();
        assert_eq!(
            diagnose(&Error::Backend(cert)),
            Some(Problem::UntrustedCertificate)
        );
        assert_eq!(
            diagnose(&Error::Timeout(Duration::from_millis(1))),
            Some(Problem::Timeout)
        );
        assert_eq!(
            diagnose(&redis(redis::ErrorKind::UnexpectedReturnType, "WRONGTYPE")),
            None
        );
        assert_eq!(diagnose(&Error::NotAnInteger("k".into())), None);
    }

    #[test]
    fn a_connect_error_says_what_to_do() {
        let err = connect_error(
            "redis://:***@h:1",
            "Password authentication failed".into(),
            None,
        );
        assert_eq!(
            err.to_string(),
            "could not connect to the cache at `redis://:***@h:1`: Password authentication failed; \
             authentication failed: check the user name and password in the URL"
        );
        let open = Error::CircuitOpen {
            failures: 5,
            since: Duration::from_secs(1),
            last_error: err.to_string(),
            problem: diagnose(&err),
        };
        let text = open.to_string();
        assert_eq!(
            text.matches("authentication failed:").count(),
            1,
            "said once: {text}"
        );
    }

    #[test]
    fn urls_name_their_wire() {
        let wire = Wire::of("rediss://:pw@cache.internal:6380/0").expect("a TCP address");
        assert_eq!(
            (wire.host.as_str(), wire.port, wire.tls),
            ("cache.internal", 6380, true)
        );
        let wire = Wire::of("redis://127.0.0.1:6379").expect("a TCP address");
        assert!(!wire.tls);
    }
}
