//! The figures of a run: a table on the terminal and `results.json`.

use serde_json::{Value, json};

/// What a figure is held against.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    AtLeast(f64),
    Below(f64),
}

impl Target {
    fn holds(self, value: f64) -> bool {
        match self {
            Target::AtLeast(limit) => value >= limit,
            Target::Below(limit) => value < limit,
        }
    }

    fn text(self) -> String {
        match self {
            Target::AtLeast(limit) => format!(">= {}", short(limit)),
            Target::Below(limit) => format!("< {}", short(limit)),
        }
    }
}

pub struct Baseline {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// The least ratio the spec asks for, if any.
    pub ratio_target: Option<f64>,
}

pub struct Figure {
    pub database: &'static str,
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub target: Option<Target>,
    pub baseline: Option<Baseline>,
}

impl Figure {
    pub fn new(database: &'static str, name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Self {
            database,
            name: name.into(),
            value,
            unit,
            target: None,
            baseline: None,
        }
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// The target where it applies (some hold only on SQLite, or only at full scale).
    pub fn target_if(self, applies: bool, target: Target) -> Self {
        if applies { self.target(target) } else { self }
    }

    pub fn against(
        mut self,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        ratio_target: Option<f64>,
    ) -> Self {
        self.baseline = Some(Baseline {
            name: name.into(),
            value,
            unit,
            ratio_target,
        });
        self
    }

    fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .filter(|b| b.value > 0.0)
            .map(|b| self.value / b.value)
    }

    /// Whether every target of the figure (absolute and ratio) holds; `None` without targets.
    pub fn holds(&self) -> Option<bool> {
        let absolute = self.target.map(|t| t.holds(self.value));
        let ratio = match (self.ratio(), self.baseline.as_ref().and_then(|b| b.ratio_target)) {
            (Some(ratio), Some(least)) => Some(ratio >= least),
            _ => None,
        };
        match (absolute, ratio) {
            (None, None) => None,
            (a, r) => Some(a.unwrap_or(true) && r.unwrap_or(true)),
        }
    }

    fn json(&self) -> Value {
        json!({
            "database": self.database,
            "name": self.name,
            "value": round(self.value),
            "unit": self.unit,
            "target": self.target.map(Target::text),
            "baseline": self.baseline.as_ref().map(|b| json!({
                "name": b.name,
                "value": round(b.value),
                "unit": b.unit,
                "ratio": self.ratio().map(|r| (r * 1000.0).round() / 1000.0),
                "ratio_target": b.ratio_target,
            })),
            "holds": self.holds(),
        })
    }
}

fn round(value: f64) -> f64 {
    if value.abs() >= 100.0 {
        value.round()
    } else {
        (value * 100.0).round() / 100.0
    }
}

fn short(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// The table as Markdown, so that `docs/performance.md` can take it as it is.
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| database | figure | value | target | raw baseline | ratio | holds |\n|---|---|---|---|---|---|---|\n",
    );
    for f in figures {
        let baseline = f
            .baseline
            .as_ref()
            .map(|b| format!("{} {} ({})", short(b.value), b.unit, b.name))
            .unwrap_or_default();
        let ratio = match (f.ratio(), f.baseline.as_ref().and_then(|b| b.ratio_target)) {
            (Some(r), Some(least)) => format!("{r:.2} (>= {least})"),
            (Some(r), None) => format!("{r:.2}"),
            _ => String::new(),
        };
        let holds = match f.holds() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        out.push_str(&format!(
            "| {} | {} | {} {} | {} | {} | {} | {} |\n",
            f.database,
            f.name,
            short(f.value),
            f.unit,
            f.target.map(Target::text).unwrap_or_default(),
            baseline,
            ratio,
            holds
        ));
    }
    out
}

/// The machine the run measured: cores, memory, CPU model.
pub fn machine() -> Value {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
    });
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
    });
    json!({
        "cores": cores,
        "memory_bytes": memory.map(|kib| kib * 1024),
        "cpu_model": cpu,
        "os": std::env::consts::OS,
    })
}

pub fn git_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

pub fn document(figures: &[Figure], scale: Value, notes: &[String]) -> Value {
    json!({
        "generated_at": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "git_commit": git_commit(),
        "machine": machine(),
        "scale": scale,
        "figures": figures.iter().map(Figure::json).collect::<Vec<_>>(),
        "notes": notes,
    })
}
