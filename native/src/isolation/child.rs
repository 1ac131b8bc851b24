//! The child side: `remotemedia-node-host` creates one node and serves the host's
//! calls until the host closes its socket (or dies, which a watcher thread notices
//! even while a call is running, so no child outlives its host).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::data::Data;
use crate::error::{FailureKind, NodeFailure, catch};
use crate::manifest::RuntimeHint;
use crate::nodes::{Emitter, Node, NodeSpec, Registry};

use super::channel::{self, Region};
use super::wire::{self, Call, Op, Reply};

/// How long the child polls for the next call before it sleeps (back-to-back calls,
/// such as a one-shot run's reset, process, flush and reset, then cost no wake-up).
const NEXT_CALL_SPIN: Duration = Duration::from_micros(50);

/// Set while a node call runs.
static BUSY: AtomicBool = AtomicBool::new(false);

/// Exit status of a child whose setup failed before it could report it.
const EXIT_SETUP: i32 = 70;

/// Entry point of the node host executable: `remotemedia-node-host --ctl FD --mem FD`.
/// Returns the process exit status.
pub fn main(args: impl Iterator<Item = String>) -> i32 {
    let args: Vec<String> = args.collect();
    let fd = |flag: &str| -> Option<RawFd> { args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)?.parse().ok()) };
    let (Some(ctl), Some(mem)) = (fd("--ctl"), fd("--mem")) else {
        eprintln!("remotemedia-node-host runs one isolated node for the remotemedia runtime; it is started by the runtime, not by hand");
        return 2;
    };
    // SAFETY: the runtime passes two descriptors this process inherited and nothing else owns.
    let (ctl, mem) = unsafe { (OwnedFd::from_raw_fd(ctl), OwnedFd::from_raw_fd(mem)) };
    // While a call runs, nothing reads the socket: a watcher ends the process if the
    // host goes away then (between calls, the loop below sees the end of file itself
    // and destroys the node first).
    let watched = ctl.try_clone().map(|fd| {
        std::thread::spawn(move || {
            channel::wait_hangup(std::os::fd::AsFd::as_fd(&fd));
            if BUSY.load(Ordering::Acquire) {
                std::process::exit(0);
            }
        })
    });
    if watched.is_err() {
        return EXIT_SETUP;
    }
    match Region::open(mem) {
        Ok(region) => serve(&ctl, region),
        Err(_) => EXIT_SETUP,
    }
}

/// What the host asks the child to create.
fn resolve(init: &Value) -> Result<(std::sync::Arc<NodeSpec>, Option<std::sync::Arc<crate::plugin::Plugin>>), String> {
    let node_type = init["node_type"].as_str().ok_or("no node_type")?;
    match init["plugin"].as_str() {
        Some(file) => {
            let plugin = crate::plugin::load(std::path::Path::new(file)).map_err(|e| e.to_string())?;
            let spec = plugin.specs().iter().find(|s| s.node_type == node_type).cloned();
            let spec = spec.ok_or_else(|| format!("plugin {file} has no node type '{node_type}'"))?;
            Ok((spec, Some(plugin)))
        }
        None => Ok((Registry::builtin().resolve(node_type, RuntimeHint::Native)?, None)),
    }
}

fn reply_failure(ctl: &OwnedFd, kind: FailureKind, message: &str) -> std::io::Result<()> {
    let message = &message.as_bytes()[..message.len().min(wire::MAX_MESSAGE as usize)];
    let reply = Reply { status: 1, kind: wire::kind_code(kind), msg_len: message.len() as u64, ..Reply::default() };
    channel::send_all(ctl, &reply.encode())?;
    channel::send_all(ctl, message)
}

fn serve(ctl: &OwnedFd, mut region: Region) -> i32 {
    let mut len = [0u8; 8];
    if channel::recv_exact(ctl, &mut len, None, Duration::ZERO).is_err() {
        return 0;
    }
    let mut init = vec![0u8; (u64::from_le_bytes(len) as usize).min(crate::manifest::MAX_MANIFEST_BYTES)];
    if channel::recv_exact(ctl, &mut init, None, Duration::ZERO).is_err() {
        return 0;
    }
    let init: Value = serde_json::from_slice(&init).unwrap_or(Value::Null);
    let params: Map<String, Value> = init["params"].as_object().cloned().unwrap_or_default();
    let created = resolve(&init).map_err(|m| json!({"param": "", "message": m})).and_then(|(spec, plugin)| {
        let node = catch(|| (spec.create)(&params))
            .map_err(|p| json!({"param": "", "message": format!("create panicked: {}", crate::error::panic_message(&*p))}))?
            .map_err(|e| json!({"param": e.param, "message": e.message}))?;
        Ok((node, spec.output_ports(&params).len(), plugin))
    });
    let (mut node, ports, _plugin) = match created {
        Ok(created) => created,
        Err(e) => {
            let _ = reply_failure(ctl, FailureKind::Permanent, &e.to_string());
            return 0;
        }
    };
    let ready = Reply { region_len: region.len() as u64, n_items: ports as u64, latency: node.latency() as u64, ..Reply::default() };
    if channel::send_all(ctl, &ready.encode()).is_err() {
        return 0;
    }
    let mut emitter = Emitter::default();
    loop {
        let mut header = [0u8; Call::SIZE];
        if channel::recv_exact(ctl, &mut header, None, NEXT_CALL_SPIN).is_err() {
            return 0; // the host closed its end: done
        }
        let call = Call::decode(&header);
        BUSY.store(true, Ordering::Release);
        let outcome = one_call(&mut *node, &mut region, call, &mut emitter);
        BUSY.store(false, Ordering::Release);
        let sent = match outcome {
            Ok(reply) => channel::send_all(ctl, &reply.encode()),
            Err(f) => reply_failure(ctl, f.kind, &f.message),
        };
        if sent.is_err() {
            return 0;
        }
    }
}

/// Runs one call, its outputs written into the region after the input.
fn one_call(node: &mut dyn Node, region: &mut Region, call: Call, emitter: &mut Emitter) -> Result<Reply, NodeFailure> {
    let protocol = |m: String| NodeFailure::broken(format!("isolation protocol: {m}"));
    region.follow(call.region_len as usize).map_err(|e| protocol(e.to_string()))?;
    let op = Op::from_code(call.op).ok_or_else(|| protocol(format!("unknown operation {}", call.op)))?;
    let input_len =
        usize::try_from(call.input_len).ok().filter(|&n| n <= region.len()).ok_or_else(|| protocol("input outside the region".into()))?;
    let result = match op {
        Op::Process => {
            // the item's port is the input port it arrived at
            let mut items = wire::read_items(&region.bytes()[..input_len], 1, crate::caps::MAX_INPUT_PORTS).map_err(protocol)?;
            let (port, input): (usize, Data) = items.pop().ok_or_else(|| protocol("no input item".into()))?;
            catch(|| node.process_port(port, &input, emitter))
        }
        Op::Flush => catch(|| node.flush(emitter)),
        Op::Reset => catch(|| node.reset()),
    };
    let result = result.unwrap_or_else(|p| Err(NodeFailure::panicked(&*p))).and_then(|()| emitter.check_budget());
    let items = emitter.take();
    result?;
    let out_off = input_len.div_ceil(64) * 64;
    let encoded = wire::encode(items.iter().map(|(p, d)| (*p, d)));
    region.grow(out_off + encoded.len()).map_err(|e| NodeFailure::new(format!("outputs do not fit the shared region: {e}")))?;
    let out_len = encoded.write(region.bytes_mut(), out_off);
    drop(encoded);
    let reply = Reply {
        region_len: region.len() as u64,
        out_off: out_off as u64,
        out_len: out_len as u64,
        n_items: items.len() as u64,
        latency: node.latency() as u64,
        ..Reply::default()
    };
    emitter.give_back(items);
    Ok(reply)
}
