//! `natter bench media`: image uploads through the REST API (streamed in, typed, decoded
//! under limits, re-encoded without metadata, thumbnailed, stored and recorded) against
//! writing the same bytes to the same blob store raw, at the same concurrency, in the
//! same run.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use clap::Args;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use natter_media::BlobStore;
use uuid::Uuid;

use super::app::{BenchApp, with_bench_app};
use super::{Phase, measure, progress};
use natter::settings::Settings;

#[derive(Debug, Args)]
pub struct MediaArgs {
    /// Images uploaded (each different, so none is deduplicated).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub images: u32,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub in_flight: u32,
    /// The images' width and height, in pixels.
    #[arg(long, default_value = "1600x1200", value_parser = parse_size)]
    pub size: (u32, u32),
}

fn parse_size(value: &str) -> Result<(u32, u32), String> {
    let (width, height) = value
        .split_once('x')
        .ok_or("WIDTHxHEIGHT, such as 1600x1200")?;
    let parse = |n: &str| n.parse::<u32>().map_err(|e| e.to_string());
    let (width, height) = (parse(width)?, parse(height)?);
    if !(16..=8_000).contains(&width) || !(16..=8_000).contains(&height) {
        return Err("each side from 16 to 8000 pixels".into());
    }
    Ok((width, height))
}

pub async fn bench_media(settings: &Settings, args: MediaArgs) -> anyhow::Result<()> {
    println!("natter bench media");
    with_bench_app(settings, |app| run(app, args)).await
}

async fn run(app: BenchApp, args: MediaArgs) -> anyhow::Result<()> {
    let (width, height) = args.size;
    progress(&format!(
        "making {} JPEG images of {width}x{height}",
        args.images
    ));
    let images: Arc<Vec<Bytes>> = Arc::new(
        tokio::task::spawn_blocking(move || {
            (0..args.images)
                .map(|n| photo(width, height, n))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .await??,
    );
    let average = images.iter().map(|i| i.len()).sum::<usize>() / images.len();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.in_flight as usize)
        .build()?;
    let (token, _) = app.keys.issue(Uuid::now_v7(), Uuid::now_v7(), 0)?;
    let url = format!("{}/v1/media?kind=image", app.base);

    let uploads = each_image("uploads through the API", &images, args.in_flight, {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        move |image: Bytes| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            async move {
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "image/jpeg")
                    .body(image)
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status() == reqwest::StatusCode::CREATED,
                    "upload answered {}: {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                );
                Ok(())
            }
        }
    })
    .await?;

    let raw_dir = app.media_dir.with_file_name("raw");
    let store = BlobStore::filesystem(&raw_dir).await?;
    let raw = each_image("raw writes to the blob store", &images, args.in_flight, {
        let store = store.clone();
        move |image: Bytes| {
            let store = store.clone();
            async move {
                let key = format!("raw/{}", Uuid::now_v7().simple());
                store.put_bytes(&key, image, "image/jpeg").await?;
                Ok(())
            }
        }
    })
    .await?;
    let _ = tokio::fs::remove_dir_all(&raw_dir).await;

    println!(
        "  {} JPEG images of {width}x{height}, {:.0} KiB on average, {} in flight; both on the filesystem blob store",
        images.len(),
        average as f64 / 1024.0,
        args.in_flight,
    );
    println!("{}", uploads.line("uploads (decode ... record)"));
    println!("{}", raw.line("raw blob store writes"));
    println!(
        "  ratio uploads / raw writes: {:.3}",
        uploads.rate() / raw.rate()
    );
    Ok(())
}

/// A photo-like JPEG: smooth gradients and some noise, different for each `n`.
fn photo(width: u32, height: u32, n: u32) -> anyhow::Result<Bytes> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(n);
    let image = RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state % 24) as u32;
        Rgb([
            ((x * 255 / width + noise + n) % 256) as u8,
            ((y * 255 / height + noise) % 256) as u8,
            (((x + y) * 128 / (width + height) + noise * 2) % 256) as u8,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image).write_to(&mut out, ImageFormat::Jpeg)?;
    Ok(Bytes::from(out.into_inner()))
}

/// Runs `each` over every image, `in_flight` at once, with the benchmarks' `measure`.
async fn each_image<F, Fut>(
    label: &str,
    images: &Arc<Vec<Bytes>>,
    in_flight: u32,
    each: F,
) -> anyhow::Result<Phase>
where
    F: Fn(Bytes) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let workers = u64::from(in_flight);
    let phase = measure(
        label,
        images.len() as u64,
        workers,
        |worker, share, done| {
            let (images, each) = (Arc::clone(images), each.clone());
            async move {
                let mut latencies = Vec::with_capacity(usize::try_from(share)?);
                // Worker w takes images w, w + workers, w + 2 workers, ...
                for k in 0..share {
                    let image = images[usize::try_from(worker + k * workers)?].clone();
                    let began = Instant::now();
                    each(image).await?;
                    latencies.push(began.elapsed());
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(latencies)
            }
        },
    )
    .await?;
    eprintln!();
    Ok(phase)
}
