//! A replay as a picture: one self-contained HTML file (no network, no
//! external scripts or styles) with an SVG timeline — a lane per task
//! (each client, the node, the disk), one mark per timeline line in order
//! (simulated time on the axis above), faults and crashes marked, the
//! model's accepted and durable record counts drawn as lines below, and
//! the failing check highlighted with its message. Hovering (or focusing)
//! a mark shows its line; a small inline script fills the details panel
//! and sets `data-ready` on the body when it ran without error.

use std::fmt::Write as _;

use crate::run::Outcome;

/// Horizontal pixels per timeline line.
const STEP: f64 = 6.0;
/// Height of one lane.
const LANE: f64 = 26.0;
/// Left margin (lane names).
const LEFT: f64 = 90.0;
/// Height of the offsets chart.
const CHART: f64 = 160.0;

/// What kind of mark a line gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Op,
    Fault,
    Crash,
    Open,
    Failed,
    Trace,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Op => "op",
            Kind::Fault => "fault",
            Kind::Crash => "crash",
            Kind::Open => "open",
            Kind::Failed => "failed",
            Kind::Trace => "trace",
        }
    }
}

/// The lane and kind of a timeline line's text (after its time stamp).
fn classify(text: &str) -> (String, Kind) {
    let first = text.split_whitespace().next().unwrap_or_default();
    if text.starts_with("  · ") || text.starts_with("· ") {
        return ("log-core".into(), Kind::Trace);
    }
    if text.starts_with("CHECK FAILED") {
        return ("node".into(), Kind::Failed);
    }
    if text.starts_with("fault ") {
        return ("disk".into(), Kind::Fault);
    }
    if text.starts_with("CRASH") || text.contains("power cut") {
        return ("node".into(), Kind::Crash);
    }
    if text.starts_with("read ") || text.starts_with("tail ") {
        return ("readers".into(), Kind::Op);
    }
    if text.starts_with("open") || text.starts_with("CLEAN CLOSE") || text.starts_with("PROCESS RESTART") {
        return ("node".into(), Kind::Open);
    }
    let id = first.len() > 1
        && first.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && first.chars().skip(1).all(|c| c.is_ascii_digit());
    if id {
        let name = match first.chars().next() {
            Some('c') => "client",
            Some('p') => "producer",
            Some('r') => "reader",
            _ => "task",
        };
        return (format!("{name} {}", first.get(1..).unwrap_or_default()), Kind::Op);
    }
    ("node".into(), Kind::Op)
}

/// Escapes text for HTML and SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page for `out`, a traced run (`run(scn, true)`): see the module
/// docs. `title` names it (the replay command, say).
pub fn render(out: &Outcome, title: &str) -> String {
    // Lines and where they happened; the text after the time stamp.
    let lines: Vec<(&str, Option<&crate::record::TimelinePoint>)> = out
        .timeline
        .iter()
        .enumerate()
        .map(|(i, l)| (l.split_once("ms ").map_or(l.as_str(), |(_, t)| t), out.points.get(i)))
        .collect();
    let classified: Vec<(String, Kind)> = lines.iter().map(|(t, _)| classify(t)).collect();
    let mut lanes: Vec<String> = vec!["node".into(), "disk".into()];
    for (lane, _) in &classified {
        if !lanes.contains(lane) {
            lanes.push(lane.clone());
        }
    }
    // Clients and producers in order after node and disk; log-core last.
    if let Some(tasks) = lanes.get_mut(2..) {
        tasks.sort_by_key(|l| {
            (
                l == "log-core",
                l.split(' ').next().map(str::to_owned),
                l.split(' ').nth(1).and_then(|n| n.parse::<u32>().ok()),
            )
        });
    }
    let n = lines.len().max(1);
    let width = LEFT + STEP * n as f64 + 40.0;
    let lanes_h = LANE * lanes.len() as f64;
    let chart_top = 30.0 + lanes_h + 30.0;
    // The group-commit world reports no model offsets: no chart.
    let has_chart = out.points.iter().any(|p| p.offsets.is_some());
    let chart_h = if has_chart { CHART } else { 0.0 };
    let height = chart_top + chart_h + 40.0;
    let max_off = out.points.iter().filter_map(|p| p.offsets).map(|(a, _)| a).max().unwrap_or(0).max(1);
    let x = |i: usize| LEFT + STEP * i as f64 + STEP / 2.0;
    let y_off = |v: u64| chart_top + CHART - CHART * v as f64 / max_off as f64;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" role="img" aria-label="timeline">"#
    );
    // Lanes.
    for (k, lane) in lanes.iter().enumerate() {
        let y = 30.0 + LANE * k as f64;
        let _ = write!(
            svg,
            r#"<rect class="lane{}" x="{LEFT}" y="{y:.1}" width="{:.0}" height="{LANE}"/><text class="lname" x="6" y="{:.1}">{}</text>"#,
            k % 2,
            width - LEFT,
            y + LANE * 0.65,
            esc(lane)
        );
    }
    // Time axis: a tick where simulated time moved on, at most every 60 px.
    let mut last_tick = f64::NEG_INFINITY;
    for (i, (_, p)) in lines.iter().enumerate() {
        let Some(p) = p else { continue };
        if x(i) - last_tick >= 60.0 {
            last_tick = x(i);
            let _ = write!(
                svg,
                r#"<line class="tick" x1="{0:.1}" x2="{0:.1}" y1="18" y2="{1:.1}"/><text class="tlabel" x="{0:.1}" y="14">{2:.0} ms</text>"#,
                x(i),
                30.0 + lanes_h,
                p.ms
            );
        }
    }
    // Crashes as full-height lines, then one mark per line.
    for (i, (_, kind)) in classified.iter().enumerate() {
        if *kind == Kind::Crash || *kind == Kind::Failed {
            let _ = write!(
                svg,
                r#"<line class="v{class}" x1="{x:.1}" x2="{x:.1}" y1="24" y2="{y2:.1}"/>"#,
                class = kind.class(),
                x = x(i),
                y2 = chart_top + chart_h
            );
        }
    }
    for (i, ((text, p), (lane, kind))) in lines.iter().zip(&classified).enumerate() {
        let k = lanes.iter().position(|l| l == lane).unwrap_or(0);
        let y = 30.0 + LANE * k as f64 + 4.0;
        let ms = p.map_or(0.0, |p| p.ms);
        let _ = write!(
            svg,
            r#"<rect class="m {}" tabindex="0" x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" data-i="{i}" data-t="{ms:.3} ms"><title>{ms:.3} ms: {}</title></rect>"#,
            kind.class(),
            x(i) - STEP / 2.0 + 0.5,
            STEP - 1.0,
            LANE - 8.0,
            esc(text)
        );
    }
    // Offsets chart.
    if has_chart {
        let _ = write!(
            svg,
            r#"<rect class="chart" x="{LEFT}" y="{chart_top:.1}" width="{:.0}" height="{CHART}"/><text class="lname" x="6" y="{:.1}">records</text><text class="tlabel" x="{:.1}" y="{:.1}">{max_off}</text>"#,
            width - LEFT,
            chart_top + 14.0,
            LEFT - 4.0,
            chart_top + 10.0
        );
        for (which, class) in [(0, "accepted"), (1, "durable")] {
            let pts: Vec<String> = out
                .points
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    p.offsets.map(|o| format!("{:.1},{:.1}", x(i), y_off(if which == 0 { o.0 } else { o.1 })))
                })
                .collect();
            if !pts.is_empty() {
                let _ = write!(svg, r#"<polyline class="{class}" points="{}"/>"#, pts.join(" "));
            }
        }
    }
    svg.push_str("</svg>");

    let verdict = match &out.failure {
        Some(f) => format!(r#"<p class="verdict bad">FAILED: {}</p>"#, esc(f)),
        None => format!(r#"<p class="verdict ok">passed ({} ops)</p>"#, out.ops_done),
    };
    let failed_at = classified.iter().position(|(_, k)| *k == Kind::Failed);
    let jump = failed_at.map_or(String::new(), |i| {
        format!(r##"<p><a href="#" id="jump" data-i="{i}">show the failing check</a></p>"##)
    });
    format!(
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }}
h1 {{ font-size: 16px; margin: 0 0 4px; }}
.verdict.bad {{ color: #b00020; font-weight: 600; }} .verdict.ok {{ color: #11702b; font-weight: 600; }}
#scroll {{ overflow-x: auto; border: 1px solid #ccc; }}
#details {{ font-family: ui-monospace, monospace; white-space: pre-wrap; background: #f6f6f6; padding: 8px; min-height: 2.8em; margin-top: 8px; }}
.legend span {{ display: inline-block; margin-right: 14px; }} .legend i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }}
.lane0 {{ fill: #fafafa; }} .lane1 {{ fill: #f0f0f0; }} .chart {{ fill: #fcfcfc; stroke: #ddd; }}
.lname {{ font-size: 12px; fill: #333; }} .tlabel {{ font-size: 10px; fill: #777; text-anchor: middle; }} .tick {{ stroke: #e2e2e2; }}
.m {{ cursor: pointer; }} .m:hover, .m:focus, .m.sel {{ stroke: #000; stroke-width: 1.5; outline: none; }}
.op {{ fill: #4a7bd0; }} .open {{ fill: #2e9e5b; }} .fault {{ fill: #e08a00; }} .crash {{ fill: #d62728; }} .failed {{ fill: #b00020; }} .trace {{ fill: #b9b9b9; }}
.vcrash {{ stroke: #d62728; stroke-dasharray: 3 3; }} .vfailed {{ stroke: #b00020; stroke-width: 3; }}
.accepted {{ fill: none; stroke: #4a7bd0; stroke-width: 1.5; }} .durable {{ fill: none; stroke: #2e9e5b; stroke-width: 2; }}
</style></head>
<body data-ready="0">
<h1>{title}</h1>
{verdict}
<p class="legend"><span><i class="op" style="background:#4a7bd0"></i>op</span><span><i style="background:#2e9e5b"></i>open / close / restart</span><span><i style="background:#e08a00"></i>fault</span><span><i style="background:#d62728"></i>crash or power cut</span><span><i style="background:#b00020"></i>failed check</span><span><i style="background:#b9b9b9"></i>log-core tracing</span> — lines below: records <b style="color:#4a7bd0">accepted</b> and <b style="color:#2e9e5b">durable</b> in the model. One column per timeline line; hover or click a mark.</p>
{jump}
<div id="scroll">{svg}</div>
<div id="details">hover a mark for its line</div>
<script>
(function () {{
  var details = document.getElementById("details");
  var marks = document.querySelectorAll(".m");
  var sel = null;
  function show(m) {{
    if (sel) sel.classList.remove("sel");
    sel = m; m.classList.add("sel");
    details.textContent = "#" + m.dataset.i + "  " + m.querySelector("title").textContent;
  }}
  marks.forEach(function (m) {{
    m.addEventListener("mouseenter", function () {{ show(m); }});
    m.addEventListener("focus", function () {{ show(m); }});
    m.addEventListener("click", function () {{ show(m); }});
  }});
  var jump = document.getElementById("jump");
  if (jump) {{
    var target = document.querySelector('.m[data-i="' + jump.dataset.i + '"]');
    jump.addEventListener("click", function (e) {{ e.preventDefault(); show(target); target.scrollIntoView({{inline: "center"}}); }});
    show(target);
    document.getElementById("scroll").scrollLeft = Math.max(0, target.getBBox().x - 400);
  }}
  document.body.dataset.ready = String(marks.length);
}})();
</script>
</body></html>
"##,
        title = esc(title)
    )
}
