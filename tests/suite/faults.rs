//! The fault suite: a Jepsen-style run of real processes on loopback. A three-node NATS
//! cluster (the stream at three replicas), a Postgres instance of its own, two
//! API-and-gateway processes and a projector-only process. Writers send uniquely
//! numbered messages to one group, retrying each on the same `client_id` as clients are
//! told to; readers follow the group over WebSockets, dropping and resuming their
//! connections; meanwhile the nemesis kills (SIGKILL) an API process, the projector or a
//! NATS node, or restarts Postgres, one at a time, and starts it again.
//!
//! Then every value is classified (ok, lost, duplicated, unexpected, or given up on and
//! stored or not), every reader's stream and unread count is compared with the history,
//! the chats read model is verified against a rebuild, and the table is printed.
//!
//! Run by `scripts/faults` (ignored by a plain test run): `FAULTS_SECONDS` sets how long
//! the faults go on (default 40: the short run of CI; the long one by hand).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TempDir;
use common::http::{User, call, sign_up};
use common::nats::{PrivateCluster, free_port};
use common::ws::KEYS;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const WRITERS: usize = 4;
const READERS: usize = 3;
/// How long a writer keeps retrying one value before it gives up on it.
const GIVE_UP_AFTER: Duration = Duration::from_secs(40);

/// A Postgres instance of the suite's own, to restart under load.
struct PrivatePostgres {
    dir: TempDir,
    port: u16,
    bin: PathBuf,
}

impl PrivatePostgres {
    async fn start() -> Self {
        let bin = postgres_bin();
        let dir = TempDir(std::env::temp_dir().join(format!(
            "natter-faults-pg-{}",
            uuid::Uuid::now_v7().simple()
        )));
        std::fs::create_dir_all(&dir.0).unwrap();
        let postgres = Self {
            dir,
            port: free_port(),
            bin,
        };
        as_postgres_owner(&postgres.dir.0);
        postgres.run(
            "initdb",
            &[
                "-D",
                &postgres.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        postgres.pg_ctl_start();
        postgres
    }

    fn data(&self) -> String {
        self.dir.0.join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.0.display()
        );
        let log = self.dir.0.join("postgres.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Stops Postgres at once (its clients see their connections cut), then starts it.
    fn restart(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        self.pg_ctl_start();
    }

    /// Runs a Postgres program, as the `postgres` user when this is root (initdb
    /// refuses root).
    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let status = if is_root() {
            std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .stdout(Stdio::null())
                .status()
        } else {
            std::process::Command::new(&program)
                .args(args)
                .stdout(Stdio::null())
                .status()
        }
        .unwrap();
        assert!(status.success(), "{} {args:?} failed", program.display());
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

fn as_postgres_owner(dir: &Path) {
    if is_root() {
        let status = std::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Debian's Postgres programs (the newest installed), or `NATTER_FAULTS_PG_BIN`.
fn postgres_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("NATTER_FAULTS_PG_BIN") {
        return bin.into();
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Postgres server programs under /usr/lib/postgresql")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql")
}

/// One `natter` process of the suite, to kill and start again.
struct Natter {
    name: &'static str,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<tokio::process::Child>,
    port: u16,
}

impl Natter {
    fn new(name: &'static str, roles: &str, base: &[(String, String)], dir: &Path) -> Self {
        let port = free_port();
        let mut env = base.to_vec();
        env.push(("NATTER_ROLES".into(), roles.into()));
        env.push(("NATTER_LISTEN".into(), format!("127.0.0.1:{port}")));
        Self {
            name,
            env,
            log: dir.join(format!("{name}.log")),
            child: None,
            port,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
            .arg("serve")
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !http
            .get(format!("{}/healthz", self.url()))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!(
                    "{} did not start ({exited:?}); the end of its log:\n{}",
                    self.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

/// What became of one value a writer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// Acknowledged, at this sequence.
    Acked(u64),
    /// Never acknowledged: the writer gave up.
    GaveUp,
}

#[derive(Debug, Default)]
struct Record {
    sent: HashMap<String, Sent>,
    /// When each acknowledgement came.
    acked_at: Vec<Instant>,
    /// Answers by status, other than the first success.
    answers: HashMap<String, u64>,
}

/// Sends `w<writer>-<n>` one after another until `stop`, each retried with its client id
/// on anything but a success, across both API processes.
async fn writer(
    writer: usize,
    apis: Vec<String>,
    token: String,
    chat: String,
    record: Arc<Mutex<Record>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let value = format!("w{writer}-{n}");
        n += 1;
        let started = Instant::now();
        let mut attempt = 0;
        let outcome = loop {
            let api = &apis[(writer + attempt) % apis.len()];
            attempt += 1;
            let answer = http
                .post(format!("{api}/v1/chats/{chat}/messages"))
                .bearer_auth(&token)
                .json(&json!({"client_id": value, "body": value}))
                .send()
                .await;
            let status = match answer {
                Ok(answer) if answer.status().is_success() => {
                    let body: Value = answer.json().await.unwrap_or(Value::Null);
                    if let Some(sequence) = body["sequence"].as_u64() {
                        break Sent::Acked(sequence);
                    }
                    "success without a sequence".to_owned()
                }
                Ok(answer) => {
                    let status = answer.status();
                    let body: Value = answer.json().await.unwrap_or(Value::Null);
                    format!(
                        "{} {}",
                        status.as_u16(),
                        body["code"].as_str().unwrap_or("")
                    )
                }
                Err(_) => "no answer".to_owned(),
            };
            *record.lock().unwrap().answers.entry(status).or_default() += 1;
            if started.elapsed() > GIVE_UP_AFTER {
                break Sent::GaveUp;
            }
            tokio::time::sleep(Duration::from_millis(50 * attempt.min(10) as u64)).await;
        };
        let mut record = record.lock().unwrap();
        if matches!(outcome, Sent::Acked(_)) {
            record.acked_at.push(Instant::now());
        }
        record.sent.insert(value, outcome);
    }
}

/// Follows the group over WebSockets on either gateway, dropping its connection every
/// few seconds and resuming from its cursor. The sequences of the messages it saw.
async fn reader(
    reader: usize,
    gateways: Vec<String>,
    token: String,
    from: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<u64>, u64) {
    let mut seen = Vec::new();
    let mut cursor = Some(from);
    let mut round = reader;
    loop {
        let stopping = stop.load(std::sync::atomic::Ordering::Relaxed);
        let gateway = &gateways[round % gateways.len()];
        round += 1;
        let url = format!("{}/v1/ws", gateway.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let Ok(Ok((mut socket, _))) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(request),
        )
        .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let resume = json!({"type": "resume", "cursor": cursor}).to_string();
        if socket.send(Message::Text(resume.into())).await.is_err() {
            continue;
        }
        // A while on this connection (to the end of the backlog when stopping).
        let until = Instant::now() + Duration::from_millis(1500 + 500 * (round % 4) as u64);
        let mut ready = None;
        loop {
            let wait = if stopping {
                Duration::from_secs(2)
            } else {
                until.saturating_duration_since(Instant::now())
            };
            let Ok(Some(Ok(message))) = tokio::time::timeout(wait, socket.next()).await else {
                break;
            };
            let Message::Text(text) = message else {
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            match frame["type"].as_str() {
                Some("event") => {
                    let sequence = frame["seq"].as_u64().unwrap();
                    if frame["event"]["event_type"] == "MessageSent" {
                        seen.push(sequence);
                    }
                    cursor = Some(sequence);
                }
                Some("ready") => ready = frame["cursor"].as_u64(),
                _ => {}
            }
        }
        let _ = socket.close(None).await;
        if stopping && let Some(ready) = ready {
            return (seen, ready.max(cursor.unwrap_or(0)));
        }
    }
}

/// The group's history, oldest first: (sequence, body).
async fn history(
    http: &reqwest::Client,
    api: &str,
    reader: &User,
    chat: &str,
    at: u64,
) -> Vec<(u64, String)> {
    let mut items = Vec::new();
    loop {
        let after = items.last().map_or(0, |(sequence, _)| *sequence);
        let path = format!("/v1/chats/{chat}/messages?after={after}&limit=100&min_sequence={at}");
        let (status, page) = call(http, api, Method::GET, &path, reader, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let page = page["items"].as_array().unwrap();
        if page.is_empty() {
            return items;
        }
        items.extend(page.iter().map(|message| {
            let body = message["body"].as_str().unwrap_or("").to_owned();
            (message["sequence"].as_u64().unwrap(), body)
        }));
        items.sort_unstable();
    }
}

/// The index of the node leading `stream`, once it has a leader.
async fn stream_leader(cluster: &PrivateCluster, stream: &str) -> usize {
    let client = common::connect(&cluster.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut handle) = js.get_stream(stream).await
            && let Ok(info) = handle.info().await
            && let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone())
        {
            return cluster.index_of(&leader);
        }
        assert!(Instant::now() < deadline, "the stream has no leader");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[derive(Debug)]
struct Fault {
    what: String,
    at: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the fault suite: run by scripts/faults"]
async fn fault_suite() {
    let seconds: u64 = std::env::var("FAULTS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let mut cluster = PrivateCluster::start().await;
    let postgres = PrivatePostgres::start().await;
    let work = TempDir(
        std::env::temp_dir().join(format!("natter-faults-{}", uuid::Uuid::now_v7().simple())),
    );
    std::fs::create_dir_all(&work.0).unwrap();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let stream = format!("FAULTS_{tag}");
    let base: Vec<(String, String)> = [
        ("NATTER_NATS_URL", cluster.url()),
        ("NATTER_DATABASE_URL", postgres.url()),
        ("NATTER_STREAM", stream.clone()),
        ("NATTER_SUBJECT_PREFIX", format!("f{tag}")),
        ("NATTER_STREAM_REPLICAS", "3".into()),
        ("NATTER_JWT_KEYS", KEYS.into()),
        ("NATTER_ACCESS_TOKEN_SECS", "86400".into()),
        (
            "NATTER_WEB_DIR",
            work.0.join("no-web").display().to_string(),
        ),
        (
            "NATTER_MEDIA_DIR",
            work.0.join("media").display().to_string(),
        ),
        ("NATTER_HASH_WORKERS", "1".into()),
        ("NATTER_NATS_ACK_TIMEOUT_MS", "2000".into()),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let migrated = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("migrate")
        .envs(base.iter().cloned())
        .status()
        .unwrap();
    assert!(migrated.success(), "natter migrate");
    let mut api_a = Natter::new("api-a", "api,gateway", &base, &work.0);
    let mut api_b = Natter::new("api-b", "api,gateway", &base, &work.0);
    let mut projector = Natter::new("projector", "projector", &base, &work.0);
    for process in [&mut api_a, &mut api_b, &mut projector] {
        process.start().await;
    }
    let apis = vec![api_a.url(), api_b.url()];

    let http = reqwest::Client::new();
    let mut members = Vec::new();
    for n in 0..READERS {
        members.push(sign_up(&http, apis[0].as_str(), &format!("member{n}")).await);
    }
    let others: Vec<&str> = members[1..].iter().map(|m| m.id.as_str()).collect();
    let (status, group) = call(
        &http,
        apis[0].as_str(),
        Method::POST,
        "/v1/chats/groups",
        &members[0],
        Some(json!({"name": "faults", "members": others})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let chat = group["chat_id"].as_str().unwrap().to_owned();
    let created = group["sequence"].as_u64().unwrap();

    let record = Arc::new(Mutex::new(Record::default()));
    let stop_writing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_reading = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(writer(
                w,
                apis.clone(),
                members[w % READERS].token.clone(),
                chat.clone(),
                Arc::clone(&record),
                Arc::clone(&stop_writing),
            ))
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            tokio::spawn(reader(
                r,
                apis.clone(),
                members[r].token.clone(),
                created,
                Arc::clone(&stop_reading),
            ))
        })
        .collect();

    // The nemesis: one fault at a time, in turn, each healed before the next.
    let mut faults = Vec::new();
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut turn = 0_usize;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let at = Instant::now();
        let what = match turn % 5 {
            0 => {
                api_a.kill().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                api_a.start().await;
                "kill -9 api-a".to_owned()
            }
            1 => {
                projector.kill().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                projector.start().await;
                "kill -9 projector".to_owned()
            }
            2 => {
                // In turn the stream's leader (a new one must be elected) and a
                // follower.
                let leader = stream_leader(&cluster, &stream).await;
                let (node, role) = if (turn / 5).is_multiple_of(2) {
                    (leader, "leader")
                } else {
                    ((leader + 1) % 3, "follower")
                };
                cluster.kill(node).await;
                tokio::time::sleep(Duration::from_secs(3)).await;
                cluster.start_again(node).await;
                format!("kill -9 the stream's {role} (a NATS node)")
            }
            3 => {
                postgres.restart();
                "restart Postgres (immediate)".to_owned()
            }
            _ => {
                api_b.kill().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                api_b.start().await;
                "kill -9 api-b".to_owned()
            }
        };
        faults.push(Fault { what, at });
        turn += 1;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_writing.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let record = Arc::try_unwrap(record).unwrap().into_inner().unwrap();
    let last_acked = record
        .sent
        .values()
        .filter_map(|sent| match sent {
            Sent::Acked(sequence) => Some(*sequence),
            Sent::GaveUp => None,
        })
        .max()
        .unwrap_or(0);
    stop_reading.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut streams = Vec::new();
    for reader in readers {
        streams.push(reader.await.unwrap());
    }

    // What the log holds, through the read model (which must have caught up).
    let stored = history(&http, &apis[0], &members[0], &chat, last_acked).await;
    let mut copies: HashMap<&str, Vec<u64>> = HashMap::new();
    for (sequence, body) in &stored {
        copies.entry(body.as_str()).or_default().push(*sequence);
    }
    let (mut ok, mut lost, mut duplicated, mut unexpected) = (0, 0, 0, 0);
    let (mut gave_up_stored, mut gave_up_absent) = (0, 0);
    let mut problems = Vec::new();
    for (value, sent) in &record.sent {
        let found = copies.get(value.as_str()).map_or(0, Vec::len);
        match (sent, found) {
            (_, 2..) => {
                duplicated += 1;
                problems.push(format!("{value} stored {found} times"));
            }
            (Sent::Acked(_), 1) => ok += 1,
            (Sent::Acked(sequence), _) => {
                lost += 1;
                problems.push(format!(
                    "{value} acknowledged at {sequence}, not in the history"
                ));
            }
            (Sent::GaveUp, 1) => gave_up_stored += 1,
            (Sent::GaveUp, _) => gave_up_absent += 1,
        }
    }
    for body in copies.keys() {
        if !record.sent.contains_key(*body) {
            unexpected += 1;
            problems.push(format!("{body} stored, never sent"));
        }
    }
    let sequences: Vec<u64> = stored.iter().map(|(sequence, _)| *sequence).collect();
    let mut readers_agree = 0;
    for (n, (seen, _)) in streams.iter().enumerate() {
        if *seen == sequences {
            readers_agree += 1;
        } else {
            problems.push(format!(
                "reader {n} saw {} messages (history {}); first difference at {:?}",
                seen.len(),
                sequences.len(),
                seen.iter().zip(&sequences).position(|(a, b)| a != b)
            ));
        }
    }
    let mut unread_agree = 0;
    for (n, member) in members.iter().enumerate() {
        let path = format!("/v1/chats?min_sequence={last_acked}");
        let (_, list) = call(&http, apis[0].as_str(), Method::GET, &path, member, None).await;
        let unread = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["chat_id"] == chat.as_str())
            .and_then(|item| item["unread_count"].as_u64())
            .unwrap_or(0);
        let from_others = stored
            .iter()
            .filter(|(_, body)| {
                let writer: usize = body[1..body.find('-').unwrap()].parse().unwrap();
                writer % READERS != n
            })
            .count() as u64;
        if unread == from_others {
            unread_agree += 1;
        } else {
            problems.push(format!(
                "member {n}: unread {unread}, history says {from_others}"
            ));
        }
    }
    let verified = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["projections", "verify", "chats"])
        .envs(base.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    if !verified.status.success() {
        problems.push(format!(
            "natter projections verify chats: {}{}",
            String::from_utf8_lossy(&verified.stdout),
            String::from_utf8_lossy(&verified.stderr)
        ));
    }

    // The table.
    println!(
        "\nfault suite: {seconds} s of faults, {WRITERS} writers, {READERS} readers, 3 NATS nodes (R3), 2 API processes, 1 projector"
    );
    println!("\n| fault | count | longest pause in acknowledged sends after it, before the next |");
    println!("|---|---|---|");
    let mut acked = record.acked_at.clone();
    acked.sort_unstable();
    let mut by_kind: HashMap<&str, (u32, Duration)> = HashMap::new();
    for (n, fault) in faults.iter().enumerate() {
        // Until the next fault: a pause is this one's.
        let next = faults
            .get(n + 1)
            .map_or(fault.at + Duration::from_secs(15), |f| f.at);
        let window = next.min(fault.at + Duration::from_secs(15));
        let mut previous = fault.at;
        let mut pause = Duration::ZERO;
        for at in acked.iter().filter(|at| **at > fault.at && **at <= window) {
            pause = pause.max(at.duration_since(previous));
            previous = *at;
        }
        let entry = by_kind.entry(fault.what.as_str()).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(pause);
    }
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by_key(|(what, _)| *what);
    for (what, (count, wait)) in kinds {
        println!("| {what} | {count} | {:.2} s |", wait.as_secs_f64());
    }
    println!(
        "\n| values sent | ok | lost | duplicated | unexpected | given up, stored | given up, absent |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {} | {ok} | {lost} | {duplicated} | {unexpected} | {gave_up_stored} | {gave_up_absent} |",
        record.sent.len()
    );
    println!(
        "\nreaders whose WebSocket stream equals the history: {readers_agree}/{READERS}; \
         unread counts equal to the history: {unread_agree}/{READERS}; chats read model \
         verified against a rebuild: {}",
        if verified.status.success() {
            "clean"
        } else {
            "DIFFERENT"
        }
    );
    let mut answers: Vec<_> = record.answers.iter().collect();
    answers.sort();
    println!("answers before success: {answers:?}");
    for (answer, count) in &answers {
        if answer.starts_with('5') && !answer.starts_with("503") {
            problems.push(format!("{count} answers {answer}: never a 5xx but 503"));
        }
    }
    if !problems.is_empty() {
        // Kept for a look: each process's log.
        println!("logs kept in {}", work.0.display());
        std::mem::forget(work);
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(ok > 0, "nothing was sent");
}
