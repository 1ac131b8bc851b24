//! The two channels between the host and a node's child process: a shared memory
//! region (a memfd both map) for the items, and a stream socket for the fixed-size
//! call and reply headers. The socket also wakes the other side, and its end of file
//! tells the host at once that the child died.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{MemfdFlags, fstat, ftruncate, memfd_create};
use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, recv, send, socketpair};

/// Largest region the host or a child may grow to (items of one call).
pub(crate) const MAX_REGION_BYTES: usize = 1 << 30;
const MIN_REGION_BYTES: usize = 1 << 16;

/// The error for a region of `size` bytes, over [`MAX_REGION_BYTES`].
fn too_big(size: usize) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{size} bytes of items in one call; at most {MAX_REGION_BYTES}"))
}

/// A system call's error, naming the call.
fn os_error(what: &str) -> impl FnOnce(rustix::io::Errno) -> io::Error + '_ {
    move |e| {
        let e = io::Error::from(e);
        io::Error::new(e.kind(), format!("{what}: {e}"))
    }
}

/// A connected pair of stream sockets, both close-on-exec.
pub fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).map_err(os_error("socketpair"))
}

/// Sends all of `bytes` (never raising SIGPIPE: a dead peer is an error).
pub fn send_all(fd: &OwnedFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match send(fd, bytes, SendFlags::NOSIGNAL) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Fills `buf` from the socket, waiting at most until `deadline` (forever when None):
/// `TimedOut` past it, `UnexpectedEof` when the peer closed its end (or died). For the
/// first `spin` it polls without sleeping: a reply that comes within microseconds then
/// costs no wake-up of this thread.
pub fn recv_exact(fd: &OwnedFd, buf: &mut [u8], deadline: Option<Instant>, spin: Duration) -> io::Result<()> {
    let mut got = 0;
    let spin_until = Instant::now() + spin;
    while got < buf.len() {
        let spinning = Instant::now() < spin_until;
        if !spinning && let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if !readable(fd.as_fd(), left)? {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no reply before the deadline"));
            }
        }
        let flags = if spinning { RecvFlags::DONTWAIT } else { RecvFlags::empty() };
        match recv(fd, &mut buf[got..], flags) {
            Ok((0, _)) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok((n, _)) => got += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) if spinning => std::hint::spin_loop(),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Waits until `fd` is readable (or hung up) for at most `wait`; false on timeout.
fn readable(fd: BorrowedFd<'_>, wait: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = Timespec { tv_sec: left.as_secs().min(i64::MAX as u64) as i64, tv_nsec: i64::from(left.subsec_nanos()) };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) if Instant::now() >= deadline => return Ok(false),
            Ok(0) | Err(rustix::io::Errno::INTR) => {}
            Ok(_) => return Ok(true),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Blocks until the peer of `fd` hangs up (the child's watch on its host).
pub fn wait_hangup(fd: BorrowedFd<'_>) {
    let gone = PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL;
    loop {
        let mut fds = [PollFd::new(&fd, PollFlags::RDHUP)];
        if matches!(poll(&mut fds, None), Ok(n) if n > 0) && fds[0].revents().intersects(gone) {
            return;
        }
    }
}

/// A shared memory region: a memfd mapped read-write. Either side may grow it; the
/// other maps the new size when told.
pub struct Region {
    fd: OwnedFd,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone in this process; the other process
// only ever touches it while this side waits for its reply.
unsafe impl Send for Region {}

impl Region {
    /// A new region (close-on-exec memfd) of the minimum size.
    pub fn create() -> io::Result<Self> {
        let fd = memfd_create(c"remotemedia-node", MemfdFlags::CLOEXEC).map_err(os_error("memfd_create"))?;
        let mut region = Self { fd, ptr: std::ptr::null_mut(), len: 0 };
        region.grow(MIN_REGION_BYTES)?;
        Ok(region)
    }

    /// The region behind an inherited memfd, mapped at its current size.
    pub fn open(fd: OwnedFd) -> io::Result<Self> {
        let mut region = Self { fd, ptr: std::ptr::null_mut(), len: 0 };
        let size = region.file_size()?;
        region.map(size)?;
        Ok(region)
    }

    /// The memfd, for handing to a child.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Mapped size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    fn file_size(&self) -> io::Result<usize> {
        Ok(fstat(&self.fd).map_err(os_error("fstat"))?.st_size as usize)
    }

    fn map(&mut self, size: usize) -> io::Result<()> {
        if size > MAX_REGION_BYTES {
            return Err(too_big(size));
        }
        self.unmap();
        if size == 0 {
            return Ok(());
        }
        // SAFETY: maps `size` bytes of our own memfd, which is at least that long.
        let ptr = unsafe { mmap(std::ptr::null_mut(), size, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &self.fd, 0) }
            .map_err(os_error("mmap"))?;
        self.ptr = ptr.cast();
        self.len = size;
        Ok(())
    }

    fn unmap(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr`/`len` is a mapping this value made and nothing borrows.
            let _ = unsafe { munmap(self.ptr.cast(), self.len) };
            self.ptr = std::ptr::null_mut();
            self.len = 0;
        }
    }

    /// Makes the region at least `size` bytes (a power of two), growing the file.
    pub fn grow(&mut self, size: usize) -> io::Result<()> {
        if size <= self.len {
            return Ok(());
        }
        let size = size.max(MIN_REGION_BYTES).checked_next_power_of_two().unwrap_or(usize::MAX);
        if size > MAX_REGION_BYTES {
            return Err(too_big(size));
        }
        if size > self.file_size()? {
            ftruncate(&self.fd, size as u64).map_err(os_error("ftruncate"))?;
        }
        self.map(size)
    }

    /// Maps `size` bytes after the peer grew the file to that size; a size that does
    /// not match the file is refused (a confused or hostile peer).
    pub fn follow(&mut self, size: usize) -> io::Result<()> {
        if size == self.len {
            return Ok(());
        }
        if size < self.len || size > self.file_size()? {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("peer announced a region of {size} bytes")));
        }
        self.map(size)
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: the mapping is `len` bytes; the peer writes only while we wait.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The mapped bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        if self.ptr.is_null() {
            return &mut [];
        }
        // SAFETY: as `bytes`, and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.unmap();
    }
}
