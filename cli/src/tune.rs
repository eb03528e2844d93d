//! `strom tune`: report and apply the host settings of `strom_tuning::tune`.
//!
//! `strom tune check` reads only. `strom tune apply --dry-run` prints the shell
//! script that `strom tune apply` would run; `apply` writes the files itself
//! and exits 1 if any write failed. The hidden `--root DIR` (or
//! `STROM_TUNE_ROOT`) points every read and write at a fake `/proc` and `/sys`
//! tree, for tests.

use super::{render_table, Format};
use std::path::PathBuf;
use strom_tuning::tune::{self, Finding, Root, Selection, Status, TUNER_NAMES};

/// Exit status when a write failed.
const EXIT_WRITE_FAILED: i32 = 1;

#[derive(clap::Args)]
pub struct TuneArgs {
    #[command(subcommand)]
    command: TuneCommand,
}

#[derive(clap::Subcommand)]
enum TuneCommand {
    /// Report every tunable: current value, recommended value and why (reads only).
    Check(CheckArgs),
    /// Change the settings `check` marks "change" (as root); optional ones only with --only.
    Apply(ApplyArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Only these tuners.
    #[arg(long, value_name = "NAME", num_args = 1.., value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(TUNER_NAMES))]
    only: Vec<String>,
    #[command(flatten)]
    root: RootArg,
}

#[derive(clap::Args)]
struct ApplyArgs {
    /// Print the commands as a shell script instead of running them.
    #[arg(long)]
    dry_run: bool,
    /// Only these tuners (needed for optional ones such as busy-poll).
    #[arg(long, value_name = "NAME", num_args = 1.., value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(TUNER_NAMES))]
    only: Vec<String>,
    #[command(flatten)]
    root: RootArg,
}

#[derive(clap::Args)]
struct RootArg {
    /// Read and write under DIR instead of / (tests).
    #[arg(long, value_name = "DIR", hide = true)]
    root: Option<PathBuf>,
}

impl RootArg {
    fn root(&self) -> Root {
        match self
            .root
            .clone()
            .or_else(|| std::env::var_os("STROM_TUNE_ROOT").map(PathBuf::from))
        {
            Some(dir) => Root::at(dir),
            None => Root::real(),
        }
    }
}

/// Runs `strom tune ...`; returns the exit status.
pub fn run(args: TuneArgs) -> i32 {
    match args.command {
        TuneCommand::Check(args) => {
            let selection = Selection::only(&args.only);
            let root = args.root.root();
            let findings = tune::check(&root, &selection);
            print!("{}", render_findings(&root, &findings, args.format));
            0
        }
        TuneCommand::Apply(args) => apply(&args),
    }
}

fn apply(args: &ApplyArgs) -> i32 {
    let root = args.root.root();
    let selection = Selection::only(&args.only);
    let findings = tune::check(&root, &selection);
    if args.dry_run {
        print!("{}", tune::render_script(&root, &findings, &selection));
        return 0;
    }
    let planned = tune::plan(&findings, &selection);
    if planned.is_empty() {
        println!("strom tune: nothing to change on this host");
        return 0;
    }
    let mut failed = Vec::new();
    let mut written = 0;
    for finding in &planned {
        for (write, result) in finding.writes.iter().zip(tune::apply(&finding.writes)) {
            match result {
                Ok(()) => {
                    written += 1;
                    println!("{}: {}", finding.key, write.command(&root));
                }
                Err(err) => failed.push(err),
            }
        }
    }
    if failed.is_empty() {
        println!("strom tune: {written} write(s) done; they last until reboot");
        return 0;
    }
    for err in &failed {
        eprintln!("strom tune: {err}");
    }
    let hint = if failed.iter().any(tune::WriteError::is_permission) {
        " (run as root)"
    } else {
        ""
    };
    eprintln!(
        "strom tune: {} of {} write(s) failed{hint}",
        failed.len(),
        written + failed.len()
    );
    EXIT_WRITE_FAILED
}

fn render_findings(root: &Root, findings: &[Finding], format: Format) -> String {
    match format {
        Format::Table => {
            let rows: Vec<Vec<String>> = findings
                .iter()
                .map(|f| {
                    vec![
                        f.key.clone(),
                        f.current.clone().unwrap_or_else(|| "-".into()),
                        f.recommended.clone().unwrap_or_else(|| "-".into()),
                        f.status.as_str().to_string(),
                        f.why.clone(),
                    ]
                })
                .collect();
            let mut out = render_table(
                &["TUNABLE", "CURRENT", "RECOMMENDED", "STATUS", "WHY"],
                &rows,
            );
            let changes = findings
                .iter()
                .filter(|f| f.status == Status::Change)
                .count();
            if changes > 0 {
                out.push_str(&format!(
                    "\n{changes} setting(s) to change: `strom tune apply --dry-run` shows the commands\n"
                ));
            }
            out
        }
        Format::Json => {
            let tunables: Vec<serde_json::Value> = findings
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "tuner": f.tuner,
                        "key": f.key,
                        "current": f.current,
                        "recommended": f.recommended,
                        "status": f.status,
                        "why": f.why,
                        "commands": f.writes.iter().map(|w| w.command(root)).collect::<Vec<_>>(),
                    })
                })
                .collect();
            format!("{}\n", serde_json::json!({ "tunables": tunables }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(key: &str, status: Status) -> Finding {
        Finding {
            tuner: "swappiness",
            key: key.to_string(),
            current: Some("60".into()),
            recommended: Some("1".into()),
            status,
            why: "because".into(),
            writes: vec![tune::Write::kernel(
                &Root::real(),
                "proc/sys/vm/swappiness",
                "1",
            )],
        }
    }

    #[test]
    fn table_has_the_columns_and_points_at_the_dry_run() {
        let text = render_findings(
            &Root::real(),
            &[finding("vm.swappiness", Status::Change)],
            Format::Table,
        );
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("TUNABLE        CURRENT  RECOMMENDED  STATUS  WHY")
        );
        assert_eq!(
            lines.next(),
            Some("vm.swappiness  60       1            change  because")
        );
        assert!(text.contains("strom tune apply --dry-run"), "{text}");
        let ok = render_findings(&Root::real(), &[finding("x", Status::Ok)], Format::Table);
        assert!(!ok.contains("--dry-run"), "{ok}");
    }

    #[test]
    fn json_is_one_line_with_the_commands() {
        let text = render_findings(
            &Root::real(),
            &[finding("vm.swappiness", Status::Change)],
            Format::Json,
        );
        assert_eq!(text.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        let tunable = &value["tunables"][0];
        assert_eq!(tunable["status"], "change");
        assert_eq!(tunable["commands"][0], "sysctl -w vm.swappiness=1");
        let missing = Finding::not_available("governor", "cpu.governor", "no cpufreq");
        let text = render_findings(&Root::real(), &[missing], Format::Json);
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["tunables"][0]["current"], serde_json::Value::Null);
        assert_eq!(value["tunables"][0]["status"], "not-available");
    }
}
