//! Demo data: a small platform (accounts, comments, reactions, activity) for exploring a fresh
//! install. Administrators only, and only into a database without platform users.

use serde::{Deserialize, Serialize};
use tauri::State;
use ts_rs::TS;
use vigil::demo::{self, SeedOptions};
use vigil::keys::KeyError;

use crate::error::{CommandError, CommandResult};
use crate::state::AppState;

/// How much demo data to make.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct DemoSeedRequest {
    /// Platform accounts (1 to 100,000 here; the command line makes more).
    pub users: u32,
    /// Comments (at most 1,000,000 here).
    pub comments: u32,
    /// Days of history, ending now (1 to 365).
    pub days: u32,
    /// Add the labelled attack scenarios (credential stuffing, a burst poster, a roaming
    /// account, a night owl, a phishing spammer) for the detectors to find.
    pub scenarios: bool,
}

/// What the demo seed wrote.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct DemoSeedReport {
    /// Platform accounts.
    #[ts(type = "number")]
    pub users: u64,
    /// Live events.
    #[ts(type = "number")]
    pub events: u64,
    /// Comments.
    #[ts(type = "number")]
    pub comments: u64,
    /// Reactions.
    #[ts(type = "number")]
    pub reactions: u64,
    /// Activity records.
    #[ts(type = "number")]
    pub activity: u64,
    /// Activity records of the attack scenarios.
    #[ts(type = "number")]
    pub scenario_activity: u64,
}

/// The seed the desktop uses, so every "Load demo data" gives the same platform.
const DEMO_SEED: u64 = 1;

fn options(req: &DemoSeedRequest) -> CommandResult<SeedOptions> {
    if !(1..=100_000).contains(&req.users) {
        return Err(CommandError::invalid(
            "demo data here is 1 to 100,000 accounts; use `vigil demo seed` for more",
        ));
    }
    if req.comments > 1_000_000 {
        return Err(CommandError::invalid(
            "demo data here is at most 1,000,000 comments; use `vigil demo seed` for more",
        ));
    }
    if !(1..=365).contains(&req.days) {
        return Err(CommandError::invalid("demo history is 1 to 365 days"));
    }
    Ok(SeedOptions {
        users: req.users,
        comments: req.comments,
        days: req.days,
        seed: DEMO_SEED,
        scenarios: req.scenarios,
    })
}

/// Fills an empty platform with demo data (sealed with the administrator's data keys).
#[tauri::command]
pub async fn demo_seed(
    state: State<'_, AppState>,
    req: DemoSeedRequest,
) -> CommandResult<DemoSeedReport> {
    let (db, session, actor) = state.authorised().await?;
    let opts = options(&req)?;
    let ring = session.ring.as_ref().ok_or(KeyError::NoKeyPairHere)?;
    let report = demo::seed(&db.store, &actor, ring, opts, &mut |_| {}).await?;
    Ok(DemoSeedReport {
        users: report.users,
        events: report.events,
        comments: report.comments,
        reactions: report.reactions,
        activity: report.activity,
        scenario_activity: report.scenario_activity,
    })
}
