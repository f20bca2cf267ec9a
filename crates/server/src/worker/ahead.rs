//! Upstream calls run ahead of the stage that stores their answers.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The answers of a stream of calls driven on a task of its own.
///
/// A stage that consumed a `buffer_unordered` stream of calls directly held its calls up while
/// it stored an answer: a finished call's slot is refilled only when the stream is polled again,
/// so with one call in flight the calls and the stores took turns, and with several a slot sat
/// idle for every store. Here the task refills a slot as soon as an answer is queued; the queue
/// (`queue` answers) bounds how far the calls get ahead of the stores.
pub(super) struct Ahead<T> {
    answers: mpsc::Receiver<T>,
    task: JoinHandle<()>,
}

pub(super) fn run_ahead<S>(calls: S, queue: usize) -> Ahead<S::Item>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    let (tx, answers) = mpsc::channel(queue.max(1));
    let task = tokio::spawn(async move {
        let mut calls = std::pin::pin!(calls);
        while let Some(answer) = calls.next().await {
            if tx.send(answer).await.is_err() {
                break;
            }
        }
    });
    Ahead { answers, task }
}

impl<T> Stream for Ahead<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.answers.poll_recv(cx)
    }
}

/// A stage that stops early (an error, a lost lease) stops its calls in flight with it.
impl<T> Drop for Ahead<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// With one call in flight, the next call starts while the consumer is still busy with
    /// the answer before it.
    #[tokio::test]
    async fn the_next_call_starts_while_an_answer_is_consumed() {
        let started = Arc::new(AtomicUsize::new(0));
        let counter = started.clone();
        let calls = futures::stream::iter(0..3)
            .map(move |i| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    i
                }
            })
            .buffered(1);
        let mut answers = run_ahead(calls, 1);
        assert_eq!(answers.next().await, Some(0));
        // Busy with answer 0: call 1 is under way meanwhile.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(started.load(Ordering::SeqCst) >= 2);
        assert_eq!(answers.next().await, Some(1));
        assert_eq!(answers.next().await, Some(2));
        assert_eq!(answers.next().await, None);
    }

    #[tokio::test]
    async fn dropping_the_answers_stops_the_calls() {
        let finished = Arc::new(AtomicUsize::new(0));
        let counter = finished.clone();
        let calls = futures::stream::iter(0..100)
            .map(move |_| {
                let counter = counter.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            })
            .buffered(1);
        let mut answers = run_ahead(calls, 1);
        answers.next().await;
        drop(answers);
        let at_drop = finished.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(finished.load(Ordering::SeqCst) <= at_drop + 1);
    }
}
