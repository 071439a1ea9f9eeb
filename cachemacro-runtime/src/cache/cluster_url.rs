//! `redis+cluster://` and `rediss+cluster://` URLs: the seed nodes of a
//! Redis Cluster in one string, so `CACHE_URL` can name a cluster.
//!
//! ## Behavior
//!
//! * `redis+cluster://[user[:password]@]host:port[,host:port…][/][?…]`:
//!   one seed is enough (the client discovers the rest); more let it start
//!   while a seed is down. Credentials apply to every node.
//! * A cluster has only database 0: a path or `db` naming another is an
//!   error, as is a seed without a port or an empty list.
//! * redis-rs's `protocol` parameter passes through to every node.

/// The node URLs (`redis://…` or `rediss://…`) a cluster URL names, or
/// `None` when `url` is not a cluster URL. `url` has this crate's query
/// parameters already taken off (`url.rs`).
pub(super) fn nodes(url: &str) -> Option<Result<Vec<String>, String>> {
    let (scheme, rest) = url.split_once("://")?;
    let node_scheme = match scheme {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ => return None,
    };
    Some(parse(node_scheme, rest))
}

fn parse(scheme: &str, rest: &str) -> Result<Vec<String>, String> {
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, format!("#{f}")),
        None => (rest, String::new()),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("db", "0") => {}
            ("db", other) => return Err(format!("a cluster has only database 0, not `{other}`")),
            _ => kept.push(pair),
        }
    }
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), rest),
    };
    let hosts = match hosts.split_once('/') {
        Some((hosts, "" | "0")) => hosts,
        Some((_, db)) => return Err(format!("a cluster has only database 0, not `/{db}`")),
        None => hosts,
    };
    let query = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    let mut nodes = Vec::new();
    for host in hosts.split(',').map(str::trim) {
        let port = host.rsplit_once(':').map(|(_, port)| port);
        if host.is_empty() || port.is_none_or(|p| p.parse::<u16>().is_err()) {
            return Err(format!(
                "every seed node needs a host and a port (`host:6379`), not `{host}`"
            ));
        }
        nodes.push(format!("{scheme}://{auth}{host}/{query}{fragment}"));
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::nodes;

    #[test]
    fn seeds_become_node_urls() {
        let out = nodes("redis+cluster://a:7000,b:7001").unwrap().unwrap();
        assert_eq!(out, ["redis://a:7000/", "redis://b:7001/"]);
        let out = nodes("rediss+cluster://app:pw@a:7000/?protocol=resp3#insecure")
            .unwrap()
            .unwrap();
        assert_eq!(out, ["rediss://app:pw@a:7000/?protocol=resp3#insecure"]);
        assert!(nodes("redis://a:7000").is_none());
    }

    #[test]
    fn malformed_clusters_are_errors() {
        for (url, says) in [
            ("redis+cluster://a:7000/2", "only database 0"),
            ("redis+cluster://a:7000?db=3", "only database 0"),
            ("redis+cluster://a", "host and a port"),
            ("redis+cluster://a:7000,", "host and a port"),
            ("redis+cluster://", "host and a port"),
            ("redis+cluster://a:http", "host and a port"),
        ] {
            let err = nodes(url).unwrap().unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
        assert!(nodes("redis+cluster://a:7000/0?db=0").unwrap().is_ok());
    }
}
