//! The two channels between the host and a node's child process: a shared memory
//! region (a memfd both map) for the items, and a stream socket for the fixed-size
//! call and reply headers. The socket also wakes the other side, and its end of file
//! tells the host at once that the child died.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Largest region the host or a child may grow to (items of one call).
pub(crate) const MAX_REGION_BYTES: usize = 1 << 30;
const MIN_REGION_BYTES: usize = 1 << 16;

/// The error for a region of `size` bytes, over [`MAX_REGION_BYTES`].
fn too_big(size: usize) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{size} bytes of items in one call; at most {MAX_REGION_BYTES}"))
}

fn os_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A connected pair of stream sockets, both close-on-exec.
pub fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(os_error("socketpair"));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends all of `bytes` (never raising SIGPIPE: a dead peer is an error).
pub fn send_all(fd: &OwnedFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is readable for its length.
        let n = unsafe { libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        bytes = &bytes[n as usize..];
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
        if !spinning {
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if !readable(fd.as_raw_fd(), left)? {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no reply before the deadline"));
                }
            }
        }
        let flags = if spinning { libc::MSG_DONTWAIT } else { 0 };
        // SAFETY: `buf[got..]` is writable for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf[got..].as_mut_ptr().cast(), buf.len() - got, flags) };
        match n {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock if spinning => std::hint::spin_loop(),
                    _ => return Err(e),
                }
            }
            n => got += n as usize,
        }
    }
    Ok(())
}

/// Waits until `fd` is readable (or hung up) for at most `wait`; false on timeout.
fn readable(fd: RawFd, wait: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32 + i32::from(left.subsec_micros() % 1000 != 0);
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut p, 1, ms) } {
            0 if Instant::now() >= deadline => return Ok(false),
            0 => {}
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            _ => return Ok(true),
        }
    }
}

/// Blocks until the peer of `fd` hangs up (the child's watch on its host).
pub fn wait_hangup(fd: RawFd) {
    loop {
        let mut p = libc::pollfd { fd, events: libc::POLLRDHUP, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, -1) };
        if n > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
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
        // SAFETY: a valid NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"remotemedia-node".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(os_error("memfd_create"));
        }
        // SAFETY: the descriptor was just created and is owned by nobody else.
        let mut region = Self { fd: unsafe { OwnedFd::from_raw_fd(fd) }, ptr: std::ptr::null_mut(), len: 0 };
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
        // SAFETY: `st` is written by fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) } != 0 {
            return Err(os_error("fstat"));
        }
        Ok(st.st_size as usize)
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
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, self.fd.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(os_error("mmap"));
        }
        self.ptr = ptr.cast();
        self.len = size;
        Ok(())
    }

    fn unmap(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr`/`len` is a mapping this value made and nothing borrows.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
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
            // SAFETY: resizing our own memfd.
            if unsafe { libc::ftruncate(self.fd.as_raw_fd(), size as libc::off_t) } != 0 {
                return Err(os_error("ftruncate"));
            }
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
