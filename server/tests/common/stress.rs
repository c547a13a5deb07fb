//! Every page of the portal, as every persona, many times and concurrently: does every
//! response finish? A server-rendered page streams its body after the 200; a page whose body
//! never ends looks to its user like a page that never finishes loading. This loads each page
//! of the app's router as each persona, `rounds` times, at most `concurrency` at once, on
//! loopback only, and counts the responses that did not finish within the deadline (5 s),
//! with what had arrived when they stopped.
//!
//! A test binary starts many portals in one process, each test its own, while other tests
//! load pages; the stalls CI saw needed exactly that (a portal finding its routes while
//! another one rendered a page). With [`Options::starting_portals`] more portals start and
//! stop in this process, on a runtime of their own, while the pages load.
//!
//! [`ResourceProbe`] watches the same cause directly: whether a Leptos resource created in
//! the process loads while something else happens.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::portal::{self, Contractor, Persona, browser, call, pairs, submit};
use super::{Db, TestApp};

/// How hard to load.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Each round loads every page once as every persona.
    pub rounds: usize,
    /// Loads in flight at once.
    pub concurrency: usize,
    /// A response not finished (status, headers and the whole body) by then is unfinished.
    pub deadline: Duration,
    /// Start (and stop) other portals in this process while the pages load.
    pub starting_portals: bool,
}

impl Options {
    pub fn new(rounds: usize, concurrency: usize) -> Self {
        Self {
            rounds,
            concurrency,
            deadline: Duration::from_secs(5),
            starting_portals: false,
        }
    }
}

/// A page of the app, as each persona opens it.
struct Page {
    /// The route, for the report (`/status/:token`).
    route: &'static str,
    /// The path a persona opens: capability links are the real ones for the link holder and
    /// well-formed made-up ones for everybody else.
    path: Box<dyn Fn(Persona) -> String + Send + Sync>,
}

/// The portal under load, with something on every page: a request waiting for review, one
/// approved and provisioned (status, usage and reveal links), one not confirmed yet (verify
/// link), and a signed-in client per persona.
pub struct Site {
    pub app: TestApp,
    clients: BTreeMap<Persona, reqwest::Client>,
    pages: Vec<Page>,
}

/// One response that did not finish in time.
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub route: &'static str,
    pub path: String,
    pub persona: Persona,
    /// `None` when not even the status line arrived.
    pub status: Option<StatusCode>,
    /// Bytes of body received before the deadline.
    pub received: usize,
    /// The end of what arrived, to see where the page stopped.
    pub tail: String,
}

/// One response that finished but is wrong: a 5xx, a transport error, or a body cut short.
#[derive(Debug, Clone)]
pub struct Broken {
    pub route: &'static str,
    pub path: String,
    pub persona: Persona,
    pub what: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub loads: usize,
    pub finished: usize,
    pub unfinished: Vec<Unfinished>,
    pub broken: Vec<Broken>,
    /// Loads per route and persona, with the statuses seen.
    pub statuses: BTreeMap<(&'static str, Persona), BTreeMap<u16, usize>>,
    pub elapsed: Duration,
    /// Other portals started in this process while the pages loaded.
    pub portals_started: usize,
    /// The slowest finished response.
    pub slowest: Duration,
}

impl Report {
    fn record(
        &mut self,
        (route, persona, path, outcome): (&'static str, Persona, String, Outcome),
    ) {
        self.loads += 1;
        match outcome {
            Outcome::Finished {
                status,
                took,
                wrong,
            } => {
                self.finished += 1;
                self.slowest = self.slowest.max(took);
                *self
                    .statuses
                    .entry((route, persona))
                    .or_default()
                    .entry(status.as_u16())
                    .or_insert(0) += 1;
                if let Some(what) = wrong {
                    self.broken.push(Broken {
                        route,
                        path,
                        persona,
                        what,
                    });
                }
            }
            Outcome::Unfinished { status, received } => self.unfinished.push(Unfinished {
                route,
                path,
                persona,
                status,
                received: received.len(),
                tail: tail(&received, 300),
            }),
            Outcome::Failed(what) => self.broken.push(Broken {
                route,
                path,
                persona,
                what,
            }),
        }
    }

    /// Unfinished responses per route, e.g. `{"/admin": 3}`.
    pub fn unfinished_by_route(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for u in &self.unfinished {
            *counts.entry(u.route).or_insert(0) += 1;
        }
        counts
    }

    /// A summary for people: totals, then every unfinished and broken response.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} page loads in {:.1} s ({:.0}/s), {} routes x {} personas; {} finished, {} unfinished, {} broken; slowest finished {} ms; {} other portals started meanwhile",
            self.loads,
            self.elapsed.as_secs_f64(),
            self.loads as f64 / self.elapsed.as_secs_f64().max(0.001),
            self.statuses
                .keys()
                .map(|(r, _)| *r)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            Persona::ALL.len(),
            self.finished,
            self.unfinished.len(),
            self.broken.len(),
            self.slowest.as_millis(),
            self.portals_started,
        );
        if !self.unfinished.is_empty() {
            let _ = writeln!(s, "unfinished by route: {:?}", self.unfinished_by_route());
        }
        for u in self.unfinished.iter().take(20) {
            let _ = writeln!(
                s,
                "UNFINISHED {} as {:?}: status {:?}, {} bytes of body, ending ...{}",
                u.path,
                u.persona,
                u.status.map(|s| s.as_u16()),
                u.received,
                u.tail
            );
        }
        for b in self.broken.iter().take(20) {
            let _ = writeln!(s, "BROKEN {} as {:?}: {}", b.path, b.persona, b.what);
        }
        s
    }
}

/// A well-formed capability token that opens nothing.
fn made_up_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn fixed(path: String) -> Box<dyn Fn(Persona) -> String + Send + Sync> {
    Box::new(move |_| path.clone())
}

/// `/<prefix>/<token><suffix>`: the holder's own link, a made-up one for everybody else.
fn capability(real: &str, suffix: &'static str) -> Box<dyn Fn(Persona) -> String + Send + Sync> {
    let (prefix, _) = real.rsplit_once('/').unwrap_or(("", real));
    let prefix = prefix.to_string();
    let mine = format!("{real}{suffix}");
    Box::new(move |persona| {
        if persona == Persona::LinkHolder {
            mine.clone()
        } else {
            format!("{prefix}/{}{suffix}", made_up_token())
        }
    })
}

async fn wait_for_grant(app: &TestApp, request_id: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now: Option<String> =
            sqlx::query_scalar("SELECT state FROM grants WHERE request_id = $1")
                .bind(request_id)
                .fetch_optional(app.db.pool())
                .await
                .expect("read grants");
        if now.as_deref() == Some(state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the grant is {now:?}, not {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Site {
    /// Starts a portal on `kind` (provisioning workers on, one role per person) and fills
    /// it; `None` when PostgreSQL is unavailable outside CI.
    pub async fn build(kind: Db) -> Option<Site> {
        let app = TestApp::spawn_with(kind, |config| {
            config.roles = portal::one_role_each();
            config.provisioning_workers = 1;
        })
        .await?;
        let waiting = submit(&app, "Waiting Stress Ltd", true).await;
        let approved = submit(&app, "Approved Stress Ltd", true).await;
        let unconfirmed = submit(&app, "Unconfirmed Stress Ltd", false).await;
        let clients = portal::personas(&app).await;

        let form = portal::approval_form(&approved.request_id, "");
        let (status, body) =
            call(&app, &clients[&Persona::Approver], "decide", &pairs(&form)).await;
        assert_eq!(status, StatusCode::OK, "decide: {body}");
        wait_for_grant(&app, &approved.request_id, "ready").await;
        let mail = portal::mail_to(&app, &approved.email, "Your API credential")
            .await
            .expect("the reveal link is mailed when the grant is ready");
        let reveal = portal::link_path(&mail, "/reveal/").expect("a reveal link in the mail");

        let pages = pages(&waiting, &approved, &unconfirmed, &reveal);
        Some(Site {
            app,
            clients,
            pages,
        })
    }

    /// Every route of the app (see `app::App`), as opened in a browser.
    pub fn routes(&self) -> Vec<&'static str> {
        self.pages.iter().map(|p| p.route).collect()
    }

    /// Loads every page as every persona, `options.rounds` times.
    pub async fn load(&self, options: Options) -> Report {
        let mut loads = Vec::new();
        for _ in 0..options.rounds {
            for page in &self.pages {
                for persona in Persona::ALL {
                    loads.push((page.route, persona, (page.path)(persona)));
                }
            }
        }

        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        // On a runtime of its own, as another test of the same binary runs on its own.
        let starter = options.starting_portals.then(|| {
            let (stop, started) = (stop.clone(), started.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the other portals");
                runtime.block_on(async move {
                    while !stop.load(Ordering::Relaxed) {
                        start_and_stop_a_portal().await;
                        started.fetch_add(1, Ordering::Relaxed);
                    }
                });
            })
        });

        let began = Instant::now();
        let mut report = Report::default();
        let mut tasks = tokio::task::JoinSet::new();
        for (route, persona, path) in loads {
            while tasks.len() >= options.concurrency.max(1) {
                if let Some(done) = tasks.join_next().await {
                    report.record(done.expect("a load task"));
                }
            }
            let client = self.clients[&persona].clone();
            let url = self.app.at(&path);
            tasks.spawn(async move {
                let outcome = load_one(&client, &url, options.deadline).await;
                (route, persona, path, outcome)
            });
        }
        while let Some(done) = tasks.join_next().await {
            report.record(done.expect("a load task"));
        }
        report.elapsed = began.elapsed();

        stop.store(true, Ordering::Relaxed);
        if let Some(starter) = starter {
            tokio::task::spawn_blocking(move || starter.join())
                .await
                .expect("join the portal starter")
                .expect("the portal starter");
        }
        report.portals_started = started.load(Ordering::Relaxed);
        report
    }
}

fn pages(
    waiting: &Contractor,
    approved: &Contractor,
    unconfirmed: &Contractor,
    reveal: &str,
) -> Vec<Page> {
    vec![
        Page {
            route: "/",
            path: fixed("/".into()),
        },
        Page {
            route: "/request",
            path: fixed("/request".into()),
        },
        Page {
            route: "/admin",
            path: fixed("/admin".into()),
        },
        Page {
            route: "/admin/requests/:id (waiting)",
            path: fixed(format!("/admin/requests/{}", waiting.request_id)),
        },
        Page {
            route: "/admin/requests/:id (provisioned)",
            path: fixed(format!("/admin/requests/{}", approved.request_id)),
        },
        Page {
            route: "/admin/usage",
            path: fixed("/admin/usage".into()),
        },
        Page {
            route: "/admin/catalog",
            path: fixed("/admin/catalog".into()),
        },
        Page {
            route: "/admin/settings",
            path: fixed("/admin/settings".into()),
        },
        Page {
            route: "/audit",
            path: fixed(format!("/audit?target_id={}", approved.request_id)),
        },
        Page {
            route: "/audit/entries/:seq",
            path: fixed("/audit/entries/1".into()),
        },
        Page {
            route: "/status/:token",
            path: capability(&approved.status_path, ""),
        },
        Page {
            route: "/status/:token/usage",
            path: capability(&approved.status_path, "/usage"),
        },
        Page {
            route: "/verify/:token",
            path: capability(&unconfirmed.verify_path, ""),
        },
        Page {
            route: "/reveal/:token",
            path: capability(reveal, ""),
        },
        Page {
            route: "/outbox",
            path: fixed("/outbox".into()),
        },
        Page {
            route: "/auth/failed",
            path: fixed("/auth/failed".into()),
        },
        Page {
            route: "(not found)",
            path: fixed("/no/such/page".into()),
        },
    ]
}

enum Outcome {
    Finished {
        status: StatusCode,
        took: Duration,
        /// What is wrong with the page, if anything (see [`wrong`]).
        wrong: Option<String>,
    },
    Unfinished {
        status: Option<StatusCode>,
        received: Vec<u8>,
    },
    Failed(String),
}

/// GETs `url`; the status, headers and whole body must arrive within `deadline`.
async fn load_one(client: &reqwest::Client, url: &str, deadline: Duration) -> Outcome {
    let began = Instant::now();
    let until = tokio::time::Instant::now() + deadline;
    let response = match tokio::time::timeout_at(until, client.get(url).send()).await {
        Err(_) => {
            return Outcome::Unfinished {
                status: None,
                received: Vec::new(),
            };
        }
        Ok(Err(e)) => return Outcome::Failed(format!("request failed: {e}")),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    let mut response = response;
    let mut received = Vec::new();
    loop {
        match tokio::time::timeout_at(until, response.chunk()).await {
            Err(_) => {
                return Outcome::Unfinished {
                    status: Some(status),
                    received,
                };
            }
            Ok(Err(e)) => {
                return Outcome::Failed(format!(
                    "{status}, the body broke off after {} bytes: {e}",
                    received.len()
                ));
            }
            Ok(Ok(Some(chunk))) => received.extend_from_slice(&chunk),
            Ok(Ok(None)) => break,
        }
    }
    Outcome::Finished {
        status,
        took: began.elapsed(),
        wrong: wrong(status, &String::from_utf8_lossy(&received)),
    }
}

/// What is wrong with a finished page, if anything: a server error, or a document that
/// ended before its streamed parts did.
fn wrong(status: StatusCode, body: &str) -> Option<String> {
    if status.is_server_error() {
        return Some(format!("{status}: ...{}", tail(body.as_bytes(), 300)));
    }
    if !body.contains("</html>") {
        return Some(format!(
            "{status}, the document has no </html>: ...{}",
            tail(body.as_bytes(), 300)
        ));
    }
    // The last thing a streamed page sends, after every resource it waited for.
    if !body.contains("__INCOMPLETE_CHUNKS") {
        return Some(format!(
            "{status}, the streamed resources never finished: ...{}",
            tail(body.as_bytes(), 300)
        ));
    }
    None
}

fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

/// Starts a portal on SQLite, waits until it serves a page, and stops it: what another
/// test in the same binary does.
pub async fn start_and_stop_a_portal() {
    let app = TestApp::spawn(Db::Sqlite)
        .await
        .expect("SQLite is always available");
    let client = browser();
    for _ in 0..100 {
        if let Ok(response) = client.get(app.at("/healthz")).send().await
            && response.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), app.stop()).await;
}

/// Watches, from a thread and runtime of its own, whether a Leptos resource created in this
/// process loads: it creates one resource after another (each resolves at once unless
/// something in the process suppresses resource loads, as Leptos's route generation does)
/// until [`ResourceProbe::finish`]. Start it once a portal has started.
pub struct ResourceProbe {
    stop: Arc<AtomicBool>,
    created: Arc<AtomicUsize>,
    not_loaded: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl ResourceProbe {
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let created = Arc::new(AtomicUsize::new(0));
        let not_loaded = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn({
            let (stop, created, not_loaded) = (stop.clone(), created.clone(), not_loaded.clone());
            move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the probe");
                runtime.block_on(async move {
                    use leptos::prelude::{ArcAsyncDerived, ArcResource, GetUntracked};
                    // Resources spawn their loading task on Leptos's executor (Tokio's, set
                    // for the process when the first portal started).
                    while !stop.load(Ordering::Relaxed) {
                        let owner = leptos::reactive::owner::Owner::new();
                        // An `async` block that is ready when first polled: the resource
                        // holds its value as soon as it is created, unless loads are
                        // suppressed (then its future waits forever).
                        let loaded = owner.with(|| {
                            let resource = ArcResource::new(|| (), |_| async { true });
                            // Its value, read from the async value underneath (reading the
                            // resource outside a <Suspense> would log a warning each time).
                            let data: &ArcAsyncDerived<bool> = &resource;
                            data.get_untracked().is_some()
                        });
                        drop(owner);
                        if !loaded {
                            not_loaded.fetch_add(1, Ordering::Relaxed);
                        }
                        created.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                })
            }
        });
        Self {
            stop,
            created,
            not_loaded,
            thread,
        }
    }

    /// Resources created so far.
    pub fn created(&self) -> usize {
        self.created.load(Ordering::Relaxed)
    }

    /// Of those, the ones that did not load.
    pub fn not_loaded(&self) -> usize {
        self.not_loaded.load(Ordering::Relaxed)
    }

    pub async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("join the probe")
            .expect("the probe thread");
    }
}
