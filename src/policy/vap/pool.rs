//! The threads CEL runs on: each with a big stack ([`expr::STACK_BYTES`]) and its own
//! CEL context, kept between evaluations (starting a thread costs more than evaluating
//! most policies). The caller waits for at most its time limit; a worker that is still
//! busy then is abandoned — CEL cannot be interrupted — and exits when its job is done.
//! At most [`MAX_WORKERS`] exist, abandoned ones included. Validating and mutating
//! policies share them: a worker runs whatever closure it is given.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use super::eval::{self, Decision, Output};
use super::expr;
use super::load::Loaded;
use crate::review::AdmissionRequest;

/// How many worker threads may exist at once, busy, idle or abandoned.
pub const MAX_WORKERS: usize = 32;

/// What a worker evaluates for ValidatingAdmissionPolicies: every `(binding, params)`
/// pair for one request.
pub(crate) struct Job {
    pub request: AdmissionRequest,
    pub namespace_object: Value,
    pub work: Vec<(usize, Option<Arc<Value>>)>,
}

/// Work for a worker: it gets the worker's root CEL context.
type Work = Box<dyn FnOnce(&cel::Context<'static>) + Send>;

pub(crate) struct Pool {
    pub(super) idle: Mutex<Vec<mpsc::Sender<Work>>>,
    live: Arc<AtomicUsize>,
}

/// Decrements the live count when a worker ends, however it ends.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pool {
    pub fn new() -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn spawn(&self) -> Result<mpsc::Sender<Work>, String> {
        if self.live.fetch_add(1, Ordering::SeqCst) >= MAX_WORKERS {
            self.live.fetch_sub(1, Ordering::SeqCst);
            return Err(format!(
                "all {MAX_WORKERS} CEL evaluation threads are busy or still running past their time limit"
            ));
        }
        let live = Live(self.live.clone());
        let (tx, rx) = mpsc::channel::<Work>();
        std::thread::Builder::new()
            .name("vap-eval".into())
            .stack_size(expr::STACK_BYTES)
            .spawn(move || {
                let _live = live;
                let root = expr::root_context();
                // Ends when the pool drops this worker: abandoned, or the pool is gone.
                while let Ok(work) = rx.recv() {
                    work(&root);
                }
            })
            .map_err(|e| format!("cannot start a CEL evaluation thread: {e}"))?;
        Ok(tx)
    }

    /// Runs `work` on a worker, waiting until `deadline` at most. `work` hands over its
    /// `n` outputs one by one with `send(index, output)` (false: nobody is waiting any
    /// more); the result has one slot per output, `None` for those not ready in time.
    pub fn run<T, F>(&self, n: usize, work: F, deadline: Instant) -> Result<Vec<Option<T>>, String>
    where
        T: Send + 'static,
        F: FnOnce(&cel::Context<'static>, &dyn Fn(usize, T) -> bool) + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let worker = self.dispatch(Box::new(move |root| {
            work(root, &|i, t| tx.send((i, t)).is_ok())
        }))?;
        let mut outputs = Outputs::new(n);
        while !outputs.complete() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((i, output)) => outputs.put(i, output),
                // Out of time: the worker is abandoned (dropped), not put back.
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(outputs.slots),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(died()),
            }
        }
        self.put_back(worker);
        Ok(outputs.slots)
    }

    /// [`run`](Self::run) for async callers: the caller's task waits for the outputs
    /// without holding its thread, so an async worker goes on with other tasks while CEL
    /// runs. One hand-off each way, as `run`.
    pub async fn run_async<T, F>(
        &self,
        n: usize,
        work: F,
        deadline: Instant,
    ) -> Result<Vec<Option<T>>, String>
    where
        T: Send + 'static,
        F: FnOnce(&cel::Context<'static>, &dyn Fn(usize, T) -> bool) + Send + 'static,
    {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let worker = self.dispatch(Box::new(move |root| {
            work(root, &|i, t| tx.send((i, t)).is_ok())
        }))?;
        let deadline = tokio::time::Instant::from_std(deadline);
        let mut outputs = Outputs::new(n);
        while !outputs.complete() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((i, output))) => outputs.put(i, output),
                Err(_elapsed) => return Ok(outputs.slots),
                Ok(None) => return Err(died()),
            }
        }
        self.put_back(worker);
        Ok(outputs.slots)
    }

    /// Hands `work` to an idle worker, or a new one.
    fn dispatch(&self, work: Work) -> Result<mpsc::Sender<Work>, String> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let worker = match idle {
            Some(w) => w,
            None => self.spawn()?,
        };
        worker.send(work).map_err(|_| died())?;
        Ok(worker)
    }

    fn put_back(&self, worker: mpsc::Sender<Work>) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(worker);
    }
}

fn died() -> String {
    "a CEL evaluation thread has died".into()
}

/// One slot per expected output, filled as they come.
struct Outputs<T> {
    slots: Vec<Option<T>>,
    pending: usize,
}

impl<T> Outputs<T> {
    fn new(n: usize) -> Self {
        Self {
            slots: (0..n).map(|_| None).collect(),
            pending: n,
        }
    }

    fn put(&mut self, i: usize, output: T) {
        if let Some(slot @ None) = self.slots.get_mut(i) {
            *slot = Some(output);
            self.pending -= 1;
        }
    }

    fn complete(&self) -> bool {
        self.pending == 0
    }
}

/// Converts the inputs once, then evaluates item after item, sending each output as soon
/// as it is ready.
pub(crate) fn work_on(
    loaded: &Loaded,
    root: &cel::Context,
    job: &Job,
    send: &dyn Fn(usize, Output) -> bool,
) {
    let scope = eval::request_scope(root, &job.request, &job.namespace_object);
    for (i, (binding, params)) in job.work.iter().enumerate() {
        let policy = loaded
            .bindings
            .get(*binding)
            .and_then(|b| loaded.policies.get(b.policy));
        let params = params
            .as_deref()
            .map_or(Ok(cel::Value::Null), expr::json_to_cel);
        let output = match (policy, &scope, params) {
            (Some(policy), Ok(scope), Ok(params)) => eval::evaluate(scope, policy, params),
            (None, _, _) => failed("no such binding".into()),
            (_, Err(e), _) => failed(format!("cannot convert the request to CEL: {e}")),
            (_, _, Err(e)) => failed(format!("cannot convert the params to CEL: {e}")),
        };
        if !send(i, output) {
            return; // The caller gave up waiting.
        }
    }
}

pub(crate) fn failed(message: String) -> Output {
    Output {
        decisions: vec![Decision::Error { index: 0, message }],
        annotations: Vec::new(),
    }
}
