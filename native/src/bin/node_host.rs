//! `remotemedia-node-host`: runs one node of a pipeline in its own process, for the
//! runtime's process isolation. Started by the runtime, never by hand.

fn main() {
    std::process::exit(remotemedia::isolation::child_main(std::env::args().skip(1)));
}
