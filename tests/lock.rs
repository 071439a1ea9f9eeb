//! Single-flight across processes: with `lock = true`, four OS processes
//! hitting one cold key run its body once in total.

use std::process::{Command, Stdio};

use cachemacro_tests::RedisServer;

/// Runs four children at once against `server`; returns (body runs, outputs).
fn stampede(server: &RedisServer, mode: &str) -> (u64, Vec<String>) {
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_lock_child"))
                .args([server.url().as_str(), mode])
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn a child process")
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runs = rt.block_on(async {
        let mut raw = server.raw().await;
        // Release all four together once they are all waiting.
        loop {
            let waiting: Vec<String> = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async::<String>(&mut raw)
                .await
                .unwrap()
                .lines()
                .filter(|l| l.contains("cmd=blpop"))
                .map(String::from)
                .collect();
            if waiting.len() == 4 {
                break;
            }
            tokio::task::yield_now().await;
        }
        let _: () = redis::cmd("RPUSH")
            .arg("go")
            .arg(&["1", "2", "3", "4"])
            .query_async(&mut raw)
            .await
            .unwrap();
        rt_wait(children).await
    });
    let outputs = runs.1;
    let count: u64 = rt.block_on(async {
        let mut raw = server.raw().await;
        let n: Option<u64> = redis::cmd("GETDEL")
            .arg("runs")
            .query_async(&mut raw)
            .await
            .unwrap();
        n.unwrap_or(0)
    });
    (count, outputs)
}

async fn rt_wait(children: Vec<std::process::Child>) -> ((), Vec<String>) {
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().expect("child output");
                assert!(out.status.success(), "a child failed: {out:?}");
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    ((), outputs)
}

#[test]
fn four_processes_on_a_cold_key_run_the_body_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (runs, outputs) = stampede(&server, "lock");
    assert_eq!(runs, 1, "one body run across four processes: {outputs:?}");
    assert!(outputs.iter().all(|o| o.starts_with("42 ")), "{outputs:?}");
    let waited = outputs.iter().filter(|o| !o.ends_with(" 0")).count();
    assert_eq!(
        waited, 3,
        "three processes waited for the fourth: {outputs:?}"
    );

    // Control: without `lock`, every process loads (only one may store).
    let (runs, outputs) = stampede(&server, "nolock");
    assert_eq!(runs, 4, "{outputs:?}");
}
