//! The figures of one `make bench` run: the machine, the table printed, the JSON written to
//! `target/bench/results.json`.

use serde::Serialize;

/// Where the figures came from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub date: String,
}

impl Machine {
    pub fn here() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu,
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|k| k.trim().to_owned())
                .unwrap_or_default(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{} CPUs ({}), {} GiB RAM, Linux {}, {}",
            self.nproc, self.cpu, self.memory_gib, self.kernel, self.date
        )
    }
}

/// One line of the table: a figure, its target and whether it met it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub figure: String,
    pub target: String,
    /// `None`: no target (context only); `Some(false)`: missed or not measured.
    pub pass: Option<bool>,
}

impl Row {
    pub fn new(metric: impl Into<String>, figure: impl Into<String>) -> Row {
        Row {
            metric: metric.into(),
            figure: figure.into(),
            target: String::new(),
            pass: None,
        }
    }

    pub fn target(mut self, target: impl Into<String>, pass: bool) -> Row {
        self.target = target.into();
        self.pass = Some(pass);
        self
    }

    fn verdict(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "",
        }
    }
}

/// Milliseconds as the table shows them.
pub fn fmt_ms(ms: f64) -> String {
    if ms.is_nan() {
        "n/a".to_owned()
    } else if ms.abs() >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms.abs() >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// A Markdown table (it reads well in a terminal and pastes into the README).
pub fn table(rows: &[Row]) -> String {
    let headers = ["metric", "figure", "target", "result"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.metric.clone(),
                r.figure.clone(),
                r.target.clone(),
                r.verdict().to_owned(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut out = String::from("|");
        for (cell, w) in cells.iter().zip(widths) {
            out.push_str(&format!(" {cell:<w$} |"));
        }
        out.push('\n');
        out
    };
    let mut out = line(headers);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line([&rule[0], &rule[1], &rule[2], &rule[3]]));
    for row in &cells {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_says_pass_or_fail() {
        let rows = vec![
            Row::new("approval → membership p50", "12 ms").target("≤ 150 ms", true),
            Row::new("binary elevate-request", "9.10 MB").target("≤ 8 MB", false),
            Row::new("context", "x"),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[2].contains("PASS"));
        assert!(lines[3].contains("FAIL"));
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{text}");
    }

    #[test]
    fn milliseconds_are_shown_at_a_useful_precision() {
        assert_eq!(fmt_ms(3.21), "3.2 ms");
        assert_eq!(fmt_ms(123.4), "123 ms");
        assert_eq!(fmt_ms(1534.0), "1.53 s");
        assert_eq!(fmt_ms(f64::NAN), "n/a");
    }

    #[test]
    fn the_machine_is_described() {
        let machine = Machine::here();
        assert!(machine.nproc >= 1);
        assert!(!machine.date.is_empty());
    }
}
