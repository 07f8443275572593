//! The soak's plot: request rate, p99 latency, resident memory, live heap and open descriptors per
//! second, one panel each on a shared time axis, with the faults marked as shaded windows.

use std::path::Path;

use plotters::prelude::*;

use super::Window;
use super::load::Second;

/// Writes the SVG plot of `seconds` to `path`, shading `faults`.
///
/// # Errors
///
/// When the file cannot be written (the message says why).
pub fn write(path: &Path, seconds: &[Second], faults: &[Window]) -> Result<(), String> {
    let root = SVGBackend::new(path, (1000, 1100)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((5, 1));
    let len = seconds.len().max(1) as f64;
    type Series = (&'static str, &'static str, Box<dyn Fn(&Second) -> f64>);
    let series: [Series; 5] = [
        (
            "requests per second",
            "req/s",
            Box::new(|s| s.requests() as f64),
        ),
        (
            "p99 latency (healthy clients)",
            "ms",
            Box::new(Second::p99_ms),
        ),
        (
            "resident memory",
            "MiB",
            Box::new(|s| s.rss_kib as f64 / 1024.0),
        ),
        ("live heap", "KiB", Box::new(|s| s.heap as f64 / 1024.0)),
        ("open file descriptors", "fds", Box::new(|s| s.fds as f64)),
    ];
    let palette = [
        RGBColor(230, 120, 60),
        RGBColor(90, 160, 90),
        RGBColor(120, 90, 200),
        RGBColor(200, 60, 120),
        RGBColor(60, 160, 200),
        RGBColor(180, 160, 40),
        RGBColor(120, 120, 120),
    ];
    for (panel, (title, unit, f)) in panels.iter().zip(series.iter()) {
        let ys: Vec<f64> = seconds.iter().map(f).collect();
        let top = ys.iter().copied().fold(0.0f64, f64::max).max(1.0) * 1.1;
        let mut chart = ChartBuilder::on(panel)
            .caption(*title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..len, 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("s")
            .y_desc(*unit)
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| e.to_string())?;
        // One colour per kind of fault; each kind in the legend once.
        let mut kinds: Vec<&str> = Vec::new();
        for w in faults {
            let (k, first) = match kinds.iter().position(|n| *n == w.name) {
                Some(k) => (k, false),
                None => {
                    kinds.push(w.name);
                    (kinds.len() - 1, true)
                }
            };
            let c = palette[k % palette.len()];
            let drawn = chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(w.from_s, 0.0), (w.to_s.max(w.from_s + 0.5), top)],
                    c.mix(0.25).filled(),
                )))
                .map_err(|e| e.to_string())?;
            if first {
                drawn.label(w.name).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.mix(0.5).filled())
                });
            }
        }
        chart
            .draw_series(LineSeries::new(
                ys.iter().enumerate().map(|(i, y)| (i as f64 + 0.5, *y)),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        if std::ptr::eq(panel, &panels[0]) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 11))
                .draw()
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())
}
