//! The set of running `remote_write` destinations, changed by a reload as Prometheus does:
//! a destination whose settings changed is reconfigured in place (same queue, nothing lost), a
//! removed one stops after queueing what the store gave it (its queue stays on disk), an added
//! one starts. A destination is known by its `name` (its queue directory): renaming one is a
//! removal and an addition.
//!
//! One task ([`Senders::run`]) supervises the destinations; it ends when promfed stops (the
//! store closes every destination's input, and the reloader goes away).

use super::send::{Channels, Destination, SendError};
use crate::config::RemoteWrite;
use crate::merge::{Command, Emitted, Store, StoreHandle};
use crate::telemetry::{Metrics, RemoteLabels};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{Id, JoinSet};

/// What a destination task returns: its name and how it ended.
type Ended = (String, Result<(), String>);

/// A request to apply a new `remote_write` list.
struct Request {
    config: Vec<RemoteWrite>,
    reply: oneshot::Sender<Result<(), String>>,
}

/// Asks the running [`Senders`] to apply a new list.
#[derive(Clone)]
pub struct SendersHandle {
    tx: mpsc::Sender<Request>,
}

impl SendersHandle {
    /// Applies `config`. A new destination that cannot be opened (its queue directory, its TLS
    /// files) fails the reload before anything changed; a changed one whose new settings fail
    /// stops promfed, as any destination failure does.
    pub async fn reconfigure(&self, config: Vec<RemoteWrite>) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request { config, reply }).await.map_err(|_| "promfed is shutting down".to_owned())?;
        rx.await.map_err(|_| "promfed is shutting down".to_owned())?
    }
}

/// One running destination.
struct Running {
    /// Its settings as last applied (compared as text: they hold compiled regexes).
    fingerprint: String,
    control: mpsc::Sender<RemoteWrite>,
    task: Id,
    labels: RemoteLabels,
}

/// The destinations and their supervisor.
pub struct Senders {
    running: HashMap<String, Running>,
    tasks: JoinSet<Ended>,
    requests: mpsc::Receiver<Request>,
    store: StoreHandle,
    metrics: Arc<Metrics>,
}

fn fingerprint(rw: &RemoteWrite) -> String {
    format!("{rw:?}")
}

impl Senders {
    /// Opens the destinations of `config` (an error stops promfed from starting) and connects
    /// them to `store`, which is not running yet.
    pub fn start(
        config: &[RemoteWrite],
        store: &mut Store,
        handle: StoreHandle,
        metrics: Arc<Metrics>,
    ) -> Result<(Senders, SendersHandle), SendError> {
        let (tx, requests) = mpsc::channel(1);
        let mut senders = Senders { running: HashMap::new(), tasks: JoinSet::new(), requests, store: handle, metrics };
        for rw in config {
            let input = senders.launch(rw)?;
            store.emit_to(rw.name.clone(), input);
        }
        Ok((senders, SendersHandle { tx }))
    }

    /// Opens and spawns `rw`; returns the channel the store feeds it through.
    fn launch(&mut self, rw: &RemoteWrite) -> Result<mpsc::Sender<Arc<Emitted>>, SendError> {
        let opened = Destination::open(rw, self.metrics.clone())?;
        Ok(self.spawn(rw, opened))
    }

    fn spawn(
        &mut self,
        rw: &RemoteWrite,
        (destination, channels): (Destination, Channels),
    ) -> mpsc::Sender<Arc<Emitted>> {
        let Channels { input, control } = channels;
        let name = rw.name.clone();
        let task = self.tasks.spawn(async move { (name, destination.run().await) }).id();
        let labels = RemoteLabels { remote_name: rw.name.clone(), url: rw.url.clone() };
        self.running.insert(rw.name.clone(), Running { fingerprint: fingerprint(rw), control, task, labels });
        input
    }

    /// Supervises the destinations and applies reloads until promfed stops. A destination that
    /// fails is an error (the supervisor above shuts promfed down).
    pub async fn run(mut self) -> Result<(), String> {
        let mut requests_open = true;
        loop {
            tokio::select! {
                request = self.requests.recv(), if requests_open => match request {
                    Some(Request { config, reply }) => {
                        let result = self.apply(config).await;
                        let _ = reply.send(result);
                    }
                    None => requests_open = false,
                },
                joined = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    if let Some(joined) = joined {
                        self.finished(joined)?;
                    }
                }
                else => break,
            }
        }
        Ok(())
    }

    fn finished(&mut self, joined: Result<(Id, Ended), tokio::task::JoinError>) -> Result<(), String> {
        match joined {
            Ok((id, (name, result))) => {
                if self.running.get(&name).is_some_and(|r| r.task == id) {
                    self.running.remove(&name);
                }
                result
            }
            Err(e) => Err(format!("remote_write destination panicked: {e}")),
        }
    }

    async fn apply(&mut self, config: Vec<RemoteWrite>) -> Result<(), String> {
        // New destinations are opened first: if one cannot be (its queue directory, its TLS
        // files), nothing has changed yet.
        let mut opened = Vec::new();
        for rw in config.iter().filter(|rw| !self.running.contains_key(&rw.name)) {
            opened.push((rw, Destination::open(rw, self.metrics.clone()).map_err(|e| e.to_string())?));
        }
        let removed: Vec<String> =
            self.running.keys().filter(|name| !config.iter().any(|rw| &rw.name == *name)).cloned().collect();
        // Removed first: a destination removed and another added cannot share a queue (the
        // directory is the name), but stop them before anything new starts anyway.
        if !removed.is_empty() {
            let keep: Vec<String> = self.running.keys().filter(|n| !removed.contains(n)).cloned().collect();
            self.command(Command::SetEmitTo { keep, add: Vec::new() }).await?;
            for name in &removed {
                let Some(r) = self.running.remove(name) else { continue };
                // Its input is closed: it queues what it has, waits a little for requests in
                // flight and persists its position.
                while let Some(joined) = self.tasks.join_next_with_id().await {
                    let done = joined.as_ref().is_ok_and(|(id, _)| *id == r.task);
                    self.finished(joined)?;
                    if done {
                        break;
                    }
                }
                self.metrics.remote_storage.forget(&r.labels);
                tracing::info!(remote_name = %name, "remote_write destination removed by reload");
            }
        }
        let mut add = Vec::new();
        for rw in &config {
            match self.running.get_mut(&rw.name) {
                Some(r) if r.fingerprint == fingerprint(rw) => {}
                Some(r) => {
                    r.control.send(rw.clone()).await.map_err(|_| format!("remote_write {} has stopped", rw.name))?;
                    r.fingerprint = fingerprint(rw);
                    r.labels = RemoteLabels { remote_name: rw.name.clone(), url: rw.url.clone() };
                }
                None => {}
            }
        }
        for (rw, destination) in opened {
            let input = self.spawn(rw, destination);
            tracing::info!(remote_name = %rw.name, url = %rw.url, "remote_write destination added by reload");
            add.push((rw.name.clone(), input));
        }
        if !add.is_empty() {
            let keep: Vec<String> =
                self.running.keys().filter(|n| !add.iter().any(|(a, _)| a == *n)).cloned().collect();
            self.command(Command::SetEmitTo { keep, add }).await?;
        }
        Ok(())
    }

    async fn command(&self, command: Command) -> Result<(), String> {
        match self.store.command(command).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}
