//! Fleet reports drawn as SVG on the server (plotters): RMA volume per week, failure Pareto by
//! part, fault code, site and cluster, depot turnaround distribution, no-fault-found rate by site,
//! and depot stock.
use crate::domain::lifecycle::Status;
use crate::entities::{cluster, depot, event, part, rma, site, unit};
use crate::error::{AppError, AppResult};
use crate::services::Actor;
use chrono::{DateTime, Duration, Utc};
use plotters::prelude::*;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// A status change: RMA, from, to, when.
type Move = (Uuid, Option<String>, Option<String>, DateTime<Utc>);

/// One bar: a label and its value.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Bar {
    pub label: String,
    pub value: f64,
}

/// The figures behind the charts, also served as JSON.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Figures {
    pub volume_per_week: Vec<Bar>,
    pub by_part: Vec<Bar>,
    pub by_fault_code: Vec<Bar>,
    pub by_site: Vec<Bar>,
    pub by_cluster: Vec<Bar>,
    /// RMAs per whole days from `received` to an end state.
    pub turnaround_days: Vec<Bar>,
    /// Percent of triaged units found without fault, per site.
    pub no_fault_found_percent: Vec<Bar>,
    pub stock_by_depot: Vec<Bar>,
    /// Spares on each depot's shelves at the end of each of the last twelve weeks.
    pub stock_over_time: Vec<DepotStock>,
}

/// One depot's stock, week by week.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DepotStock {
    pub depot: String,
    pub weeks: Vec<Bar>,
}

async fn grouped(db: &DatabaseConnection, actor: &Actor, column: rma::Column) -> AppResult<Vec<(Option<Uuid>, i64)>> {
    let mut q = rma::Entity::find()
        .select_only()
        .column(column)
        .column_as(Expr::from(Func::count(Expr::col(rma::Column::Id))), "n")
        .group_by(column);
    if let Some(org) = actor.organization_scope() {
        q = q.filter(rma::Column::OrganizationId.eq(org));
    }
    Ok(q.into_tuple().all(db).await?)
}

/// Sorted by value, largest first: a Pareto.
fn pareto(mut bars: Vec<Bar>) -> Vec<Bar> {
    bars.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.label.cmp(&b.label)));
    bars
}

fn named(rows: Vec<(Option<Uuid>, i64)>, names: &HashMap<Uuid, String>) -> Vec<Bar> {
    pareto(
        rows.into_iter()
            .filter_map(|(id, n)| {
                id.map(|id| Bar {
                    label: names.get(&id).cloned().unwrap_or_default(),
                    value: n as f64,
                })
            })
            .collect(),
    )
}

/// Computes every figure for what `actor` may see, as of `now`.
pub async fn figures(db: &DatabaseConnection, actor: &Actor, now: DateTime<Utc>) -> AppResult<Figures> {
    let parts = crate::services::views::names_by_id::<part::Entity>(db, |x| x.number).await?;
    let sites = crate::services::views::names_by_id::<site::Entity>(db, |x| x.code).await?;
    let clusters = crate::services::views::names_by_id::<cluster::Entity>(db, |x| x.name).await?;

    let by_part = named(grouped(db, actor, rma::Column::PartId).await?, &parts);
    let by_site = named(grouped(db, actor, rma::Column::SiteId).await?, &sites);
    let by_cluster = named(grouped(db, actor, rma::Column::ClusterId).await?, &clusters);
    let mut faults = rma::Entity::find()
        .select_only()
        .column(rma::Column::FaultCode)
        .column_as(Expr::from(Func::count(Expr::col(rma::Column::Id))), "n")
        .filter(rma::Column::FaultCode.is_not_null())
        .group_by(rma::Column::FaultCode);
    if let Some(org) = actor.organization_scope() {
        faults = faults.filter(rma::Column::OrganizationId.eq(org));
    }
    let faults: Vec<(Option<String>, i64)> = faults.into_tuple().all(db).await?;
    let by_fault_code = pareto(
        faults
            .into_iter()
            .filter_map(|(c, n)| {
                c.map(|c| Bar {
                    label: c,
                    value: n as f64,
                })
            })
            .collect(),
    );

    // Volume: the last twelve weeks, oldest first.
    let since = now - Duration::weeks(12);
    let mut recent = rma::Entity::find()
        .select_only()
        .column(rma::Column::CreatedAt)
        .filter(rma::Column::CreatedAt.gte(since));
    if let Some(org) = actor.organization_scope() {
        recent = recent.filter(rma::Column::OrganizationId.eq(org));
    }
    let created: Vec<DateTime<Utc>> = recent.into_tuple().all(db).await?;
    let volume_per_week = (0..12)
        .map(|i| {
            let start = since + Duration::weeks(i);
            let n = created
                .iter()
                .filter(|c| **c >= start && **c < start + Duration::weeks(1))
                .count();
            Bar {
                label: start.format("%m-%d").to_string(),
                value: n as f64,
            }
        })
        .collect();

    // Turnaround and no-fault-found come from the transitions.
    let mut visible = rma::Entity::find()
        .select_only()
        .columns([rma::Column::Id, rma::Column::SiteId]);
    if let Some(org) = actor.organization_scope() {
        visible = visible.filter(rma::Column::OrganizationId.eq(org));
    }
    let visible: HashMap<Uuid, Uuid> = visible
        .into_tuple::<(Uuid, Uuid)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let moves: Vec<Move> = event::Entity::find()
        .select_only()
        .columns([
            event::Column::RmaId,
            event::Column::FromStatus,
            event::Column::ToStatus,
            event::Column::At,
        ])
        .filter(event::Column::ToStatus.is_in([
            Status::Received.as_str(),
            Status::Triage.as_str(),
            Status::Testing.as_str(),
            Status::ReturnedToStock.as_str(),
            Status::Scrapped.as_str(),
        ]))
        .into_tuple()
        .all(db)
        .await?;
    let mut received: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    let mut ended: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    let mut triaged: HashMap<Uuid, (u32, u32)> = HashMap::new();
    for (rma_id, from, to, at) in moves.into_iter().filter(|m| visible.contains_key(&m.0)) {
        match to.as_deref() {
            Some("received") => {
                received.entry(rma_id).or_insert(at);
            }
            Some("returned_to_stock") | Some("scrapped") => {
                ended.entry(rma_id).or_insert(at);
            }
            Some("triage") => triaged.entry(visible[&rma_id]).or_default().0 += 1,
            Some("testing") if from.as_deref() == Some("triage") => triaged.entry(visible[&rma_id]).or_default().1 += 1,
            _ => {}
        }
    }
    let mut days: HashMap<i64, u32> = HashMap::new();
    for (id, end) in &ended {
        if let Some(start) = received.get(id) {
            *days.entry((*end - *start).num_days()).or_default() += 1;
        }
    }
    let longest = days.keys().max().copied().unwrap_or(0).max(10);
    let turnaround_days = (0..=longest)
        .map(|d| Bar {
            label: d.to_string(),
            value: *days.get(&d).unwrap_or(&0) as f64,
        })
        .collect();
    let no_fault_found_percent = pareto(
        triaged
            .into_iter()
            .map(|(site, (all, nff))| Bar {
                label: sites.get(&site).cloned().unwrap_or_default(),
                value: if all == 0 {
                    0.0
                } else {
                    (nff as f64 * 1000.0 / all as f64).round() / 10.0
                },
            })
            .collect(),
    );

    let stock_by_depot = if actor.organization_scope().is_some() {
        vec![]
    } else {
        let rows: Vec<(Option<Uuid>, i64)> = crate::services::stock::on_shelves()
            .select_only()
            .column(unit::Column::DepotId)
            .column_as(Expr::from(Func::count(Expr::col(unit::Column::Id))), "n")
            .group_by(unit::Column::DepotId)
            .into_tuple()
            .all(db)
            .await?;
        let depots = crate::services::views::names_by_id::<depot::Entity>(db, |x| x.code).await?;
        named(rows, &depots)
    };
    let stock_over_time = if actor.organization_scope().is_some() {
        vec![]
    } else {
        stock_history(db, &stock_by_depot, since, now).await?
    };
    Ok(Figures {
        stock_over_time,
        volume_per_week,
        by_part,
        by_fault_code,
        by_site,
        by_cluster,
        turnaround_days,
        no_fault_found_percent,
        stock_by_depot,
    })
}

/// Walks each depot's stock back from today: a replacement shipped out was on the shelf before it
/// left; a unit returned to stock was not there before it came; parts consumed were.
async fn stock_history(
    db: &DatabaseConnection,
    now_by_depot: &[Bar],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<Vec<DepotStock>> {
    use crate::entities::{repair_record, shipment};
    let depots = crate::services::views::names_by_id::<depot::Entity>(db, |x| x.code).await?;
    // (depot, when, change to the stock at that moment)
    let mut changes: Vec<(String, DateTime<Utc>, f64)> = vec![];
    let shipped = shipment::Entity::find()
        .filter(shipment::Column::Direction.eq("outbound"))
        .filter(shipment::Column::ShippedAt.gte(since))
        .all(db)
        .await?;
    for s in shipped {
        if let Some(code) = s.depot_id.and_then(|d| depots.get(&d)) {
            changes.push((code.clone(), s.shipped_at, -1.0));
        }
    }
    let restocked: Vec<(Uuid, DateTime<Utc>)> = event::Entity::find()
        .select_only()
        .columns([event::Column::RmaId, event::Column::At])
        .filter(event::Column::ToStatus.eq(Status::ReturnedToStock.as_str()))
        .filter(event::Column::At.gte(since))
        .into_tuple()
        .all(db)
        .await?;
    let consumed = repair_record::Entity::find()
        .filter(repair_record::Column::Kind.eq("parts_consumed"))
        .filter(repair_record::Column::CreatedAt.gte(since))
        .all(db)
        .await?;
    let rma_depots: HashMap<Uuid, Uuid> = rma::Entity::find()
        .select_only()
        .columns([rma::Column::Id, rma::Column::ReturnDepotId])
        .filter(rma::Column::Id.is_in(restocked.iter().map(|r| r.0).chain(consumed.iter().map(|c| c.rma_id))))
        .into_tuple::<(Uuid, Uuid)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let depot_of = |rma_id: &Uuid| rma_depots.get(rma_id).and_then(|d| depots.get(d)).cloned();
    for (rma_id, at) in restocked {
        if let Some(code) = depot_of(&rma_id) {
            changes.push((code, at, 1.0));
        }
    }
    for c in consumed {
        let n = c.details["parts_consumed"].as_array().map_or(0, Vec::len) as f64;
        if let Some(code) = depot_of(&c.rma_id) {
            changes.push((code, c.created_at, -n));
        }
    }
    Ok(now_by_depot
        .iter()
        .map(|today| {
            let weeks = (1..=12)
                .map(|i| {
                    let end = since + Duration::weeks(i);
                    let later: f64 = changes
                        .iter()
                        .filter(|(d, at, _)| *d == today.label && *at > end && *at <= now)
                        .map(|c| c.2)
                        .sum();
                    Bar {
                        label: (end - Duration::days(1)).format("%m-%d").to_string(),
                        value: today.value - later,
                    }
                })
                .collect();
            DepotStock {
                depot: today.label.clone(),
                weeks,
            }
        })
        .collect())
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Axis labels large enough to read when the chart is shown at its own width (plotters' default
/// is 12 px, about 8 px once a chart shrinks into a card).
const LABELS: (&str, u32) = ("sans-serif", 15);

/// Draws a 560×300 chart on white with `draw`, as an SVG document.
fn svg(title: &str, draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn) -> AppResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 300)).into_drawing_area();
        let drawn: Drawn = root
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into));
        drawn.map_err(|e| AppError::Internal(anyhow::anyhow!("drawing {title}: {e}")))?;
    }
    Ok(svg)
}

/// A vertical bar chart of `bars` as an SVG document.
pub fn bar_chart(title: &str, y_label: &str, bars: &[Bar]) -> AppResult<String> {
    svg(title, |root| {
        let n = bars.len().max(1) as u32;
        let top = bars.iter().map(|b| b.value).fold(1.0f64, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(46)
            .y_label_area_size(44)
            .build_cartesian_2d((0u32..n).into_segmented(), 0f64..top)?;
        let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
        chart
            .configure_mesh()
            .label_style(LABELS)
            .axis_desc_style(LABELS)
            .disable_x_mesh()
            .y_desc(y_label)
            .x_labels(bars.len().max(1))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(RGBColor(29, 78, 216).filled())
                .margin(6)
                .data(bars.iter().enumerate().map(|(i, b)| (i as u32, b.value))),
        )?;
        Ok(())
    })
}

/// Failure rates as points with their 95 % intervals, one per group.
pub fn rate_chart(title: &str, rows: &[crate::services::reliability::AfrRow]) -> AppResult<String> {
    svg(title, |root| {
        let n = rows.len().max(1) as u32;
        let top = rows.iter().map(|r| r.ci_high).fold(1.0f64, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(46)
            .y_label_area_size(50)
            .build_cartesian_2d((0u32..n).into_segmented(), 0f64..top)?;
        let labels: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
        chart
            .configure_mesh()
            .label_style(LABELS)
            .axis_desc_style(LABELS)
            .disable_x_mesh()
            .y_desc("% per unit-year")
            .x_labels(rows.len().max(1))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style(("sans-serif", 13))
            .draw()?;
        let blue = RGBColor(29, 78, 216);
        chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
            ErrorBar::new_vertical(
                SegmentValue::CenterOf(i as u32),
                r.ci_low,
                r.afr_percent,
                r.ci_high,
                blue.filled(),
                10,
            )
        }))?;
        Ok(())
    })
}

/// A Kaplan–Meier step curve, with the fitted Weibull survival drawn over it when there is one.
pub fn survival_chart(title: &str, survival: &crate::services::reliability::Survival) -> AppResult<String> {
    svg(title, |root| {
        let km = &survival.kaplan_meier;
        let last = km.last().map_or(1.0, |s| s.days).max(1.0) * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..last, 0f64..1.02)?;
        chart
            .configure_mesh()
            .label_style(LABELS)
            .axis_desc_style(LABELS)
            .x_desc("days in service")
            .y_desc("surviving")
            .label_style(("sans-serif", 13))
            .draw()?;
        // Steps: flat until each failure age, then down.
        let mut points = vec![(0.0, 1.0)];
        let mut level = 1.0;
        for s in km {
            points.push((s.days, level));
            level = s.survival;
            points.push((s.days, level));
        }
        points.push((last, level));
        let blue = RGBColor(29, 78, 216);
        chart
            .draw_series(LineSeries::new(points, blue.stroke_width(2)))?
            .label("Kaplan–Meier")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], blue.stroke_width(2)));
        if let (Some(beta), Some(eta)) = (survival.weibull.beta, survival.weibull.eta_days) {
            let orange = RGBColor(234, 88, 12);
            let curve = (0..=100).map(|i| {
                let t = last * f64::from(i) / 100.0;
                (t, crate::domain::reliability::weibull_survival(t, beta, eta))
            });
            chart
                .draw_series(LineSeries::new(curve, orange.stroke_width(2)))?
                .label(format!("Weibull β {beta:.2}, η {eta:.0} d"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], orange.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()?;
        Ok(())
    })
}
