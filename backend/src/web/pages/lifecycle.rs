//! `/lifecycle`: the state diagram, laid out from the transition table on every request, and the
//! table itself, so the picture cannot drift from the rules.
use super::{Chrome, PageError, Viewer, render};
use crate::domain::lifecycle::{Applies, Status, TRANSITIONS};
use crate::state::AppState;
use axum::Router;
use axum::response::Html;
use axum::routing::get;
use serde::Serialize;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new().route("/lifecycle", get(show))
}

#[derive(Serialize)]
pub struct Node {
    pub name: &'static str,
    pub x: i32,
    pub y: i32,
    pub end: bool,
}

#[derive(Serialize)]
pub struct Edge {
    pub path: String,
    pub title: String,
    pub back: bool,
}

#[derive(Serialize)]
pub struct Row {
    pub from: String,
    pub to: &'static str,
    pub roles: String,
    pub required: String,
    /// Which RMAs the row is for, when not all.
    pub only_for: &'static str,
}

#[derive(Serialize)]
pub struct Diagram {
    pub width: i32,
    pub height: i32,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

const NODE_W: i32 = 170;
const NODE_H: i32 = 34;
const ROW_H: i32 = 64;
const COL_W: i32 = 200;

/// Layers each status by its longest path from `reported`, ignoring the edges that close a loop
/// (testing back to repair), then spreads each layer across.
pub fn diagram() -> Diagram {
    let edges: Vec<(Status, Status)> = TRANSITIONS
        .iter()
        .flat_map(|t| t.from.iter().map(move |f| (*f, t.to)))
        .collect();
    let order: Vec<Status> = Status::ALL.to_vec();
    let back_edges = back_edges(&edges);
    let is_back = |e: (Status, Status)| back_edges.contains(&e);
    let mut layer: HashMap<Status, i32> = HashMap::from([(Status::Reported, 0)]);
    for _ in 0..order.len() {
        for &(f, t) in edges.iter().filter(|e| !is_back(**e)) {
            if let Some(&lf) = layer.get(&f) {
                let entry = layer.entry(t).or_insert(0);
                *entry = (*entry).max(lf + 1);
            }
        }
    }
    let mut per_layer: HashMap<i32, Vec<Status>> = HashMap::new();
    for s in &order {
        per_layer
            .entry(layer.get(s).copied().unwrap_or(0))
            .or_default()
            .push(*s);
    }
    let widest = per_layer.values().map(Vec::len).max().unwrap_or(1) as i32;
    let width = widest * COL_W + 40;
    let mut pos: HashMap<Status, (i32, i32)> = HashMap::new();
    let mut nodes = vec![];
    for (l, statuses) in &per_layer {
        let n = statuses.len() as i32;
        for (i, s) in statuses.iter().enumerate() {
            let x = width / 2 + (2 * i as i32 - (n - 1)) * COL_W / 2;
            let y = 30 + l * ROW_H;
            pos.insert(*s, (x, y));
            nodes.push(Node {
                name: s.as_str(),
                x: x - NODE_W / 2,
                y,
                end: s.is_end(),
            });
        }
    }
    nodes.sort_by_key(|n| (n.y, n.x));
    let height = 30 + (per_layer.len() as i32) * ROW_H;
    let mut drawn = vec![];
    for t in TRANSITIONS {
        for f in t.from {
            let ((x1, y1), (x2, y2)) = (pos[f], pos[&t.to]);
            let back = is_back((*f, t.to));
            let roles: Vec<&str> = t.roles.iter().map(|r| r.as_str()).collect();
            let title = format!(
                "{} → {} by {}{}",
                f.as_str(),
                t.to.as_str(),
                roles.join(", "),
                match only_for(t.applies) {
                    "" => String::new(),
                    only => format!(" ({only})"),
                }
            );
            let path = if back {
                // Loop around the right-hand side of both boxes.
                let bx = x1.max(x2) + NODE_W / 2;
                format!(
                    "M{} {} C{} {} {} {} {} {}",
                    bx,
                    y1 + NODE_H / 2,
                    bx + 60,
                    y1,
                    bx + 60,
                    y2 + NODE_H,
                    bx,
                    y2 + NODE_H / 2
                )
            } else {
                format!("M{} {} L{} {}", x1, y1 + NODE_H, x2, y2)
            };
            drawn.push(Edge { path, title, back });
        }
    }
    Diagram {
        width: width + 60,
        height,
        nodes,
        edges: drawn,
    }
}

/// The edges that close a loop: found by a depth-first walk from `reported`, they lead back to a
/// status still on the walk's stack.
fn back_edges(edges: &[(Status, Status)]) -> Vec<(Status, Status)> {
    fn walk(
        s: Status,
        edges: &[(Status, Status)],
        stack: &mut Vec<Status>,
        done: &mut Vec<Status>,
        back: &mut Vec<(Status, Status)>,
    ) {
        stack.push(s);
        for &(f, t) in edges.iter().filter(|(f, _)| *f == s) {
            if stack.contains(&t) {
                back.push((f, t));
            } else if !done.contains(&t) {
                walk(t, edges, stack, done, back);
            }
        }
        stack.pop();
        done.push(s);
    }
    let mut back = vec![];
    walk(Status::Reported, edges, &mut vec![], &mut vec![], &mut back);
    back
}

#[derive(Serialize)]
struct LifecyclePage {
    chrome: Chrome,
    diagram: Diagram,
    rows: Vec<Row>,
    node_w: i32,
    node_h: i32,
}

/// How the page names the RMAs a row is limited to.
fn only_for(applies: Applies) -> &'static str {
    match applies {
        Applies::Always => "",
        Applies::KeptByCustomer => "keep-your-drive RMAs only",
        Applies::ShipsBack => "RMAs whose failed unit ships back",
    }
}

async fn show(viewer: Viewer) -> Result<Html<String>, PageError> {
    let rows = TRANSITIONS
        .iter()
        .map(|t| Row {
            from: t.from.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            to: t.to.as_str(),
            roles: t.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
            required: t.required.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", "),
            only_for: only_for(t.applies),
        })
        .collect();
    let page = LifecyclePage {
        chrome: Chrome::new(viewer, "lifecycle"),
        diagram: diagram(),
        rows,
        node_w: NODE_W,
        node_h: NODE_H,
    };
    render("lifecycle/index.html", &page)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_status_is_drawn_once_and_every_transition_is_an_edge() {
        let d = super::diagram();
        assert_eq!(d.nodes.len(), crate::domain::lifecycle::Status::ALL.len());
        let pairs: usize = crate::domain::lifecycle::TRANSITIONS.iter().map(|t| t.from.len()).sum();
        assert_eq!(d.edges.len(), pairs);
        assert_eq!(
            d.edges.iter().filter(|e| e.back).count(),
            1,
            "only testing -> repair loops back"
        );
    }
}
