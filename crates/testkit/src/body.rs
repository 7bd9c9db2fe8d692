//! The mocks' response body: whole, or trickled on the clock.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use unattended_core::Clock;

/// A mock's response body.
#[derive(Debug)]
pub struct MockBody {
    chunks: VecDeque<Bytes>,
    trickle: Option<(Clock, Duration, Option<Pin<Box<tokio::time::Sleep>>>)>,
    sent: Option<Arc<AtomicU64>>,
}

impl MockBody {
    /// The whole body at once.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self { chunks: VecDeque::from([bytes.into()]), trickle: None, sent: None }
    }

    /// No body.
    pub fn empty() -> Self {
        Self { chunks: VecDeque::new(), trickle: None, sent: None }
    }

    /// `chunks` one after the other, each added to `sent` when the reader takes it: how much
    /// of a big body a client really pulled before it stopped reading.
    pub fn counted(chunks: impl IntoIterator<Item = Bytes>, sent: Arc<AtomicU64>) -> Self {
        Self { chunks: chunks.into_iter().collect(), trickle: None, sent: Some(sent) }
    }

    /// `bytes` in `pieces` pieces, one every `every` on `clock`.
    pub fn trickle(bytes: &Bytes, pieces: usize, every: Duration, clock: Clock) -> Self {
        let size = bytes.len().div_ceil(pieces.max(1)).max(1);
        let chunks =
            (0..bytes.len()).step_by(size).map(|i| bytes.slice(i..(i + size).min(bytes.len())));
        Self { chunks: chunks.collect(), trickle: Some((clock, every, None)), sent: None }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.chunks.is_empty() {
            return Poll::Ready(None);
        }
        if let Some((clock, every, pending)) = &mut this.trickle {
            let sleep = pending.get_or_insert_with(|| Box::pin(clock.sleep(*every)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            *pending = None;
        }
        let chunk = this.chunks.pop_front();
        if let (Some(sent), Some(chunk)) = (&this.sent, &chunk) {
            sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.trickle {
            Some(_) => SizeHint::default(),
            None => SizeHint::with_exact(self.chunks.iter().map(|c| c.len() as u64).sum()),
        }
    }
}
