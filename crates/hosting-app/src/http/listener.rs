//! Serving one listener (public, its TLS twin, or management): accepting at most
//! `HOSTING_MAX_CONNECTIONS` connections at once, closing connections that are slow to
//! send a request's headers or idle too long between requests, and a graceful shutdown
//! that stops accepting and lets the requests in flight finish.
//!
//! SECURITY: `axum::serve` has none of these limits. A client that sent half a request
//! line and went silent held its connection, and a file descriptor, forever; a few
//! thousand of them exhausted the process.
//!
//! Why not hyper's own `header_read_timeout`: hyper (1.x) restarts it as soon as a
//! keep-alive connection waits for its next request, so it also closes idle connections
//! after the same few seconds. Nginx keeps its upstream connections for 60 s; closing
//! them earlier races its next request on them (a 502 it cannot retry for a POST). Here
//! the two clocks are separate: [`WatchedIo`] runs the header clock while bytes of a
//! request head are arriving (or from connecting), the idle clock while nothing is in
//! flight, and no read clock while a request is being handled (the request timeouts of
//! the routers cover that). A write the client takes no byte of for the idle timeout
//! fails too (a client that stops reading a large response).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::Router;
use futures::future::BoxFuture;
use futures::task::AtomicWaker;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::Config;

/// The limits every connection of a listener is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From connecting, or from the first byte of a later request, to the end of its headers.
    pub header_read_timeout: Duration,
    /// Between the end of a response and the first byte of the next request; also how
    /// long a write may wait for the client to take a byte.
    pub idle_timeout: Duration,
    /// Open connections; the next one is accepted only when one closes.
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            header_read_timeout: config.listeners.header_read_timeout,
            idle_timeout: config.listeners.idle_timeout,
            max_connections: config.listeners.max_connections,
        }
    }
}

/// Serves `router` on `listener` until `stop` resolves, then stops accepting, lets every
/// connection finish its request in flight (idle ones close at once) and returns.
///
/// Requests carry `ConnectInfo<SocketAddr>` (the peer), which the rate limits read.
/// Over `max_connections`, the loop stops accepting: new connections wait in the
/// kernel's accept queue (they are not refused), so a burst is served late rather than
/// failed, while the number of sockets the process holds stays bounded.
pub async fn serve(
    listener: TcpListener,
    handler: impl Handler,
    limits: Limits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, None, handler, limits, stop).await
}

/// [`serve`] over TLS: each connection's handshake runs on its own task, within the
/// header read timeout (the clock starts at accept), and its requests carry [`Secure`].
pub async fn serve_tls(
    listener: TcpListener,
    tls: TlsAcceptor,
    handler: impl Handler,
    limits: Limits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, Some(tls), handler, limits, stop).await
}

/// Marks a request that came over TLS (the app's own HTTPS listener).
#[derive(Debug, Clone, Copy)]
pub struct Secure;

async fn serve_with(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: impl Handler,
    limits: Limits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 and HTTP/2 (prior knowledge, or chosen by ALPN over TLS), as `axum::serve` did.
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    back_off_after(e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Small responses go out at once rather than wait for an ACK (Nagle).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let activity = Arc::new(Activity::default());
        // Under TLS the clocks watch the encrypted bytes, so a slow handshake counts
        // against the header read timeout like a slow request head.
        let io = WatchedIo::new(stream, limits, activity.clone());
        let service = ConnectionService {
            handler: handler.clone(),
            peer: ConnectInfo(peer),
            activity,
            secure: tls.is_some(),
        };
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(&builder, io, service, watcher, peer).await,
                Some(tls) => match tls.accept(io).await {
                    Ok(io) => serve_connection(&builder, io, service, watcher, peer).await,
                    Err(e) => {
                        // Unknown names without a platform certificate end here too.
                        crate::tls::handshake::failed(&e);
                        tracing::debug!(error = %e, client.address = %peer, "TLS handshake failed");
                    }
                },
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves the requests of one connection (plain or TLS) until it ends.
async fn serve_connection<I, H>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: ConnectionService<H>,
    watcher: Watcher,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection).await {
        // Timeouts, resets and malformed requests: the client's doing, not ours.
        tracing::debug!(error = %e, client.address = %peer, "connection ended");
    }
}

/// After a failed `accept`: at once for a connection the peer already gave up, after a
/// second for the process running out of descriptors or memory (spinning would not help).
async fn back_off_after(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %error, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// What one connection is doing, shared by its requests and its [`WatchedIo`].
#[derive(Default)]
struct Activity {
    /// Requests whose response has not been sent completely.
    in_flight: AtomicUsize,
    /// Requests started on this connection so far.
    started: AtomicU64,
    /// The connection's reader, woken when the last request in flight ends so its idle
    /// clock starts even if nothing else wakes it (HTTP/2).
    reader: AtomicWaker,
}

/// Held by a request until its response body is dropped (sent or abandoned).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.started.fetch_add(1, Ordering::AcqRel);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.reader.wake();
        }
    }
}

/// What answers the requests of a listener: a router, or the public listener's
/// dispatch by host (which keeps site requests out of the API's router).
pub trait Handler: Clone + Send + Sync + 'static {
    fn handle(&self, request: Request<Body>) -> BoxFuture<'static, Response<Body>>;
}

impl Handler for Router {
    fn handle(&self, request: Request<Body>) -> BoxFuture<'static, Response<Body>> {
        let router = self.clone();
        Box::pin(async move {
            match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
    }
}

/// The handler as a hyper service for one connection.
#[derive(Clone)]
struct ConnectionService<H> {
    handler: H,
    peer: ConnectInfo<SocketAddr>,
    activity: Arc<Activity>,
    /// The connection is the TLS listener's.
    secure: bool,
}

impl<H: Handler> hyper::service::Service<Request<Incoming>> for ConnectionService<H> {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<TrackedBody>, Infallible>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::begin(&self.activity);
        request.extensions_mut().insert(self.peer);
        if self.secure {
            request.extensions_mut().insert(Secure);
        }
        let response = self.handler.handle(request.map(Body::new));
        Box::pin(async move {
            Ok(response.await.map(|body| TrackedBody {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    // Forwarded: hyper derives Content-Length from it.
    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Which clock runs on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request head is expected or arriving: the header clock.
    AwaitingHead,
    /// A request is being handled: no clock.
    Busy,
    /// Between requests: the idle clock.
    Idle,
}

/// The connection's socket, failing a read with `TimedOut` when the clock of its
/// [`Phase`] runs out while the read waits; hyper then drops the connection.
struct WatchedIo {
    stream: TcpStream,
    limits: Limits,
    activity: Arc<Activity>,
    phase: Phase,
    /// `activity.started` when the phase was last decided.
    seen_started: u64,
    deadline: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    /// Runs while a write waits for the client to take bytes (made on the first wait).
    write_timer: Option<Pin<Box<Sleep>>>,
    write_waiting: bool,
}

impl WatchedIo {
    fn new(stream: TcpStream, limits: Limits, activity: Arc<Activity>) -> WatchedIo {
        // SECURITY: the header clock starts at accept: a socket that never sends a byte
        // is as much a slow client as one that stops halfway.
        let deadline = Instant::now() + limits.header_read_timeout;
        WatchedIo {
            stream,
            limits,
            activity,
            phase: Phase::AwaitingHead,
            seen_started: 0,
            deadline: Some(deadline),
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            write_timer: None,
            write_waiting: false,
        }
    }

    /// A write's outcome, failed with `TimedOut` once the client has taken no byte for
    /// the idle timeout.
    ///
    /// SECURITY: the slow-read attack: a client that requests a large file and never
    /// reads it holds its connection (and the file's stream) as long as it likes, since
    /// its request stays in flight. A client on a slow link still takes bytes now and then.
    fn watch_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.write_waiting = false;
            return result;
        }
        let deadline = Instant::now() + self.limits.idle_timeout;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.write_waiting {
            self.write_waiting = true;
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no bytes within the idle timeout (HOSTING_IDLE_TIMEOUT)",
            )));
        }
        Poll::Pending
    }

    fn enter(&mut self, phase: Phase, limit: Option<Duration>) {
        self.phase = phase;
        self.deadline = limit.map(|limit| Instant::now() + limit);
    }

    /// Follows the requests: busy while one is in flight, idle once the last one ended.
    fn follow_requests(&mut self) {
        let in_flight = self.activity.in_flight.load(Ordering::Acquire);
        let started = self.activity.started.load(Ordering::Acquire);
        if in_flight > 0 {
            self.seen_started = started;
            if self.phase != Phase::Busy {
                self.enter(Phase::Busy, None);
            }
        } else if self.phase == Phase::Busy || started != self.seen_started {
            self.seen_started = started;
            self.enter(Phase::Idle, Some(self.limits.idle_timeout));
        }
    }

    /// Whether the current phase's clock has run out (registering the wake-up if not).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        self.timer.as_mut().poll(cx).is_ready()
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.follow_requests();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                // SECURITY: the header clock starts at the first byte of a request and
                // is not restarted by later bytes, so dribbling a byte at a time does
                // not keep a connection open.
                if buf.filled().len() > before && this.phase == Phase::Idle {
                    this.enter(Phase::AwaitingHead, Some(this.limits.header_read_timeout));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.activity.reader.register(cx.waker());
                if this.expired(cx) {
                    let which = if this.phase == Phase::Idle {
                        "idle timeout (HOSTING_IDLE_TIMEOUT)"
                    } else {
                        "header read timeout (HOSTING_HEADER_READ_TIMEOUT)"
                    };
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, which)));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.watch_write(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.watch_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_flush(cx);
        this.watch_write(cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
