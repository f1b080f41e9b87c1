//! Rate-limit plans and the windows each allows.
use std::fmt;
use std::str::FromStr;

/// A tenant's plan: how many API requests it may make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Plan {
    /// 50 per 15 minutes, 1,000 per day.
    Essential,
    /// 100 per 15 minutes, 5,000 per day.
    Starter,
    /// 200 per 15 minutes, 15,000 per day.
    Pro,
    /// 500 per 15 minutes, 50,000 per day.
    Studio,
    /// No limit: platforms posting their own events, and the operator's own use.
    Unlimited,
}

/// One rate-limit window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Its length in seconds.
    pub secs: i64,
    /// Requests allowed in it.
    pub limit: i64,
}

impl Plan {
    /// Every plan, cheapest first.
    pub const ALL: [Self; 5] = [Self::Essential, Self::Starter, Self::Pro, Self::Studio, Self::Unlimited];

    /// The windows this plan enforces, shortest first (none when unlimited).
    pub fn windows(self) -> Vec<Window> {
        let per = |fifteen_minutes, day| {
            vec![Window { secs: 900, limit: fifteen_minutes }, Window { secs: 86_400, limit: day }]
        };
        match self {
            Self::Essential => per(50, 1_000),
            Self::Starter => per(100, 5_000),
            Self::Pro => per(200, 15_000),
            Self::Studio => per(500, 50_000),
            Self::Unlimited => Vec::new(),
        }
    }

    /// The plan's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Essential => "essential",
            Self::Starter => "starter",
            Self::Pro => "pro",
            Self::Studio => "studio",
            Self::Unlimited => "unlimited",
        }
    }
}

/// A plan name that is not one of ours.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("plans are essential, starter, pro, studio and unlimited")]
pub struct UnknownPlan;

impl FromStr for Plan {
    type Err = UnknownPlan;
    fn from_str(s: &str) -> Result<Self, UnknownPlan> {
        match s {
            "essential" => Ok(Self::Essential),
            "starter" => Ok(Self::Starter),
            "pro" => Ok(Self::Pro),
            "studio" => Ok(Self::Studio),
            "unlimited" => Ok(Self::Unlimited),
            _ => Err(UnknownPlan),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
