//! The host side: a [`Node`] that forwards every call to the node running in its
//! child process, and restarts the child after it died or was killed.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use serde_json::{Map, Value, json};

use crate::budget::MAX_NODE_PROCESSES;
use crate::data::Data;
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Node, NodeSpec, ParamError};

use super::channel::{self, Region};
use super::host_executable;
use super::wire::{self, Call, Op, Reply};

/// What a child is made from: the node type, where it lives, its params.
#[derive(Clone)]
pub struct Recipe {
    node_type: String,
    plugin: Option<PathBuf>,
    params: Map<String, Value>,
    outputs: usize,
    /// Deadline of one call (and of creating the node in a new child).
    timeout: Option<Duration>,
}

impl Recipe {
    /// The recipe for a node of `spec` with `params`.
    pub fn new(spec: &NodeSpec, params: &Map<String, Value>, timeout: Option<Duration>) -> Self {
        Self {
            node_type: spec.node_type.clone(),
            plugin: spec.implementation.plugin().map(|p| p.file.clone()),
            params: params.clone(),
            outputs: spec.output_ports(params).len(),
            timeout,
        }
    }
}

/// Why no child could be made.
#[derive(Debug)]
pub enum StartError {
    /// The node refused its params (in the child, as it would in-process).
    Params(ParamError),
    /// The child could not be started, or died or hung while creating the node (kind
    /// `Crashed` or `TimedOut`; `Permanent` when it could not be started at all).
    Process(NodeFailure),
}

/// A running child, counted in [`LIVE`] while it exists.
struct Running {
    process: Child,
    ctl: OwnedFd,
    region: Region,
}

/// Children alive now, process-wide (at most [`MAX_NODE_PROCESSES`]).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Counts a child about to start, or refuses when the budget is spent.
fn reserve() -> Result<(), StartError> {
    LIVE.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_NODE_PROCESSES).then_some(n + 1)).map(drop).map_err(|n| {
        StartError::Process(NodeFailure::new(format!(
            "{n} isolated nodes' processes are running, the most at once in a process ({MAX_NODE_PROCESSES})"
        )))
    })
}

/// How long a child may take to destroy its node and exit when its host lets it go.
const EXIT_GRACE: Duration = Duration::from_millis(200);

impl Running {
    /// Lets the child go (it destroys its node and exits when its socket closes),
    /// waiting up to `grace`, then kills it; says how it ended if not cleanly.
    fn finish(mut self, grace: Duration) -> Result<(), String> {
        // the descriptor stays open until drop; a socket already shut down is no error here
        let _ = rustix::net::shutdown(&self.ctl, rustix::net::Shutdown::Both);
        let deadline = Instant::now() + grace;
        loop {
            match self.process.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(describe(status)),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                Ok(None) => return Err(format!("it did not exit within {} ms and was killed", grace.as_millis())),
                Err(e) => return Err(format!("it could not be reaped: {e}")),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // a no-op when `finish` already reaped it
        let _ = self.process.kill();
        let _ = self.process.wait();
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A node whose instance lives in a child process.
pub struct Isolated {
    recipe: Recipe,
    /// None after the child died or was killed: the next call starts a new one.
    child: Option<Running>,
    latency: usize,
}

impl Isolated {
    /// Starts the child and creates the node in it.
    pub fn start(recipe: Recipe) -> Result<Self, StartError> {
        let (child, latency) = spawn(&recipe)?;
        Ok(Self { recipe, child: Some(child), latency })
    }

    /// Ends the child as when the node is dropped, but waits up to `grace` for it to
    /// destroy its node and exit; an error says how it ended otherwise.
    pub fn close(mut self, grace: Duration) -> Result<(), String> {
        self.child.take().map_or(Ok(()), |c| c.finish(grace))
    }

    /// The child's process id, while one runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.process.id())
    }

    /// Sends one call and reads its reply; a dead, hung or confused child is killed.
    fn call(&mut self, op: Op, input: Option<(usize, &Data)>, out: &mut Emitter) -> Result<(), NodeFailure> {
        if self.child.is_none() {
            let (child, latency) = spawn(&self.recipe).map_err(|e| match e {
                StartError::Params(p) => NodeFailure::new(format!("restarting its process failed: {}", p.message)),
                StartError::Process(f) => NodeFailure { message: format!("restarting its process failed: {}", f.message), ..f },
            })?;
            self.child = Some(child);
            self.latency = latency;
        }
        let running = self.child.as_mut().expect("started above");
        let result = exchange(running, op, input, self.recipe.outputs, self.recipe.timeout);
        match result {
            Ok((items, latency)) => {
                self.latency = latency;
                for (port, item) in items {
                    out.emit_to(port, item);
                }
                Ok(())
            }
            Err(Fault::Node(f)) => Err(f),
            Err(fault) => {
                let mut running = self.child.take().expect("running");
                Err(ended(&mut running, fault, self.recipe.timeout))
            }
        }
    }
}

/// What went wrong in one exchange.
enum Fault {
    /// The node reported a failure; the child is fine.
    Node(NodeFailure),
    /// No reply in time.
    Hung,
    /// The child closed its socket or the socket failed (it died, most likely).
    Gone(std::io::Error),
    /// The child answered nonsense.
    Protocol(String),
}

/// The failure for a child that is gone, hung or confused; it is killed and reaped.
fn ended(running: &mut Running, fault: Fault, timeout: Option<Duration>) -> NodeFailure {
    let _ = running.process.kill();
    let status = running.process.wait();
    match fault {
        Fault::Hung => {
            let ms = timeout.map_or(0, |t| t.as_millis());
            NodeFailure::timed_out(format!("no reply within {ms} ms: its process was killed and is restarted on the next call"))
        }
        Fault::Protocol(m) => NodeFailure::crashed(format!("its process broke the isolation protocol ({m}) and was killed")),
        Fault::Gone(e) => {
            let how = match status {
                Ok(s) if s.signal().is_some_and(|sig| sig != Signal::KILL.as_raw()) || s.code().is_some() => describe(s),
                Ok(s) => format!("{} (connection: {e})", describe(s)),
                Err(w) => format!("it could not be reaped ({w})"),
            };
            NodeFailure::crashed(format!("its process died: {how}; it is restarted on the next call"))
        }
        Fault::Node(f) => f,
    }
}

/// "killed by signal 11 (SIGSEGV)" or "exited with status 3".
fn describe(status: std::process::ExitStatus) -> String {
    match (status.signal(), status.code()) {
        (Some(sig), _) => {
            const NAMES: [(Signal, &str); 9] = [
                (Signal::SEGV, "SIGSEGV"),
                (Signal::ABORT, "SIGABRT"),
                (Signal::BUS, "SIGBUS"),
                (Signal::FPE, "SIGFPE"),
                (Signal::ILL, "SIGILL"),
                (Signal::KILL, "SIGKILL"),
                (Signal::TERM, "SIGTERM"),
                (Signal::TRAP, "SIGTRAP"),
                (Signal::SYS, "SIGSYS"),
            ];
            let name = NAMES.iter().find(|(s, _)| s.as_raw() == sig).map_or("signal", |(_, n)| n);
            format!("killed by signal {sig} ({name})")
        }
        (None, Some(code)) => format!("exited with status {code}"),
        (None, None) => "ended".to_string(),
    }
}

fn io_fault(e: std::io::Error) -> Fault {
    if e.kind() == std::io::ErrorKind::TimedOut { Fault::Hung } else { Fault::Gone(e) }
}

/// One call and its reply: the outputs and the node's latency after it.
fn exchange(
    running: &mut Running,
    op: Op,
    input: Option<(usize, &Data)>,
    ports: usize,
    timeout: Option<Duration>,
) -> Result<(Vec<(usize, Data)>, usize), Fault> {
    let input_len = match input {
        Some((port, item)) => {
            let region = &mut running.region;
            let encoded = wire::encode(std::iter::once((port, item)));
            region
                .grow(encoded.len())
                .map_err(|e| Fault::Node(NodeFailure::invalid_input(format!("input does not fit the shared region: {e}"))))?;
            encoded.write(region.bytes_mut(), 0)
        }
        None => 0,
    };
    let call = Call { op: op as u64, region_len: running.region.len() as u64, input_len: input_len as u64 };
    let deadline = timeout.map(|t| Instant::now() + t);
    channel::send_all(&running.ctl, &call.encode()).map_err(Fault::Gone)?;
    let reply = read_reply(&running.ctl, deadline)?;
    if reply.status != 0 {
        return Err(Fault::Node(wire::failure(reply.kind, read_message(&running.ctl, reply.msg_len, deadline)?)));
    }
    running.region.follow(reply.region_len as usize).map_err(|e| Fault::Protocol(e.to_string()))?;
    let bytes = running.region.bytes();
    let span = usize::try_from(reply.out_off)
        .ok()
        .zip(usize::try_from(reply.out_len).ok())
        .and_then(|(off, len)| bytes.get(off..off.checked_add(len)?))
        .ok_or_else(|| Fault::Protocol("outputs outside the region".into()))?;
    // Each header is read once into locals and checked; payloads are copied out.
    let n = usize::try_from(reply.n_items).map_err(|_| Fault::Protocol("item count".into()))?;
    let items = wire::read_items(span, n, ports).map_err(Fault::Protocol)?;
    Ok((items, usize::try_from(reply.latency).unwrap_or(usize::MAX)))
}

fn read_reply(ctl: &OwnedFd, deadline: Option<Instant>) -> Result<Reply, Fault> {
    let mut header = [0u8; Reply::SIZE];
    channel::recv_exact(ctl, &mut header, deadline, REPLY_SPIN).map_err(io_fault)?;
    Ok(Reply::decode(&header))
}

fn read_message(ctl: &OwnedFd, len: u64, deadline: Option<Instant>) -> Result<String, Fault> {
    if len > wire::MAX_MESSAGE {
        return Err(Fault::Protocol(format!("a {len}-byte message")));
    }
    let mut message = vec![0u8; len as usize];
    channel::recv_exact(ctl, &mut message, deadline, Duration::ZERO).map_err(io_fault)?;
    Ok(String::from_utf8_lossy(&message).into_owned())
}

/// How long the host polls for a reply before it sleeps: most calls on audio chunks
/// return within it, and then cost no wake-up of the calling thread.
const REPLY_SPIN: Duration = Duration::from_micros(100);

/// Longest wait for a new child to create its node (longer if the node's `timeout_ms` is).
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// Starts a child and creates the node in it: the running child and the node's latency.
fn spawn(recipe: &Recipe) -> Result<(Running, usize), StartError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| StartError::Process(NodeFailure::new(format!("{what}: {e}")));
    let started = Instant::now();
    let exe = host_executable().map_err(|m| StartError::Process(NodeFailure::new(m)))?;
    let region = Region::create().map_err(|e| fail("shared memory", &e))?;
    let (ours, theirs) = channel::socket_pair().map_err(|e| fail("socket", &e))?;
    let (ctl_fd, mem_fd) = (theirs.as_raw_fd(), region.fd());
    let mut command = Command::new(&exe);
    command.args(["--ctl", &ctl_fd.to_string(), "--mem", &mem_fd.to_string()]).stdin(Stdio::null()).stdout(Stdio::null());
    // the child loads the models its node names as this process would: the same
    // onnxruntime, the same inference thread budget
    if let Some(library) = crate::model::onnxruntime::chosen_library() {
        command.env(crate::model::onnxruntime::ENV, library);
    }
    command.env(crate::model::budget::ENV, crate::model::budget::threads().to_string());
    // SAFETY: between fork and exec only async-signal-safe calls: fcntl on two
    // descriptors this process owns, so exactly they survive the exec.
    unsafe {
        command.pre_exec(move || {
            for fd in [ctl_fd, mem_fd] {
                // SAFETY: both stay open in this process until after the exec.
                rustix::io::fcntl_setfd(std::os::fd::BorrowedFd::borrow_raw(fd), rustix::io::FdFlags::empty())?;
            }
            Ok(())
        });
    }
    reserve()?;
    let process = match command.spawn() {
        Ok(process) => process,
        Err(e) => {
            LIVE.fetch_sub(1, Ordering::AcqRel);
            return Err(fail(&format!("cannot start {}", exe.display()), &e));
        }
    };
    drop(theirs);
    let mut running = Running { process, ctl: ours, region };
    let init = serde_json::to_vec(&json!({
        "node_type": recipe.node_type,
        "plugin": recipe.plugin.as_ref().map(|p| p.display().to_string()),
        "params": recipe.params,
    }))
    .map_err(|e| fail("params", &e))?;
    let deadline = Some(Instant::now() + recipe.timeout.unwrap_or_default().max(STARTUP_DEADLINE));
    let handshake = channel::send_all(&running.ctl, &(init.len() as u64).to_le_bytes())
        .and_then(|()| channel::send_all(&running.ctl, &init))
        .map_err(Fault::Gone)
        .and_then(|()| read_reply(&running.ctl, deadline));
    match handshake {
        Ok(reply) if reply.status == 0 => Ok((running, usize::try_from(reply.latency).unwrap_or(usize::MAX))),
        Ok(reply) => {
            let message = read_message(&running.ctl, reply.msg_len, deadline).unwrap_or_default();
            let e: Value = serde_json::from_str(&message).unwrap_or(Value::Null);
            let param = e["param"].as_str().unwrap_or_default();
            Err(StartError::Params(ParamError::new(param, e["message"].as_str().unwrap_or("create failed in its process"))))
        }
        Err(fault) => {
            let f = ended(&mut running, fault, deadline.map(|d| d - started));
            Err(StartError::Process(NodeFailure { message: format!("while creating the node, {}", f.message), ..f }))
        }
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = child.finish(EXIT_GRACE);
        }
    }
}

impl Node for Isolated {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        self.call(Op::Process, Some((0, input)), out)
    }
    fn process_port(&mut self, port: usize, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        self.call(Op::Process, Some((port, input)), out)
    }
    /// A child that died since its last call held no stream: nothing to flush.
    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        if self.child.is_none() {
            return Ok(());
        }
        self.call(Op::Flush, None, out)
    }
    /// A dead child is reset by starting afresh on the next call.
    fn reset(&mut self) -> Result<(), NodeFailure> {
        if self.child.is_none() {
            return Ok(());
        }
        self.call(Op::Reset, None, &mut Emitter::default())
    }
    fn latency(&self) -> usize {
        self.latency
    }
}
