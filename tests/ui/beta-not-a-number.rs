use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = 60, beta = "high")]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

#[cached(key = "team:<team_id>", ttl = 60, beta = -1.0)]
async fn team_name(team_id: u64) -> String {
    format!("team {team_id}")
}

fn main() {
    let _ = user_name(1);
    let _ = team_name(1);
}
