//! Live events from many subscriptions, handed out in stream order.
//!
//! The stream republishes stored events in sequence order, NATS delivers one
//! publisher's messages to a connection in order, and async-nats hands each message to
//! its subscription's channel one at a time, in the order they came. So once every
//! channel has been found empty in one pass, all messages taken so far precede any
//! message still to come: sorted by sequence, they are in stream order, with nothing
//! earlier left behind.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::Stream;

/// Notes that a wake happened while the subscriptions were being drained, and passes
/// it on to the task.
struct WakeFlag {
    woken: AtomicBool,
    task: Waker,
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.task.wake_by_ref();
    }
}

/// Takes every message the subscriptions hold, until a whole pass finds nothing new,
/// and returns them sorted by `key`; pending while there are none.
///
/// Must run in a task without a cooperative budget (`tokio::task::unconstrained`): a
/// channel that refuses to yield for budget reasons would look busy forever.
pub fn poll_batch<S, T>(live: &mut S, cx: &mut Context<'_>, key: impl Fn(&T) -> u64) -> Poll<Vec<T>>
where
    S: Stream<Item = T> + Unpin,
{
    let flag = Arc::new(WakeFlag {
        woken: AtomicBool::new(false),
        task: cx.waker().clone(),
    });
    let waker = Waker::from(Arc::clone(&flag));
    let mut drain = Context::from_waker(&waker);
    let mut batch = Vec::new();
    loop {
        flag.woken.store(false, Ordering::SeqCst);
        match Pin::new(&mut *live).poll_next(&mut drain) {
            Poll::Ready(Some(item)) => batch.push(item),
            Poll::Ready(None) => break,
            Poll::Pending if flag.woken.load(Ordering::SeqCst) => {}
            Poll::Pending => break,
        }
    }
    if batch.is_empty() {
        Poll::Pending
    } else {
        batch.sort_by_key(key);
        Poll::Ready(batch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures::stream::SelectAll;

    #[tokio::test]
    async fn items_ready_in_several_streams_come_out_sorted_in_one_batch() {
        let (a_tx, a_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let (b_tx, b_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let mut live = SelectAll::new();
        live.push(tokio_stream(a_rx));
        live.push(tokio_stream(b_rx));
        for (tx, value) in [(&a_tx, 1), (&b_tx, 2), (&a_tx, 4), (&b_tx, 3)] {
            tx.send(value).unwrap();
        }
        let batch = std::future::poll_fn(|cx| poll_batch(&mut live, cx, |v| *v)).await;
        assert_eq!(batch, vec![1, 2, 3, 4]);
        b_tx.send(5).unwrap();
        let batch = std::future::poll_fn(|cx| poll_batch(&mut live, cx, |v| *v)).await;
        assert_eq!(batch, vec![5]);
    }

    fn tokio_stream(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<u64>,
    ) -> Pin<Box<dyn Stream<Item = u64> + Send>> {
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
