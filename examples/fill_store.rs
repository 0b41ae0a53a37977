//! Fills a redb store (`DATA_DIR/dota.redb`) with N synthetic resources before the service
//! starts, for the start-up benchmark (`bench/scale.py`, part `startup`): how long a restart
//! with 10k, 100k or 1M stored resources takes to be ready. Bodies are small (~300 bytes of
//! player- or match-shaped JSON; one in ten is a match), written through the store's own bulk
//! writer ([`Store::put_bulk`]) in big transactions, so the file has the layout the service
//! writes. Deterministic: entry k is `player:{BASE + k}` or `match:{BASE + k}`.
//!
//! ```sh
//! cargo run --release --example fill_store -- /tmp/data 100000 [--batch 20000]
//! ```
//!
//! The service must not be running on DATA_DIR (redb locks the file).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use dota_orchestrator::app::DB_FILE;
use dota_orchestrator::config::Ttls;
use dota_orchestrator::domain::{MatchId, PlayerId, Signature};
use dota_orchestrator::store::{Store, now_ms};

/// Entries per write transaction: large enough that commits (each an fsync) do not dominate,
/// small enough that one transaction's dirty pages stay well inside memory.
const DEFAULT_BATCH: usize = 20_000;
/// First synthetic ID, far from real accounts and matches.
const BASE: u64 = 900_000_000_000;

struct Args {
    data_dir: PathBuf,
    count: usize,
    batch: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut raw = std::env::args().skip(1);
    let usage = "usage: fill_store DATA_DIR N [--batch ENTRIES]";
    let data_dir = PathBuf::from(raw.next().context(usage)?);
    let count = raw.next().context(usage)?.parse().context("N")?;
    let mut batch = DEFAULT_BATCH;
    while let Some(flag) = raw.next() {
        match flag.as_str() {
            "--batch" => batch = raw.next().context(usage)?.parse().context("--batch")?,
            other => bail!("unknown argument {other:?}; {usage}"),
        }
    }
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    Ok(Args {
        data_dir,
        count,
        batch,
    })
}

/// Entry `k`: a match for every tenth, else a player, with a small body of its shape.
fn entry(k: u64) -> anyhow::Result<(Signature, String)> {
    let id = BASE + k;
    if k.is_multiple_of(10) {
        let sig = Signature::Match(MatchId::new(id).context("match id")?);
        let body = format!(
            r#"{{"match_id":{id},"radiant_win":{},"duration":{},"start_time":{},"leagueid":17000,"radiant_team_id":9700001,"dire_team_id":9700101,"radiant_score":{},"dire_score":{},"players":[]}}"#,
            k.is_multiple_of(2),
            1800 + k % 1500,
            1_736_186_400 + k,
            k % 50,
            (k / 7) % 50
        );
        Ok((sig, body))
    } else {
        let sig = Signature::Player(PlayerId::new(id).context("player id")?);
        let body = format!(
            r#"{{"profile":{{"account_id":{id},"personaname":"player{id}","name":null,"plus":false,"cheese":0,"steamid":"{}","avatar":"https://avatars.steamstatic.com/{id}.jpg","profileurl":"https://steamcommunity.com/profiles/{id}/","loccountrycode":"DE"}},"rank_tier":{},"leaderboard_rank":null}}"#,
            76_561_197_960_265_728 + id,
            10 + k % 70
        );
        Ok((sig, body))
    }
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    std::fs::create_dir_all(&args.data_dir)?;
    let path = args.data_dir.join(DB_FILE);
    let store = Store::open(&path, Ttls::default())
        .with_context(|| format!("opening {}", path.display()))?;
    let started = Instant::now();
    let fetched_at = now_ms();
    let mut written = 0;
    let total = u64::try_from(args.count)?;
    let mut k = 0;
    while k < total {
        let end = total.min(k + u64::try_from(args.batch)?);
        let batch = (k..end).map(entry).collect::<anyhow::Result<Vec<_>>>()?;
        written += store.put_bulk(
            batch.iter().map(|(sig, body)| (*sig, body.as_bytes())),
            fetched_at,
        )?;
        k = end;
    }
    drop(store);
    let bytes = std::fs::metadata(&path)?.len();
    println!(
        "{{\"entries\":{written},\"seconds\":{:.3},\"fileBytes\":{bytes}}}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
