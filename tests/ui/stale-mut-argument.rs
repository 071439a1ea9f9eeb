use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = 60, stale = "10m")]
async fn user_name(user_id: u64, seen: &mut Vec<u64>) -> String {
    seen.push(user_id);
    format!("user {user_id}")
}

struct Repo;

impl Repo {
    #[cached(key = "team:<team_id>", ttl = 60, fail_safe = "1h", timeout = "1s")]
    async fn team_name(&mut self, team_id: u64) -> String {
        format!("team {team_id}")
    }
}

fn main() {
    let _ = user_name(1, &mut Vec::new());
    let _ = Repo.team_name(1);
}
