//! The one thread that starts every redis-server, so none outlives the
//! test binary.
//!
//! ## Behavior
//!
//! Each server is started with `PR_SET_PDEATHSIG = SIGKILL` (Linux): the
//! kernel kills it when the thread that started it exits. That thread must
//! therefore live as long as the process: each tokio test runs on a thread
//! of its own, and a cluster in a `static` outlives every test. So every
//! spawn is handed to a keeper thread that never returns; when the test
//! binary exits, even on a panic or an abort, its servers die with it.

use std::io;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

type Request = (Command, Sender<io::Result<Child>>);

static KEEPER: OnceLock<Sender<Request>> = OnceLock::new();

/// Spawns `command` from the keeper thread, tied to this process's life.
pub(crate) fn spawn(command: Command) -> io::Result<Child> {
    let keeper = KEEPER.get_or_init(|| {
        let (requests, incoming) = channel::<Request>();
        std::thread::Builder::new()
            .name("cachemacro-keeper".into())
            // Never ends: the sender lives in a static, so `incoming` never closes.
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(spawn_here(&mut command));
                }
            })
            .expect("start the process keeper thread");
        requests
    });
    let (reply, answer) = channel();
    keeper
        .send((command, reply))
        .expect("the keeper thread never exits");
    answer.recv().expect("the keeper thread answers")
}

#[cfg(target_os = "linux")]
fn spawn_here(command: &mut Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt as _;
    let parent = std::process::id();
    // SAFETY: between fork and exec only async-signal-safe calls (prctl,
    // getppid) and no allocation: `from_raw_os_error` and
    // `last_os_error` build their errors without one.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl: then no signal comes.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

#[cfg(not(target_os = "linux"))]
fn spawn_here(command: &mut Command) -> io::Result<Child> {
    command.spawn()
}
