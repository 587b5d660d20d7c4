//! The threads CEL runs on: each with a big stack ([`expr::STACK_BYTES`]) and its own
//! CEL context, kept between evaluations (starting a thread costs more than evaluating
//! most policies). The caller waits for at most its time limit; a worker that is still
//! busy then is abandoned — CEL cannot be interrupted — and exits when its job is done.
//! At most [`MAX_WORKERS`] exist, abandoned ones included.

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

/// What a worker evaluates: every `(binding, params)` pair for one request.
pub(crate) struct Job {
    pub request: AdmissionRequest,
    pub namespace_object: Value,
    pub work: Vec<(usize, Option<Arc<Value>>)>,
}

type Reply = mpsc::Sender<(usize, Output)>;

pub(crate) struct Pool {
    loaded: Arc<Loaded>,
    pub(super) idle: Mutex<Vec<mpsc::Sender<(Job, Reply)>>>,
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
    pub fn new(loaded: Arc<Loaded>) -> Self {
        Self {
            loaded,
            idle: Mutex::new(Vec::new()),
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn spawn(&self) -> Result<mpsc::Sender<(Job, Reply)>, String> {
        if self.live.fetch_add(1, Ordering::SeqCst) >= MAX_WORKERS {
            self.live.fetch_sub(1, Ordering::SeqCst);
            return Err(format!(
                "all {MAX_WORKERS} CEL evaluation threads are busy or still running past their time limit"
            ));
        }
        let live = Live(self.live.clone());
        let loaded = self.loaded.clone();
        let (tx, rx) = mpsc::channel::<(Job, Reply)>();
        std::thread::Builder::new()
            .name("vap-eval".into())
            .stack_size(expr::STACK_BYTES)
            .spawn(move || {
                let _live = live;
                let root = expr::root_context();
                // Ends when the pool drops this worker: abandoned, or the pool is gone.
                while let Ok((job, reply)) = rx.recv() {
                    work_on(&loaded, &root, &job, &reply);
                }
            })
            .map_err(|e| format!("cannot start a CEL evaluation thread: {e}"))?;
        Ok(tx)
    }

    /// Evaluates `job` on a worker, waiting until `deadline` at most: one output per work
    /// item, `None` for those not finished in time.
    pub fn run(&self, job: Job, deadline: Instant) -> Result<Vec<Option<Output>>, String> {
        let n = job.work.len();
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let worker = match idle {
            Some(w) => w,
            None => self.spawn()?,
        };
        let (tx, rx) = mpsc::channel();
        worker
            .send((job, tx))
            .map_err(|_| "a CEL evaluation thread has died".to_string())?;
        let mut outputs: Vec<Option<Output>> = (0..n).map(|_| None).collect();
        let mut pending = n;
        while pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((i, output)) => {
                    if let Some(slot) = outputs.get_mut(i) {
                        *slot = Some(output);
                        pending -= 1;
                    }
                }
                // Out of time: the worker is abandoned (dropped), not put back.
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(outputs),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("a CEL evaluation thread has died".into())
                }
            }
        }
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(worker);
        Ok(outputs)
    }
}

/// Converts the inputs once, then evaluates item after item, sending each output as soon
/// as it is ready.
fn work_on(loaded: &Loaded, root: &cel::Context, job: &Job, reply: &Reply) {
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
        if reply.send((i, output)).is_err() {
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
