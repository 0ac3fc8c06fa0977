//! A fork server per build venv and backend module: one interpreter that has imported the
//! backend's module (`setuptools.build_meta` takes a fifth of a second to import on every
//! start, more than most metadata hooks take to run) and forks a child for each hook, which
//! loads the backend object its request names (`setuptools.build_meta:__legacy__` from the
//! same server). The child is the hook driver's process as if started fresh: its own working
//! directory, log, and arguments, and the environment every hook of that venv gets. Nothing is shared between builds but the
//! imported modules, as they were before any build ran; a child's changes die with it.
//!
//! One per venv and backend module per process, started when first wanted, ended when this
//! process ends (the server exits when its input closes, and kills what it still runs).
//! When it cannot start or goes away, hooks run as separate processes, as before.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, OnceCell};
use tracing::debug;

/// The server: loads the hook driver's functions and the backend module, says `ready`, then
/// reads one JSON job per line (`id`, `cwd`, `request`, `log`) and answers `ID STATUS` (the
/// raw wait status) when the job's child ends.
const SERVER: &str = r#"
import json, os, select, shutil, signal, sys, traceback



def child(job, namespace, driver_path, wake_r, wake_w):
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(wake_r)
        os.close(wake_w)
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(job["cwd"])
        sys.argv = [driver_path, job["request"]]
        try:
            namespace["main"]()
            code = 0
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def serve():
    driver_path, backend = sys.argv[1], sys.argv[2]
    namespace = {"__name__": "pep517_driver", "__file__": driver_path}
    with open(driver_path) as f:
        exec(compile(f.read(), driver_path, "exec"), namespace)
    out = sys.stdout
    try:
        namespace["load_backend"](backend, [])
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    out.write("ready\n")
    out.flush()

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)

    children = {}
    pending = b""
    while True:
        try:
            ready, _, _ = select.select([0, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            job = children.pop(pid, None)
            if job is not None:
                out.write("%d %d\n" % (job, status))
                out.flush()
        if 0 in ready:
            chunk = os.read(0, 65536)
            if not chunk:
                # The frontend is done (or gone): end what still runs, and remove this directory.
                for pid in children:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                shutil.rmtree(os.path.dirname(os.path.abspath(driver_path)), ignore_errors=True)
                os._exit(0)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                job = json.loads(line)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    child(job, namespace, driver_path, wake_r, wake_w)
                children[pid] = job["id"]


# Only when run as the server: a hook's `multiprocessing` with the spawn method imports this
# file again as `__mp_main__`, which must not serve.
if __name__ == "__main__":
    serve()
"#;

/// A running server.
pub(crate) struct Zygote {
    /// Closed by [`shutdown`].
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    waiters: Arc<Mutex<HashMap<u64, oneshot::Sender<i32>>>>,
    next: AtomicU64,
    child: tokio::sync::Mutex<Child>,
}

/// What a server is started with: everything a hook process of that venv would get.
pub(crate) struct Spec<'a> {
    /// The venv's `bin/python`.
    pub python: &'a Path,
    /// The backend's module (`setuptools.build_meta`), imported before any child forks.
    pub backend: &'a str,
    /// The hook driver's source.
    pub driver: &'a str,
    /// Where the server's scratch directory goes.
    pub scratch_parent: &'a Path,
    /// The command's environment is cleaned and set by this.
    pub configure: &'a (dyn Fn(&mut Command) + Sync),
}

type Slot = Arc<OnceCell<Option<Arc<Zygote>>>>;

fn servers() -> &'static Mutex<HashMap<String, Slot>> {
    static SERVERS: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
    SERVERS.get_or_init(Default::default)
}

/// The server of `spec`'s venv and backend in this process, started if need be; `None` when
/// it cannot start (the hooks then run as processes of their own).
pub(crate) async fn get(key: String, spec: Spec<'_>) -> Option<Arc<Zygote>> {
    let slot = {
        let mut servers = servers().lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(servers.entry(key).or_default())
    };
    slot.get_or_init(|| async {
        match Zygote::start(&spec).await {
            Ok(z) => Some(Arc::new(z)),
            Err(why) => {
                debug!("no fork server for {} in {}: {why}", spec.backend, spec.python.display());
                None
            }
        }
    })
    .await
    .clone()
}

impl Zygote {
    async fn start(spec: &Spec<'_>) -> Result<Zygote, String> {
        let started = std::time::Instant::now();
        std::fs::create_dir_all(spec.scratch_parent).map_err(|e| e.to_string())?;
        // The server removes its directory when it ends; until it has started, this does.
        let dir = tempfile::Builder::new()
            .prefix("forkserver-")
            .tempdir_in(spec.scratch_parent)
            .map_err(|e| e.to_string())?;
        // Its directory becomes `sys.path[0]`, as the driver's does: nothing else in it.
        let driver = dir.path().join("pep517_driver.py");
        let server = dir.path().join("pep517_forkserver.py");
        std::fs::write(&driver, spec.driver).map_err(|e| e.to_string())?;
        std::fs::write(&server, SERVER).map_err(|e| e.to_string())?;
        let log = dir.path().join("forkserver.log");
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut command = Command::new(spec.python);
        command.arg(&server).arg(&driver).arg(spec.backend).current_dir(dir.path());
        (spec.configure)(&mut command);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::from(log_file)).kill_on_drop(true);
        let mut child =
            command.spawn().map_err(|e| format!("cannot start {}: {e}", spec.python.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        match lines.next_line().await {
            Ok(Some(line)) if line == "ready" => {}
            _ => {
                let _ = child.wait().await;
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("it did not start: {}", text.lines().last().unwrap_or("no output")));
            }
        }
        debug!(
            "fork server for {} in {} ready after {:.1?}",
            spec.backend,
            spec.python.display(),
            started.elapsed()
        );
        let waiters: Arc<Mutex<HashMap<u64, oneshot::Sender<i32>>>> = Arc::default();
        let dispatch = Arc::clone(&waiters);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut parts = line.split_whitespace();
                let (Some(Ok(id)), Some(Ok(status))) =
                    (parts.next().map(str::parse::<u64>), parts.next().map(str::parse::<i32>))
                else {
                    continue;
                };
                let waiter = dispatch.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(status);
                }
            }
            // The server is gone: whoever waits gets `None` and runs the hook on its own.
            dispatch.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        let _ = dir.keep();
        Ok(Zygote {
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            waiters,
            next: AtomicU64::new(0),
            child: tokio::sync::Mutex::new(child),
        })
    }

    /// Runs the driver on `request` in a child with working directory `cwd`, its output in
    /// `log`; `None` if the server is gone.
    pub(crate) async fn run(&self, cwd: &Path, request: &Path, log: &Path) -> Option<ExitStatus> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        let job = serde_json::json!({ "id": id, "cwd": abs(cwd), "request": abs(request), "log": abs(log) });
        let line = format!("{job}\n");
        {
            let mut guard = self.stdin.lock().await;
            let Some(stdin) = guard.as_mut() else {
                self.waiters.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                return None;
            };
            if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                self.waiters.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                return None;
            }
        }
        rx.await.ok().map(ExitStatus::from_raw)
    }
}

/// Ends every server of this process and waits for each (its directory goes with it); a
/// later build starts new ones. Called when a resolution is done, so that nothing outlives
/// the command and its time and memory are counted with it.
pub async fn shutdown() {
    let slots: Vec<Slot> =
        servers().lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, s)| s).collect();
    for slot in slots {
        let Some(Some(server)) = slot.get() else { continue };
        drop(server.stdin.lock().await.take());
        let mut child = server.child.lock().await;
        if tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

fn abs(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
