//! `natter bench queries`: one reader in 1,000 chats (80% direct, the rest groups of
//! 10 to 256) holding a million Zipf-distributed messages. The data set is appended to
//! the log before the app starts, so the run first times the projection's catch-up on
//! it against raw batched inserts of the same rows; then it measures, through the REST
//! API, the reader's chat list, history pages and searches, against an authenticated
//! GET of one row (the HTTP floor) and a raw Postgres round trip.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use natter_commands::accounts::NewAccount;
use natter_domain::DomainEvent;
use natter_domain::chat::{
    ChatEvent, ClientId, DirectChatCreated, GroupCreated, GroupName, MESSAGES_KIND, MessageBody,
    MessageEvent, MessageSent, ReadMarked,
};
use natter_domain::user::{About, DisplayName, Handle, Password};
use natter_eventlog::EventLog;
use natter_schema::{Envelope, Metadata};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use time::OffsetDateTime;
use uuid::Uuid;

use super::app::{BenchApp, with_seeded_bench_app};
use super::catchup::{CatchUp, MessageRows};
use super::messages::{XorShift, Zipf};
use super::{ms, percentile, progress, publish_pipelined, spawn_progress};
use natter::settings::Settings;

#[derive(Debug, Args)]
pub struct QueriesArgs {
    /// Messages in the data set.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(10_000..=20_000_000))]
    pub messages: u64,
    /// Chats the reader is in, 80% direct and 20% groups of 10 to 256.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(10..=10_000))]
    pub chats: u32,
    /// Requests timed per query.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub samples: u32,
    /// Rows per raw insert transaction (the projection's own batch size).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Also print the chat list query's plan, as `EXPLAIN (ANALYZE, BUFFERS)` gives it.
    #[arg(long)]
    pub explain: bool,
}

const HANDLE: &str = "bench_reader";
const PASSWORD: &str = "bench password 123";
/// Words a message body is made of, chosen Zipf-wise, so that some are common and most
/// are rare, as in speech.
const VOCABULARY: usize = 3_000;

/// What the seeding leaves for the measuring: the reader's chats and each chat's
/// message sequences.
pub(super) struct DataSet {
    reader: Uuid,
    chats: Vec<Uuid>,
    sequences: HashMap<Uuid, Vec<u64>>,
    pub(super) messages: usize,
    pub(super) last_sequence: u64,
}

pub async fn bench_queries(settings: &Settings, args: QueriesArgs) -> anyhow::Result<()> {
    println!("natter bench queries");
    let args = Arc::new(args);
    let seed_args = Arc::clone(&args);
    with_seeded_bench_app(
        settings,
        |log| async move { seed(&log, &seed_args).await },
        |app, data| run(app, data, args),
    )
    .await
}

pub(super) async fn seed(log: &EventLog, args: &QueriesArgs) -> anyhow::Result<DataSet> {
    progress("registering the reader");
    let accounts = super::bench_accounts(log);
    let reader = accounts
        .register(
            NewAccount {
                handle: Handle::parse(HANDLE)?,
                display_name: DisplayName::parse("Reader")?,
                about: About::parse("")?,
                phone: None,
                password: Password::parse(PASSWORD)?,
            },
            None,
            Metadata::new(None, Uuid::now_v7()),
        )
        .await?
        .user_id;

    let now = OffsetDateTime::now_utc();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut events: Vec<(String, Envelope)> = Vec::new();
    let mut chats = Vec::new();
    let mut members: Vec<Vec<Uuid>> = Vec::new();
    for n in 0..args.chats as usize {
        let chat_id = Uuid::now_v7();
        let event = if n % 5 == 4 {
            let others: Vec<Uuid> = (0..9 + rng.below(247)).map(|_| Uuid::now_v7()).collect();
            members.push(std::iter::once(reader).chain(others.clone()).collect());
            ChatEvent::GroupCreated(GroupCreated {
                chat_id,
                name: GroupName::parse(&format!("group {n}"))?,
                creator: reader,
                members: others,
                created_at: now,
            })
        } else {
            let other = Uuid::now_v7();
            members.push(vec![reader, other]);
            ChatEvent::DirectChatCreated(DirectChatCreated {
                chat_id,
                members: [reader, other],
                created_at: now,
            })
        };
        events.push(envelope(log, "chat", chat_id, &event, now)?);
        chats.push(chat_id);
    }

    let words = Zipf::new(VOCABULARY);
    let chat_popularity = Zipf::new(chats.len());
    let mut message_chats = Vec::with_capacity(args.messages as usize);
    for n in 0..args.messages {
        let c = chat_popularity.sample(&mut rng);
        let length = 4 + rng.below(14);
        let body: Vec<String> = (0..length).map(|_| word(words.sample(&mut rng))).collect();
        let sent = MessageSent {
            chat_id: chats[c],
            message_id: Uuid::now_v7(),
            sender: members[c][rng.below(members[c].len())],
            client_id: ClientId::parse(&format!("q{n}"))?,
            body: MessageBody::parse(&body.join(" "))?,
            reply_to: None,
            reply_to_sequence: None,
            mentions: Vec::new(),
            forwarded: 0,
            sent_at: now,
            attachment: None,
        };
        message_chats.push(sent.chat_id);
        let event = MessageEvent::MessageSent(sent);
        events.push(envelope(log, MESSAGES_KIND, chats[c], &event, now)?);
    }
    let sequences_all = publish_pipelined(log, events, "appending chats and messages").await?;
    let mut sequences: HashMap<Uuid, Vec<u64>> = HashMap::new();
    for (chat, sequence) in message_chats.iter().zip(&sequences_all[chats.len()..]) {
        sequences.entry(*chat).or_default().push(*sequence);
    }

    // The reader has read every chat but one in twenty, which has up to 20 unread.
    let mut markers = Vec::new();
    for (n, chat_id) in chats.iter().enumerate() {
        let Some(chat_sequences) = sequences.get(chat_id) else {
            continue;
        };
        let unread = if n % 20 == 0 { 1 + rng.below(20) } else { 0 };
        let up_to = chat_sequences[chat_sequences.len().saturating_sub(unread + 1)];
        let event = MessageEvent::ReadMarked(ReadMarked {
            chat_id: *chat_id,
            user: reader,
            up_to,
            marked_at: now,
        });
        markers.push(envelope(log, MESSAGES_KIND, *chat_id, &event, now)?);
    }
    publish_pipelined(log, markers, "appending read markers").await?;
    Ok(DataSet {
        reader,
        chats,
        sequences,
        messages: message_chats.len(),
        last_sequence: log.last_sequence().await?,
    })
}

/// The `rank`-th word of the vocabulary: a pronounceable made-up word.
fn word(rank: usize) -> String {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ba", "de", "fi", "go", "hu", "ja", "pe",
        "zu",
    ];
    let mut word = String::new();
    let mut n = rank + 16;
    while n > 0 {
        word.push_str(SYLLABLES[n % 16]);
        n /= 16;
    }
    word
}

fn envelope<E: DomainEvent>(
    log: &EventLog,
    kind: &str,
    id: Uuid,
    event: &E,
    now: OffsetDateTime,
) -> anyhow::Result<(String, Envelope)> {
    let (event_type, schema_version, payload) = natter_schema::encode(event)?;
    Ok((
        log.subject(kind, &id.to_string()),
        Envelope {
            event_id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            schema_version,
            aggregate_type: kind.to_owned(),
            aggregate_id: id.to_string(),
            actor: None,
            occurred_at: now,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            payload,
        },
    ))
}

async fn run(app: BenchApp, data: DataSet, args: Arc<QueriesArgs>) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(&app.database_url)?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(natter_projections::projection_connect_options(
            natter::app::short_queries(options),
        ))
        .await?;

    // The app's projector started on the backlog with the app.
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let reporter = spawn_progress(
        "projection catching up",
        data.last_sequence,
        Arc::clone(&done),
    );
    loop {
        let at = natter_projections::checkpoint(
            &pool,
            <natter_projections::Chats as natter_projections::Projection>::NAME,
            <natter_projections::Chats as natter_projections::Projection>::VERSION,
        )
        .await?;
        done.store(at, Ordering::Relaxed);
        if at >= data.last_sequence {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let caught_up = started.elapsed();
    reporter.abort();
    eprintln!();
    let projected: i64 = sqlx::query_scalar("SELECT count(*) FROM messages_v1")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        projected as u64 == args.messages,
        "projected {projected} messages, expected {}",
        args.messages
    );

    let rows = MessageRows::load(&pool).await?;
    let catch_up = CatchUp {
        events: data.last_sequence,
        projected: caught_up,
        rows: rows.len(),
        raw: rows.insert_raw(&pool, args.batch as usize).await?,
        batch: args.batch as usize,
    };
    drop(rows);
    // A database that took a million messages has had autovacuum through its tables:
    // statistics of their sizes, and visibility maps for index-only scans. Right after
    // the catch-up it has neither, and plans as if the reader had one chat.
    progress("VACUUM (ANALYZE), as autovacuum does after a bulk load");
    sqlx::raw_sql("VACUUM (ANALYZE)").execute(&pool).await?;

    progress("signing in");
    let http = reqwest::Client::new();
    let base = app.base;
    let session: Value = http
        .post(format!("{base}/v1/sessions"))
        .json(&serde_json::json!({"handle": HANDLE, "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = session["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned();
    let list: Value = http
        .get(format!("{base}/v1/chats?limit=1000"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let listed = list["items"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        listed == data.chats.len(),
        "the chat list has {listed} chats, expected {}",
        data.chats.len()
    );

    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let samples = args.samples as usize;
    let get = |path: String| {
        let (http, url, token) = (http.clone(), format!("{base}{path}"), token.clone());
        async move {
            let started = Instant::now();
            http.get(url)
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            anyhow::Ok(started.elapsed())
        }
    };
    let mut timed: Vec<(String, f64, Vec<Duration>)> = Vec::new();
    let floor = time_each("floor: GET /v1/users/me", samples, |_| {
        get("/v1/users/me".into())
    })
    .await?;
    let raw_round_trip = time_each("floor: raw Postgres SELECT 1", samples, |_| {
        let pool = pool.clone();
        async move {
            let started = Instant::now();
            sqlx::query("SELECT 1").execute(&pool).await?;
            anyhow::Ok(started.elapsed())
        }
    })
    .await?;
    // What a client opening the app asks for (a first page, the default 100), and the
    // whole list in one answer.
    timed.push((
        "chat list: first page (100 chats, unread counts, last messages)".into(),
        // Issue 18's target (issue 4's was 10 ms).
        5.0,
        time_each(
            "chat list, first page",
            samples,
            |_| get("/v1/chats".into()),
        )
        .await?,
    ));
    timed.push((
        format!("chat list: all {listed} chats in one page"),
        5.0,
        time_each("chat list, whole", samples, |_| {
            get("/v1/chats?limit=1000".into())
        })
        .await?,
    ));
    // The whole list's query alone, without HTTP and JSON: where its time goes.
    timed.push((
        "chat list: all in one page, its query alone".into(),
        5.0,
        time_each("chat list, query", samples, |_| {
            let pool = pool.clone();
            async move {
                let started = Instant::now();
                natter_projections::reads::chats::chat_list(&pool, data.reader, None, 1_000)
                    .await?;
                anyhow::Ok(started.elapsed())
            }
        })
        .await?,
    ));
    if args.explain {
        for limit in [101_i64, 1_001] {
            let plan: Vec<String> = sqlx::query_scalar(&format!(
                "EXPLAIN (ANALYZE, BUFFERS) {}",
                natter_projections::reads::chats::chat_list_query()
            ))
            .bind(data.reader)
            .bind(None::<bool>)
            .bind(None::<time::OffsetDateTime>)
            .bind(None::<Uuid>)
            .bind(limit)
            .fetch_all(&pool)
            .await?;
            println!("  the chat list's plan, a page of {}:", limit - 1);
            for line in plan {
                println!("    {line}");
            }
        }
    }
    let chats: Vec<(Uuid, Vec<u64>)> = data
        .chats
        .iter()
        .filter_map(|c| data.sequences.get(c).map(|s| (*c, s.clone())))
        .collect();
    let picks: Vec<(Uuid, u64)> = (0..samples)
        .map(|_| {
            let (chat, sequences) = &chats[rng.below(chats.len())];
            (*chat, sequences[rng.below(sequences.len())])
        })
        .collect();
    timed.push((
        "history: latest page of 50, random chat".into(),
        10.0,
        time_each("history, latest", samples, |n| {
            get(format!("/v1/chats/{}/messages", picks[n].0))
        })
        .await?,
    ));
    timed.push((
        "history: page of 50 before a random message".into(),
        10.0,
        time_each("history, paging back", samples, |n| {
            get(format!(
                "/v1/chats/{}/messages?before={}",
                picks[n].0, picks[n].1
            ))
        })
        .await?,
    ));
    for (label, rank) in [
        ("search all chats: a word in ~0.4% of messages", 300),
        ("search all chats: a word in ~4% of messages", 30),
    ] {
        let term = word(rank);
        timed.push((
            label.into(),
            // Issue 18's target (issue 4's was 50 ms).
            25.0,
            time_each(label, samples, |_| {
                get(format!("/v1/search/messages?q={term}"))
            })
            .await?,
        ));
    }
    let busiest = chats
        .iter()
        .max_by_key(|(_, s)| s.len())
        .map(|(c, _)| *c)
        .context("no chats")?;
    let term = word(300);
    timed.push((
        "search the busiest chat: a word in ~0.4%".into(),
        50.0,
        time_each("search one chat", samples, |_| {
            get(format!("/v1/search/messages?q={term}&chat_id={busiest}"))
        })
        .await?,
    ));

    println!(
        "  data set: {} messages in {} chats of one reader ({} direct, {} groups of 10 to 256), Zipf over chats and words",
        data.messages,
        data.chats.len(),
        data.chats.len() - data.chats.len() / 5,
        data.chats.len() / 5
    );
    catch_up.print();
    let floor_p99 = percentile(&floor, 0.99);
    println!(
        "  floor: authenticated GET of one row     p50 {:>6.2} ms   p99 {:>6.2} ms",
        ms(percentile(&floor, 0.5)),
        ms(floor_p99)
    );
    println!(
        "  floor: raw Postgres round trip          p50 {:>6.2} ms   p99 {:>6.2} ms",
        ms(percentile(&raw_round_trip, 0.5)),
        ms(percentile(&raw_round_trip, 0.99))
    );
    for (label, target, latencies) in &timed {
        let p99 = percentile(latencies, 0.99);
        println!(
            "  {label:<55} p50 {:>6.2} ms   p99 {:>6.2} ms   ({:.1}x the floor; target p99 < {target} ms: {})",
            ms(percentile(latencies, 0.5)),
            ms(p99),
            p99.as_secs_f64() / floor_p99.as_secs_f64().max(1e-9),
            if ms(p99) < *target { "met" } else { "NOT met" }
        );
    }
    pool.close().await;
    Ok(())
}

/// Times `samples` requests one after another, after a few untimed to warm up.
async fn time_each<F, Fut>(label: &str, samples: usize, request: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Duration>>,
{
    progress(&format!("{label}: {samples} requests"));
    for n in 0..samples.min(10) {
        request(n).await?;
    }
    let mut latencies = Vec::with_capacity(samples);
    for n in 0..samples {
        latencies.push(request(n).await?);
    }
    Ok(latencies)
}
