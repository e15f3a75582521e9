//! The agent's connection guard: a bounded number of open connections, a deadline for the first request's
//! headers, and an idle timeout on every connection, so that no client (with or without a token) can hold the
//! agent's file descriptors or memory.
//!
//! - At the limit, the oldest connection that has not yet been answered (idle or trickling headers) is closed to
//!   make room; with none such, the new connection is closed at once (fast refusal, nothing read). So a flood
//!   of idle connections cannot keep `/healthz` or a console out.
//! - A connection must send its first request's headers within [`HEADER_TIMEOUT`] ("answered" = the agent has
//!   written something back, which it only does after reading a request head).
//! - Any connection with no byte moving either way for [`IDLE_TIMEOUT`] is closed. SSE streams send a
//!   keep-alive every 15 s, so live viewers stay; a viewer that stops reading stalls the writes and is dropped.

use futures::task::AtomicWaker;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Open connections at most (each costs a descriptor and a few KiB of buffers).
pub const MAX_CONNECTIONS: usize = 512;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// What a connection and the listener share.
#[derive(Debug, Default)]
struct Shared {
    /// Set by the listener to make room; the connection fails its next poll.
    evict: AtomicBool,
    /// The agent wrote to this connection: it is being served, not a candidate for eviction.
    answered: AtomicBool,
    waker: AtomicWaker,
}

#[derive(Debug, Default)]
struct Registry {
    open: AtomicUsize,
    /// Connections not yet answered, oldest first (pruned lazily).
    waiting: Mutex<VecDeque<Arc<Shared>>>,
}

impl Registry {
    /// Close the oldest unanswered connection; false when there is none.
    fn evict_one(&self) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(c) = waiting.pop_front() {
            if !c.answered.load(Ordering::SeqCst) && Arc::strong_count(&c) > 1 {
                c.evict.store(true, Ordering::SeqCst);
                c.waker.wake();
                return true;
            }
        }
        false
    }
}

/// A listener wrapped with [`Limits`].
pub struct Guarded<L> {
    inner: L,
    limits: Limits,
    registry: Arc<Registry>,
}

impl<L> Guarded<L> {
    pub fn new(inner: L, limits: Limits) -> Self {
        Self {
            inner,
            limits,
            registry: Arc::default(),
        }
    }
}

impl<L> axum::serve::Listener for Guarded<L>
where
    L: axum::serve::Listener,
    L::Io: Unpin,
{
    type Io = GuardedIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = self.inner.accept().await;
            let open = self.registry.open.load(Ordering::SeqCst);
            if open >= self.limits.max_connections && !self.registry.evict_one() {
                // Full of connections being served: refuse this one at once.
                drop(io);
                continue;
            }
            self.registry.open.fetch_add(1, Ordering::SeqCst);
            let shared = Arc::new(Shared::default());
            {
                let mut waiting = self
                    .registry
                    .waiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                waiting.retain(|c| Arc::strong_count(c) > 1 && !c.answered.load(Ordering::SeqCst));
                waiting.push_back(shared.clone());
            }
            let now = Instant::now();
            let io = GuardedIo {
                inner: io,
                shared,
                registry: self.registry.clone(),
                idle: self.limits.idle_timeout,
                header_deadline: now + self.limits.header_timeout,
                timer: Box::pin(tokio::time::sleep_until(
                    now + self.limits.header_timeout.min(self.limits.idle_timeout),
                )),
            };
            return (io, addr);
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// One guarded connection: fails with `TimedOut` past its deadline, or when evicted.
pub struct GuardedIo<T> {
    inner: T,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    idle: Duration,
    header_deadline: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<T> Drop for GuardedIo<T> {
    fn drop(&mut self) {
        self.registry.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T> GuardedIo<T> {
    /// Bytes moved: the idle clock starts again (the header deadline stays until the first answer).
    fn progressed(&mut self) {
        let mut next = Instant::now() + self.idle;
        if !self.shared.answered.load(Ordering::SeqCst) {
            next = next.min(self.header_deadline);
        }
        self.timer.as_mut().reset(next);
    }

    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.shared.answered.store(true, Ordering::SeqCst);
                    self.progressed();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // A reader that stopped reading: the write stalls until the idle deadline.
            Poll::Pending => self.pending(cx),
        }
    }

    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match self.check(cx) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Err when the connection must end now; registers the waker otherwise.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.shared.waker.register(cx.waker());
        if self.shared.evict.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "closed to make room for another connection",
            ));
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle or request headers too slow",
            ));
        }
        Ok(())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.pending(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
