//! A future that stays pending once it has given its output.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

pin_project! {
    /// A future that stays pending once it has given its output, where the future it
    /// holds would panic if polled past its end (tower's `Oneshot` after a success, an
    /// `async` block).
    pub(crate) struct Fused<F> {
        #[pin]
        inner: Option<F>,
    }
}

impl<F> Fused<F> {
    pub(crate) fn new(inner: F) -> Self {
        Self { inner: Some(inner) }
    }
}

impl<F: Future> Future for Fused<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut inner = self.project().inner;
        let Some(future) = inner.as_mut().as_pin_mut() else {
            return Poll::Pending;
        };
        let output = std::task::ready!(future.poll(cx));
        inner.set(None);
        Poll::Ready(output)
    }
}
