use cachemacro_runtime::cached;

/// A connection that cannot be copied into a background load.
pub struct Conn;

#[cached(key = "user:<user_id>", ttl = 60, stale = "10m")]
async fn user_name(conn: &Conn, user_id: u64) -> String {
    let _ = conn;
    format!("user {user_id}")
}

fn main() {
    let _ = user_name(&Conn, 1);
}
