//! Drawing the charts with `plotters`, one drawing for both backends: SVG text for the console,
//! an RGB buffer encoded as PNG for export.
//!
//! There is a palette for a light and one for a dark background, both for colour-blind readers: severities run from dark red
//! (critical) through orange (high) and amber (medium) to grey-blue (low), so they differ in
//! lightness as well as hue, and the other series use the Okabe–Ito blue and vermilion.

use std::sync::OnceLock;

use plotters::coord::combinators::{BindKeyPoints, WithKeyPoints};
use plotters::coord::types::RangedCoordi32;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use super::{
    ActivityDay, AnalyticsError, ChartData, ChartSeries, DeadlineBuckets, RuleCount, SeverityDay,
    StatusCount, MAX_SIZE, MIN_SIZE,
};
use crate::privacy::DUE_SOON_DAYS;

/// DejaVu Sans 2.37, unmodified (licence: `assets/fonts/LICENSE-DejaVu.txt`). It measures text
/// for the layout of both formats and draws the text of PNGs, so no system font is needed.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family text is drawn in: an SVG names it, so the console shows its own sans-serif.
const FAMILY: &str = "sans-serif";

/// The colours of one theme.
pub(super) struct Palette {
    background: RGBColor,
    ink: RGBColor,
    muted: RGBColor,
    grid: RGBColor,
    critical: RGBColor,
    high: RGBColor,
    medium: RGBColor,
    low: RGBColor,
    blue: RGBColor,
    vermilion: RGBColor,
    closed: RGBColor,
}

/// For a light background (the console's light theme, exports, the command line).
pub(super) static LIGHT: Palette = Palette {
    background: RGBColor(0xff, 0xff, 0xff),
    ink: RGBColor(0x1f, 0x29, 0x33),
    muted: RGBColor(0x52, 0x60, 0x6d),
    grid: RGBColor(0xe4, 0xe7, 0xeb),
    critical: RGBColor(0x8e, 0x0b, 0x13),
    high: RGBColor(0xe8, 0x59, 0x0c),
    medium: RGBColor(0xf5, 0xb4, 0x00),
    low: RGBColor(0x7f, 0x93, 0xad),
    blue: RGBColor(0x00, 0x72, 0xb2),
    vermilion: RGBColor(0xd5, 0x5e, 0x00),
    closed: RGBColor(0x9a, 0xa5, 0xb1),
};

/// For the console's dark theme: its card surface, light text, and severities that still run
/// in lightness (from the brightest red, critical, to grey-blue, low) against the dark ground.
pub(super) static DARK: Palette = Palette {
    background: RGBColor(0x11, 0x18, 0x27),
    ink: RGBColor(0xe2, 0xe8, 0xf0),
    muted: RGBColor(0x9a, 0xa8, 0xbd),
    grid: RGBColor(0x26, 0x31, 0x42),
    critical: RGBColor(0xff, 0x5c, 0x5c),
    high: RGBColor(0xff, 0x9a, 0x3d),
    medium: RGBColor(0xf2, 0xcc, 0x4d),
    low: RGBColor(0x8d, 0x9b, 0xae),
    blue: RGBColor(0x56, 0xb4, 0xe9),
    vermilion: RGBColor(0xf0, 0x8a, 0x3c),
    closed: RGBColor(0x5c, 0x68, 0x75),
};

/// The smallest text size given to plotters: its SVG backend writes `font-size` as the size
/// divided by 1.24, so this is 12 pixels in the console, which shows the drawing at 1:1.
const MIN_TEXT: f64 = 12.0 * 1.24;

/// Width of one day (or height of one bar's row) in chart coordinates. Integer coordinates,
/// because plotters formats the labels of an integer axis with custom ticks but not of a float
/// one.
const UNIT: i32 = 20;

/// A checked drawing size.
#[derive(Debug, Clone, Copy)]
pub(super) struct Size {
    w: u32,
    h: u32,
}

impl Size {
    pub(super) fn new(w: u32, h: u32) -> Result<Self, AnalyticsError> {
        if (MIN_SIZE.0..=MAX_SIZE.0).contains(&w) && (MIN_SIZE.1..=MAX_SIZE.1).contains(&h) {
            Ok(Self { w, h })
        } else {
            Err(AnalyticsError::Render(format!(
                "a chart is {}×{} to {}×{} pixels, not {w}×{h}",
                MIN_SIZE.0, MIN_SIZE.1, MAX_SIZE.0, MAX_SIZE.1
            )))
        }
    }
}

type Area<DB> = DrawingArea<DB, Shift>;
type Drawn<T, DB> = Result<T, DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn render_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> AnalyticsError {
    AnalyticsError::Render(e.to_string())
}

/// Registers the embedded font with plotters once per process.
fn font_ready() -> Result<(), AnalyticsError> {
    static READY: OnceLock<bool> = OnceLock::new();
    let ready = *READY
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ready {
        Ok(())
    } else {
        Err(AnalyticsError::Render(
            "the embedded font did not load".into(),
        ))
    }
}

pub(super) fn svg(
    data: &ChartData,
    size: Size,
    p: &'static Palette,
) -> Result<String, AnalyticsError> {
    font_ready()?;
    let mut out = String::with_capacity(64 * 1024);
    {
        let root = SVGBackend::with_string(&mut out, (size.w, size.h)).into_drawing_area();
        draw(&root, data, p).map_err(render_error)?;
        root.present().map_err(render_error)?;
    }
    Ok(with_accessible_name(out, data))
}

pub(super) fn png(
    data: &ChartData,
    size: Size,
    p: &'static Palette,
) -> Result<Vec<u8>, AnalyticsError> {
    font_ready()?;
    let mut pixels = vec![0u8; size.w as usize * size.h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (size.w, size.h)).into_drawing_area();
        draw(&root, data, p).map_err(render_error)?;
        root.present().map_err(render_error)?;
    }
    let encode = |e: ::png::EncodingError| AnalyticsError::Render(e.to_string());
    let mut out = Vec::with_capacity(pixels.len() / 8);
    let mut encoder = ::png::Encoder::new(&mut out, size.w, size.h);
    encoder.set_color(::png::ColorType::Rgb);
    encoder.set_depth(::png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(&pixels).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(out)
}

/// Names the picture for screen readers: `role="img"` and a `<title>` first child.
fn with_accessible_name(svg: String, data: &ChartData) -> String {
    // plotters opens the document with `<svg width=".." height=".." viewBox=".." xmlns="..">\n`.
    let Some(end) = svg.find(">\n") else {
        return svg;
    };
    let mut out = String::with_capacity(svg.len() + 256);
    out.push_str(&svg[..end]);
    out.push_str(" role=\"img\">\n<title>");
    for c in format!("{}: {}", data.title, data.subtitle).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            other => out.push(other),
        }
    }
    out.push_str("</title>\n");
    out.push_str(&svg[end + 2..]);
    out
}

/// Sizes scaled to the drawing (1.0 at 800×450, text never under [`MIN_TEXT`]) and the
/// palette of the chosen theme.
struct Theme {
    k: f64,
    p: &'static Palette,
}

impl Theme {
    fn of<DB: DrawingBackend>(area: &Area<DB>, p: &'static Palette) -> Self {
        let (w, h) = area.dim_in_pixel();
        Self {
            k: (f64::from(w) / 800.0)
                .min(f64::from(h) / 450.0)
                .clamp(0.75, 3.0),
            p,
        }
    }

    fn px(&self, v: f64) -> i32 {
        (v * self.k).round() as i32
    }

    fn text(&self, size: f64, color: &'static RGBColor) -> TextStyle<'static> {
        (FAMILY, (size * self.k).max(MIN_TEXT))
            .into_font()
            .color(color)
    }

    fn title(&self) -> TextStyle<'static> {
        self.text(21.0, &self.p.ink)
    }

    fn subtitle(&self) -> TextStyle<'static> {
        self.text(14.5, &self.p.muted)
    }

    fn label(&self) -> TextStyle<'static> {
        self.text(13.5, &self.p.muted)
    }

    fn strong_label(&self) -> TextStyle<'static> {
        self.text(13.5, &self.p.ink)
    }
}

fn draw<DB: DrawingBackend>(
    root: &Area<DB>,
    data: &ChartData,
    p: &'static Palette,
) -> Drawn<(), DB> {
    let t = Theme::of(root, p);
    root.fill(&t.p.background)?;
    let body = header(root, data, &t)?;
    if !data.has_data() {
        let (w, h) = body.dim_in_pixel();
        let style = t
            .text(17.0, &t.p.muted)
            .pos(Pos::new(HPos::Center, VPos::Center));
        return body.draw(&Text::new(
            "No data in this period",
            (w as i32 / 2, h as i32 / 2),
            style,
        ));
    }
    match &data.series {
        ChartSeries::IncidentsBySeverity { days } => incidents(&body, days, &t),
        ChartSeries::ActivityVolume { days } => activity(&body, days, &t),
        ChartSeries::TopRules { rules, .. } => top_rules(&body, rules, &t),
        ChartSeries::DsrStatus {
            by_status,
            open_by_deadline,
        } => dsr(&body, by_status, open_by_deadline, &t),
    }
}

/// Title and subtitle at the top; returns the area below them.
fn header<DB: DrawingBackend>(root: &Area<DB>, data: &ChartData, t: &Theme) -> Drawn<Area<DB>, DB> {
    let pad = t.px(16.0);
    let (w, _) = root.dim_in_pixel();
    let room = w as i32 - 2 * pad;
    let top_left = Pos::new(HPos::Left, VPos::Top);
    let title = fit(root, &data.title, &t.title(), room)?;
    let subtitle = fit(root, &data.subtitle, &t.subtitle(), room)?;
    let (_, title_h) = root.estimate_text_size(&title, &t.title())?;
    let (_, subtitle_h) = root.estimate_text_size(&subtitle, &t.subtitle())?;
    let mut y = pad;
    root.draw(&Text::new(title, (pad, y), t.title().pos(top_left)))?;
    y += title_h as i32 + t.px(6.0);
    root.draw(&Text::new(subtitle, (pad, y), t.subtitle().pos(top_left)))?;
    y += subtitle_h as i32 + t.px(10.0);
    Ok(root.split_vertically(y).1)
}

/// `text`, shortened with an ellipsis until it is at most `room` pixels wide.
fn fit<DB: DrawingBackend>(
    area: &Area<DB>,
    text: &str,
    style: &TextStyle<'_>,
    room: i32,
) -> Drawn<String, DB> {
    let fits = |s: &str| -> Drawn<bool, DB> {
        Ok(area.estimate_text_size(s, style)?.0 as i32 <= room.max(0))
    };
    if fits(text)? {
        return Ok(text.to_owned());
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let candidate: String = chars.iter().collect::<String>() + "…";
        if fits(&candidate)? {
            return Ok(candidate);
        }
    }
    Ok(String::new())
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Swatch {
    /// A filled square.
    Fill(RGBColor),
    /// A line with a dot.
    Line(RGBColor),
}

/// A row of legend entries at the top of `area`; returns the area below it.
fn legend<DB: DrawingBackend>(
    area: &Area<DB>,
    entries: &[(&str, Swatch)],
    t: &Theme,
) -> Drawn<Area<DB>, DB> {
    let pad = t.px(16.0);
    let box_side = t.px(11.0);
    let style = t.strong_label().pos(Pos::new(HPos::Left, VPos::Center));
    let row_h = t.px(20.0);
    let mid = row_h / 2;
    let mut x = pad;
    for (label, swatch) in entries {
        match swatch {
            Swatch::Fill(c) => area.draw(&Rectangle::new(
                [(x, mid - box_side / 2), (x + box_side, mid + box_side / 2)],
                c.filled(),
            ))?,
            Swatch::Line(c) => {
                area.draw(&PathElement::new(
                    vec![(x - t.px(3.0), mid), (x + box_side + t.px(3.0), mid)],
                    c.stroke_width(t.px(2.0).max(1) as u32),
                ))?;
                area.draw(&Circle::new(
                    (x + box_side / 2, mid),
                    t.px(3.0).max(2),
                    c.filled(),
                ))?;
            }
        }
        x += box_side + t.px(6.0);
        area.draw(&Text::new(*label, (x, mid), style.clone()))?;
        x += area.estimate_text_size(label, &style)?.0 as i32 + t.px(18.0);
    }
    Ok(area.split_vertically(row_h + t.px(6.0)).1)
}

/// A day axis: day `i` spans `i * UNIT..(i + 1) * UNIT`, labelled at its centre every `step`
/// days counting back from the last, so the last day (today) always has its label.
fn day_axis(days: usize, step: usize) -> WithKeyPoints<RangedCoordi32> {
    let ticks = (0..days as i32)
        .rev()
        .step_by(step.max(1))
        .map(centre)
        .collect();
    (0..days as i32 * UNIT).with_key_points(ticks)
}

/// The centre of day (or row) `i`.
fn centre(i: i32) -> i32 {
    i * UNIT + UNIT / 2
}

/// The day (or row) a coordinate falls in.
fn slot(x: i32) -> usize {
    usize::try_from(x.div_euclid(UNIT)).unwrap_or(usize::MAX)
}

/// Every how many days a label fits, for `days` days across about `width` pixels.
fn day_step(days: usize, width: i32, label_w: i32) -> usize {
    let fit = (width / (label_w + label_w / 2).max(1)).max(1) as usize;
    [1, 2, 7, 14, 15, 30, 45, 90]
        .into_iter()
        .find(|s| days.div_ceil(*s) <= fit)
        .unwrap_or(days.max(1))
}

fn day_label(day: chrono::NaiveDate) -> String {
    day.format("%b %-d").to_string()
}

/// The top of a count axis: a little headroom above the largest value.
fn headroom(max: u64) -> u64 {
    max + max / 8 + 1
}

/// Counts on axes: `950`, `9,500`, `12k`, `12.5k`, `1.2M`.
fn compact(v: u64) -> String {
    let short = |x: f64, unit: &str| {
        let s = format!("{x:.1}");
        format!("{}{unit}", s.strip_suffix(".0").unwrap_or(&s))
    };
    match v {
        0..=9_999 => grouped(v),
        10_000..=999_999 => short(v as f64 / 1e3, "k"),
        _ => short(v as f64 / 1e6, "M"),
    }
}

/// `12345` as `12,345`.
fn grouped(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Width of the widest of `labels`.
fn widest<DB: DrawingBackend>(
    area: &Area<DB>,
    labels: impl IntoIterator<Item = String>,
    style: &TextStyle<'_>,
) -> Drawn<i32, DB> {
    let mut w = 0;
    for l in labels {
        w = w.max(area.estimate_text_size(&l, style)?.0 as i32);
    }
    Ok(w)
}

fn incidents<DB: DrawingBackend>(
    area: &Area<DB>,
    days: &[SeverityDay],
    t: &Theme,
) -> Drawn<(), DB> {
    let body = legend(
        area,
        &[
            ("Critical", Swatch::Fill(t.p.critical)),
            ("High", Swatch::Fill(t.p.high)),
            ("Medium", Swatch::Fill(t.p.medium)),
            ("Low", Swatch::Fill(t.p.low)),
        ],
        t,
    )?;
    let top = headroom(days.iter().map(SeverityDay::total).max().unwrap_or(0));
    let label = t.label();
    let y_w = widest(&body, [compact(top)], &label)? + t.px(40.0);
    let x_label_w = widest(&body, days.iter().map(|d| day_label(d.day)), &label)?;
    let (w, _) = body.dim_in_pixel();
    let step = day_step(days.len(), w as i32 - y_w, x_label_w);
    let mut chart = ChartBuilder::on(&body)
        .margin_left(t.px(8.0))
        .margin_right(t.px(20.0))
        .margin_bottom(t.px(8.0))
        .x_label_area_size(t.px(34.0))
        .y_label_area_size(y_w)
        .build_cartesian_2d(day_axis(days.len(), step), 0u64..top)?;
    let x_fmt = |x: &i32| {
        days.get(slot(*x))
            .map(|d| day_label(d.day))
            .unwrap_or_default()
    };
    let y_fmt = |y: &u64| compact(*y);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(t.p.grid)
        .axis_style(t.p.muted)
        .label_style(label.clone())
        .axis_desc_style(t.strong_label())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .y_labels(6)
        .y_desc("Incidents opened")
        .draw()?;
    chart.draw_series(days.iter().enumerate().flat_map(|(i, d)| {
        let i = i as i32;
        let (left, right) = (i * UNIT + 3, (i + 1) * UNIT - 3);
        let mut base = 0;
        // Critical at the bottom, where it is read first.
        [
            (d.critical, t.p.critical),
            (d.high, t.p.high),
            (d.medium, t.p.medium),
            (d.low, t.p.low),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(move |(n, color)| {
            let bar = Rectangle::new([(left, base), (right, base + n)], color.filled());
            base += n;
            bar
        })
    }))?;
    Ok(())
}

fn activity<DB: DrawingBackend>(area: &Area<DB>, days: &[ActivityDay], t: &Theme) -> Drawn<(), DB> {
    let body = legend(
        area,
        &[
            ("Activity events (left axis)", Swatch::Fill(t.p.blue)),
            (
                "Rate-limit violations (right axis)",
                Swatch::Line(t.p.vermilion),
            ),
        ],
        t,
    )?;
    let events_top = headroom(days.iter().map(|d| d.events).max().unwrap_or(0));
    let violations_top = headroom(
        days.iter()
            .map(|d| d.rate_limit_violations)
            .max()
            .unwrap_or(0),
    );
    let label = t.label();
    let left_w = widest(&body, [compact(events_top)], &label)? + t.px(40.0);
    let right_w = widest(&body, [compact(violations_top)], &label)? + t.px(40.0);
    let x_label_w = widest(&body, days.iter().map(|d| day_label(d.day)), &label)?;
    let (w, _) = body.dim_in_pixel();
    let step = day_step(days.len(), w as i32 - left_w - right_w, x_label_w);
    let mut chart = ChartBuilder::on(&body)
        .margin_left(t.px(8.0))
        .margin_right(t.px(8.0))
        .margin_bottom(t.px(8.0))
        .x_label_area_size(t.px(34.0))
        .y_label_area_size(left_w)
        .right_y_label_area_size(right_w)
        .build_cartesian_2d(day_axis(days.len(), step), 0u64..events_top)?
        .set_secondary_coord(day_axis(days.len(), step), 0u64..violations_top);
    let x_fmt = |x: &i32| {
        days.get(slot(*x))
            .map(|d| day_label(d.day))
            .unwrap_or_default()
    };
    let y_fmt = |y: &u64| compact(*y);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(t.p.grid)
        .axis_style(t.p.muted)
        .label_style(label.clone())
        .axis_desc_style(t.strong_label())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .y_labels(6)
        .y_desc("Activity events")
        .draw()?;
    chart
        .configure_secondary_axes()
        .axis_style(t.p.muted)
        .label_style(t.text(13.5, &t.p.vermilion))
        .axis_desc_style(t.text(13.5, &t.p.vermilion))
        .y_label_formatter(&y_fmt)
        .y_labels(6)
        .y_desc("Rate-limit violations")
        .draw()?;
    chart.draw_series(
        AreaSeries::new(
            days.iter()
                .enumerate()
                .map(|(i, d)| (centre(i as i32), d.events)),
            0,
            t.p.blue.mix(0.22),
        )
        .border_style(t.p.blue.stroke_width(t.px(2.0).max(1) as u32)),
    )?;
    chart.draw_secondary_series(LineSeries::new(
        days.iter()
            .enumerate()
            .map(|(i, d)| (centre(i as i32), d.rate_limit_violations)),
        t.p.vermilion.stroke_width(t.px(2.0).max(1) as u32),
    ))?;
    let dot = if days.len() > 45 { 2.0 } else { 3.0 };
    chart.draw_secondary_series(days.iter().enumerate().map(|(i, d)| {
        Circle::new(
            (centre(i as i32), d.rate_limit_violations),
            t.px(dot).max(2),
            t.p.vermilion.filled(),
        )
    }))?;
    Ok(())
}

fn top_rules<DB: DrawingBackend>(area: &Area<DB>, rules: &[RuleCount], t: &Theme) -> Drawn<(), DB> {
    let bars: Vec<Bar> = rules
        .iter()
        .map(|r| Bar {
            label: r.rule.clone(),
            value: r.count,
            color: t.p.blue,
        })
        .collect();
    hbars(area, None, &bars, "Evidence rows", t)
}

fn dsr<DB: DrawingBackend>(
    area: &Area<DB>,
    by_status: &[StatusCount],
    open: &DeadlineBuckets,
    t: &Theme,
) -> Drawn<(), DB> {
    let statuses: Vec<Bar> = by_status
        .iter()
        .map(|s| Bar {
            label: status_label(s.status).to_owned(),
            value: s.count,
            color: if s.status.is_closed() {
                t.p.closed
            } else {
                t.p.blue
            },
        })
        .collect();
    let deadlines = [
        Bar {
            label: "Overdue".into(),
            value: open.overdue,
            color: t.p.critical,
        },
        Bar {
            label: format!("Due within {DUE_SOON_DAYS} days"),
            value: open.due_soon,
            color: t.p.medium,
        },
        Bar {
            label: "Due later".into(),
            value: open.due_later,
            color: t.p.low,
        },
    ];
    let (w, h) = area.dim_in_pixel();
    // Side by side where there is room, one above the other in a narrow card.
    let (left, right) = if w >= 560 {
        area.split_horizontally(w * 11 / 20)
    } else {
        area.split_vertically(h * 3 / 5)
    };
    hbars(
        &left,
        Some("Received in the period, by status"),
        &statuses,
        "Requests",
        t,
    )?;
    hbars(
        &right,
        Some("Open now, by deadline"),
        &deadlines,
        "Requests",
        t,
    )
}

fn status_label(s: crate::privacy::RequestStatus) -> &'static str {
    use crate::privacy::RequestStatus::*;
    match s {
        Received => "Received",
        Verifying => "Verifying",
        Verified => "Verified",
        InProgress => "In progress",
        Completed => "Completed",
        Rejected => "Rejected",
        Withdrawn => "Withdrawn",
    }
}

/// One horizontal bar.
struct Bar {
    label: String,
    value: u64,
    color: RGBColor,
}

/// Horizontal bars, the first at the top, labelled on the left, each value at its bar's end.
fn hbars<DB: DrawingBackend>(
    area: &Area<DB>,
    caption: Option<&str>,
    bars: &[Bar],
    x_desc: &str,
    t: &Theme,
) -> Drawn<(), DB> {
    let pad = t.px(16.0);
    let area = match caption {
        Some(c) => {
            let style = t.strong_label().pos(Pos::new(HPos::Left, VPos::Top));
            let (w, _) = area.dim_in_pixel();
            let c = fit(area, c, &style, w as i32 - 2 * pad)?;
            area.draw(&Text::new(c, (pad, 0), style.clone()))?;
            area.split_vertically(area.estimate_text_size("Ag", &style)?.1 as i32 + t.px(8.0))
                .1
        }
        None => area.clone(),
    };
    let (w, _) = area.dim_in_pixel();
    let label = t.label();
    let names: Vec<String> = {
        let room = (w as i32 * 2 / 5).max(t.px(60.0));
        let mut v = Vec::with_capacity(bars.len());
        for b in bars {
            v.push(fit(&area, &b.label, &t.strong_label(), room)?);
        }
        v
    };
    let y_w = widest(&area, names.iter().cloned(), &t.strong_label())? + t.px(12.0);
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0);
    // Room at the right for the value printed after the longest bar.
    let top = (max + max / 5).max(max + 1);
    let n = bars.len();
    let rows: Vec<i32> = (0..n as i32).map(centre).collect();
    let mut chart = ChartBuilder::on(&area)
        .margin_left(pad)
        .margin_right(pad)
        .margin_bottom(t.px(6.0))
        .x_label_area_size(t.px(40.0))
        .y_label_area_size(y_w)
        .build_cartesian_2d(0u64..top, (0..n as i32 * UNIT).with_key_points(rows))?;
    // Row i from the bottom shows bar n - 1 - i, so the first bar is at the top.
    let y_fmt = |y: &i32| {
        n.checked_sub(slot(*y).saturating_add(1))
            .and_then(|i| names.get(i))
            .cloned()
            .unwrap_or_default()
    };
    let x_fmt = |x: &u64| compact(*x);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(t.p.grid)
        .axis_style(t.p.muted)
        .x_label_style(label.clone())
        .y_label_style(t.strong_label())
        .axis_desc_style(t.strong_label())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_labels(5)
        .x_desc(x_desc)
        .draw()?;
    let value_style = t.strong_label().pos(Pos::new(HPos::Left, VPos::Center));
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let row = (n - 1 - i) as i32;
        Rectangle::new(
            [(0, row * UNIT + 4), (b.value, (row + 1) * UNIT - 4)],
            b.color.filled(),
        )
    }))?;
    let gap = t.px(5.0);
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        EmptyElement::at((b.value, centre((n - 1 - i) as i32)))
            + Text::new(grouped(b.value), (gap, 0), value_style.clone())
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_short() {
        assert_eq!(compact(0), "0");
        assert_eq!(compact(9_500), "9,500");
        assert_eq!(compact(12_000), "12k");
        assert_eq!(compact(12_500), "12.5k");
        assert_eq!(compact(1_250_000), "1.2M");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(100), "100");
    }

    #[test]
    fn day_labels_fit_and_today_is_labelled() {
        assert_eq!(day_step(7, 700, 40), 1);
        assert_eq!(day_step(90, 700, 40), 14);
        let axis = day_axis(30, 7);
        // The labels are the bold key points (the light ones draw no lines here).
        let ticks = axis.key_points(plotters::coord::ranged1d::BoldPoints(10));
        assert!(ticks.contains(&centre(29)), "{ticks:?}");
        assert!(ticks.contains(&centre(22)) && ticks.contains(&centre(1)));
        assert_eq!(ticks.len(), 5);
        assert_eq!(slot(centre(29)), 29);
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        assert!(Size::new(800, 450).is_ok());
        assert!(Size::new(MIN_SIZE.0 - 1, 450).is_err());
        assert!(Size::new(800, MAX_SIZE.1 + 1).is_err());
    }
}
