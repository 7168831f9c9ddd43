//! `--plot FILE.svg`: measured speedup against the dependency bound per block, and gas per
//! second per workload, serial and parallel.

use std::path::Path;

use plotters::prelude::*;

use crate::bench::Measurement;

/// The SVG backend's drawing area.
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Draws the measurements at `threads` into an SVG file.
pub fn plot(path: &Path, measurements: &[Measurement], threads: usize) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(600);
    speedups(&left, measurements, threads).map_err(|e| err(&e))?;
    rates(&right, measurements, threads).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// Speedup against bound per block: points on the diagonal would use the whole bound.
fn speedups(
    area: &Area<'_>,
    measurements: &[Measurement],
    threads: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let max = measurements
        .iter()
        .flat_map(|m| [m.speedup(threads), m.bound(threads)])
        .fold(threads as f64, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("speedup vs bound at {threads} threads"),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max, 0.0..max)?;
    chart
        .configure_mesh()
        .x_desc("bound (list scheduling on the dependency graph)")
        .y_desc("measured speedup")
        .draw()?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (max, max)], &BLACK.mix(0.3)))?;
    chart.draw_series(
        measurements
            .iter()
            .map(|m| Circle::new((m.bound(threads), m.speedup(threads)), 4, BLUE.filled())),
    )?;
    Ok(())
}

/// Gas per second per workload: serial and parallel bars side by side.
fn rates(
    area: &Area<'_>,
    measurements: &[Measurement],
    threads: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let rate = |gas: u64, secs: f64| gas as f64 / secs.max(1e-9) / 1e9;
    let rows: Vec<(String, f64, f64)> = measurements
        .iter()
        .map(|m| {
            let serial = rate(m.gas_used, m.serial_median().as_secs_f64());
            let parallel = rate(m.gas_used, m.parallel_median(threads).as_secs_f64());
            (m.name.clone(), serial, parallel)
        })
        .collect();
    let top = rows.iter().map(|r| r.1.max(r.2)).fold(0.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Ggas/s: serial (grey) and {threads} threads (blue)"),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(60)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..rows.len() as f64, 0.0..top.max(1e-3))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(rows.len())
        .x_label_formatter(&|x| {
            rows.get(x.floor() as usize)
                .map(|r| r.0.clone())
                .unwrap_or_default()
        })
        .y_desc("Ggas/s")
        .draw()?;
    for (i, (_, serial, parallel)) in rows.iter().enumerate() {
        let x = i as f64;
        let bars = [
            Rectangle::new(
                [(x + 0.1, 0.0), (x + 0.45, *serial)],
                RGBColor(150, 150, 150).filled(),
            ),
            Rectangle::new([(x + 0.5, 0.0), (x + 0.85, *parallel)], BLUE.filled()),
        ];
        chart.draw_series(bars)?;
    }
    Ok(())
}
