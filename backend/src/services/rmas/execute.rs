//! Carries out a [`Plan`], in the caller's write transaction or as one statement of its own: the
//! only code that writes an RMA's status after it is opened. Everything was decided by the plan;
//! what is left here are the races only the database can settle (a spare or part just taken by
//! someone else).
use super::facts::{Audience, changed_meanwhile};
use crate::domain::lifecycle::{Plan, PlanFacts};
use crate::domain::{Condition, Location};
use crate::entities::{repair_record, rma, shipment, slot_history, unit};
use crate::error::{AppError, AppResult};
use crate::mail::outbox;
use crate::services::{Actor, history, stock};
use sea_orm::sea_query::{
    Alias, Asterisk, CommonTableExpression, DynIden, Expr, ExprTrait, InsertStatement, IntoIden, Query, TableRef,
    UpdateStatement, WithClause,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, EntityName, EntityTrait, Iterable, QueryFilter, QueryTrait, Set, Unchanged, UpdateMany,
};
use serde_json::json;
use uuid::Uuid;

/// The template of the alert a transition queues when it leaves a shelf below its threshold.
const LOW_STOCK: &str = "low_stock";

/// Applies `plan`; returns the RMA as it now stands.
pub async fn apply(
    txn: &DatabaseTransaction,
    actor: &Actor,
    facts: &PlanFacts,
    mut plan: Plan,
    audience: Audience,
) -> AppResult<rma::Model> {
    let (rma_id, now) = (facts.rma.id, facts.now);
    // The unit a shipment takes is locked before the RMA row, whose foreign key to it would
    // otherwise hold a share lock that two racing shipments each wait to upgrade.
    let shipping = match plan.take_from_stock {
        Some((unit_id, _)) => Some(
            stock::lock_unit(txn, unit_id)
                .await?
                .ok_or_else(|| AppError::Conflict("the replacement unit is gone; scan another".into()))?,
        ),
        None => None,
    };
    // Compare-and-set the RMA first: a concurrent change makes this a 409 before anything else moves.
    let updated = rma_update(&plan, facts)
        .exec_with_returning(txn)
        .await?
        .pop()
        .ok_or_else(|| changed_meanwhile(&facts.rma.number))?;
    let mut shelves = plan.shelves.clone();
    if plan.release_reservation {
        shelves.extend(stock::release(txn, rma_id).await?);
    }
    if let Some(reserve) = &plan.reserve {
        match stock::reserve(txn, rma_id, reserve.part_id, &reserve.depots).await? {
            Some((unit, depot)) => {
                shelves.push((depot.id, unit.part_id));
                plan.fields["reserved_serial"] = json!(unit.serial);
                plan.fields["reserved_at_depot"] = json!(depot.code);
            }
            // Asked for one depot: say so rather than approve with nothing set aside.
            None if reserve.required => {
                return Err(AppError::Conflict(format!(
                    "no spare of this part is left to reserve at {}: every unit there is shipped or reserved; \
                     choose another depot, or leave the depot out to take any",
                    reserve.depots.first().map_or("", |d| d.code.as_str())
                )));
            }
            // Nothing on any shelf: approved all the same, the RMA shows nothing reserved.
            None => {}
        }
    }
    if let (Some(unit), Some((_, depot_id))) = (&shipping, plan.take_from_stock) {
        stock::take_for_shipment(txn, unit, rma_id, depot_id, now).await?;
    }
    for (direction, at) in &plan.deliveries {
        shipment::Entity::update_many()
            .col_expr(shipment::Column::DeliveredAt, Expr::value(*at))
            .filter(shipment::Column::RmaId.eq(rma_id))
            .filter(shipment::Column::Direction.eq(*direction))
            .filter(shipment::Column::DeliveredAt.is_null())
            .exec(txn)
            .await?;
    }
    for m in &plan.moves {
        let mut am = unit::ActiveModel {
            id: Unchanged(m.unit_id),
            location: Set(m.to.location.as_str().into()),
            site_id: Set(m.to.site_id),
            depot_id: Set(m.to.depot_id),
            slot_id: Set(m.to.slot_id),
            parent_unit_id: Set(m.to.parent_unit_id),
            updated_at: Set(now),
            ..Default::default()
        };
        if let Some(c) = m.condition {
            am.condition = Set(c.as_str().into());
        }
        if let Some(r) = m.to.replaced_by {
            am.replaced_by_unit_id = Set(Some(r));
        }
        am.update(txn).await?;
    }
    if let Some((slot_id, pulled, installed)) = plan.slot_swap {
        slot_history::Entity::update_many()
            .col_expr(slot_history::Column::RemovedAt, Expr::value(now))
            .filter(slot_history::Column::SlotId.eq(slot_id))
            .filter(slot_history::Column::UnitId.eq(pulled))
            .filter(slot_history::Column::RemovedAt.is_null())
            .exec(txn)
            .await?;
        slot_history::ActiveModel {
            id: Set(Uuid::now_v7()),
            slot_id: Set(slot_id),
            unit_id: Set(installed),
            rma_id: Set(Some(rma_id)),
            installed_at: Set(now),
            removed_at: Set(None),
        }
        .insert(txn)
        .await?;
    }
    for (unit_id, serial) in &plan.consume {
        let taken = unit::Entity::update_many()
            .col_expr(unit::Column::ParentUnitId, Expr::value(Some(facts.returned.id)))
            .col_expr(unit::Column::UpdatedAt, Expr::value(now))
            .filter(unit::Column::Id.eq(*unit_id))
            .filter(unit::Column::Location.eq(Location::Depot.as_str()))
            .filter(unit::Column::DepotId.eq(facts.return_depot.id))
            .filter(unit::Column::ParentUnitId.is_null())
            // A spare kept for a waiting customer is not a repair part.
            .filter(unit::Column::ReservedRmaId.is_null())
            .exec(txn)
            .await?;
        if taken.rows_affected != 1 {
            return Err(AppError::Conflict(format!(
                "{serial} was just taken from stock or is reserved for an approved RMA; use another unit"
            )));
        }
    }
    if !plan.new_units.is_empty() {
        unit::Entity::insert_many(plan.new_units.iter().map(|n| unit::ActiveModel {
            id: Set(Uuid::now_v7()),
            serial: Set(n.serial.clone()),
            part_id: Set(n.part_id),
            condition: Set(Condition::Failed.as_str().into()),
            location: Set(Location::Depot.as_str().into()),
            site_id: Set(None),
            depot_id: Set(Some(n.depot_id)),
            slot_id: Set(None),
            parent_unit_id: Set(None),
            replaced_by_unit_id: Set(n.replaced_by),
            reserved_rma_id: Set(None),
            lot: Set(None),
            firmware: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }))
        .exec(txn)
        .await?;
    }
    if !plan.shipments.is_empty() {
        shipment::Entity::insert_many(plan.shipments.iter().map(|s| shipment::ActiveModel {
            id: Set(Uuid::now_v7()),
            rma_id: Set(rma_id),
            unit_id: Set(s.unit_id),
            direction: Set(s.direction.into()),
            carrier: Set(s.carrier.as_str().into()),
            tracking_number: Set(s.tracking_number.clone()),
            from_address: Set(s.from_address.clone()),
            to_address: Set(s.to_address.clone()),
            depot_id: Set(s.depot_id),
            packages: Set(s.packages),
            weight_kg: Set(s.weight_kg),
            shipped_at: Set(now),
            delivered_at: Set(s.delivered_at),
        }))
        .exec(txn)
        .await?;
    }
    shelves.sort();
    shelves.dedup();
    let low_stock = stock::crossings(txn, &shelves, now).await?;
    if !low_stock.is_empty() {
        plan.fields["low_stock"] = json!(low_stock);
    }
    let (event_id, mut inserts) = closing_inserts(actor, facts, plan, audience);
    if !low_stock.is_empty() {
        // An internal alert: depot technicians and admins, never the customer's webhook.
        let depots: Vec<String> = low_stock.iter().map(|l| l.depot.clone()).collect();
        let queued = outbox::Queued {
            rma_id,
            event_id,
            template: LOW_STOCK,
            recipients: stock::depot_staff(txn, &depots).await?,
            composed: None,
            attach_label: false,
            dedupe_key: None,
            webhook_url: None,
        };
        inserts.extend(outbox::rows(queued, now).into_iter().map(Row::of));
    }
    Tail { update: None, inserts }.run(txn).await?;
    Ok(updated)
}

/// Carries out `plan` from facts read outside any transaction (PostgreSQL): a plan that changes no
/// row but the RMA's own ([`Plan::moves_only_the_rma`]) is one statement, the RMA's compare-and-set
/// with its records, event and notice, atomic on its own, so without a transaction's `BEGIN` and
/// `COMMIT` round trips around it; any other plan runs in a write transaction ([`apply`]).
pub async fn carry_out(
    db: &DatabaseConnection,
    actor: &Actor,
    facts: PlanFacts,
    plan: Plan,
    audience: Audience,
) -> AppResult<rma::Model> {
    if db.get_database_backend() != DbBackend::Postgres || !plan.moves_only_the_rma() {
        let actor = actor.clone();
        return crate::db::write(db, move |txn| {
            Box::pin(async move { apply(txn, &actor, &facts, plan, audience).await })
        })
        .await;
    }
    let update = rma_update(&plan, &facts).into_query();
    let (_, inserts) = closing_inserts(actor, &facts, plan, audience);
    Tail {
        update: Some(update),
        inserts,
    }
    .run(db)
    .await?
    .ok_or_else(|| changed_meanwhile(&facts.rma.number))
}

/// The rows every plan ends with: its depot records, its event and its notice; with the event's id.
fn closing_inserts(actor: &Actor, facts: &PlanFacts, plan: Plan, audience: Audience) -> (Uuid, Vec<Row>) {
    let (rma_id, now) = (facts.rma.id, facts.now);
    let records = plan.records.into_iter().map(|r| repair_record::ActiveModel {
        id: Set(Uuid::now_v7()),
        rma_id: Set(rma_id),
        unit_id: Set(r.unit_id),
        kind: Set(r.kind.into()),
        details: Set(r.details),
        actor_id: Set(actor.user_id),
        created_at: Set(now),
    });
    let mut inserts: Vec<Row> = records.map(Row::of).collect();
    let event = history::Entry {
        rma_id,
        kind: "transition",
        from: Some(plan.from),
        to: Some(plan.to),
        actor: Some(actor),
        note: plan.note,
        fields: plan.fields,
        at: now,
    }
    .into_row();
    let event_id = event.id.clone().unwrap();
    inserts.push(Row::of(event));
    if let Some(notice) = plan.notice {
        // Composed by the dispatcher when it sends: rendering stays out of the write lock.
        let queued = outbox::Queued {
            rma_id,
            event_id,
            template: notice.as_str(),
            recipients: audience.recipients,
            composed: None,
            attach_label: plan.attach_label,
            dedupe_key: None,
            webhook_url: audience.webhook,
        };
        inserts.extend(outbox::rows(queued, now).into_iter().map(Row::of));
    }
    (event_id, inserts)
}

/// The writes that end a transition: its depot records, its event and its notices, and the
/// RMA's own update when nothing else moves.
struct Tail {
    update: Option<UpdateStatement>,
    inserts: Vec<Row>,
}

impl Tail {
    /// On PostgreSQL one statement, each write a `WITH` clause of it (foreign keys are checked at
    /// the statement's end): one round trip instead of one per write. With the update, each row is
    /// inserted from its result, so nothing is written if the RMA was not at the planned version
    /// (the statement may run outside a transaction). SQLite has no round trips to save (and no
    /// writes in `WITH`): one statement after another, in the caller's transaction. Returns the
    /// updated RMA; `None` if it was not at the planned version.
    async fn run(self, db: &impl ConnectionTrait) -> Result<Option<rma::Model>, DbErr> {
        let backend = db.get_database_backend();
        if backend != DbBackend::Postgres {
            debug_assert!(
                self.update.is_none(),
                "SQLite updates the RMA first, in its transaction"
            );
            for row in self.inserts {
                db.execute(&row.values()).await?;
            }
            return Ok(None);
        }
        let moved = Alias::new("moved");
        let mut with = WithClause::new();
        let from_update = self.update.is_some();
        if let Some(mut update) = self.update {
            with.cte(
                CommonTableExpression::new()
                    .query(update.returning_all().to_owned())
                    .table_name(moved.clone())
                    .to_owned(),
            );
        } else if self.inserts.is_empty() {
            return Ok(None);
        }
        for (i, row) in self.inserts.into_iter().enumerate() {
            let insert = match from_update {
                true => row.selected_from(moved.clone()),
                false => row.values(),
            };
            with.cte(
                CommonTableExpression::new()
                    .query(insert)
                    .table_name(Alias::new(format!("write{i}")))
                    .to_owned(),
            );
        }
        if !from_update {
            db.execute(&with.query(Query::select().expr(Expr::val(1)).to_owned()))
                .await?;
            return Ok(None);
        }
        let select = Query::select().column(Asterisk).from(moved).to_owned();
        rma::Entity::find()
            .from_raw_sql(backend.build(&with.query(select)))
            .one(db)
            .await
    }
}

/// One row to insert, as its table's columns and values.
struct Row {
    table: TableRef,
    columns: Vec<DynIden>,
    values: Vec<Expr>,
}

impl Row {
    /// The columns an active model sets, as sea-orm's own insert takes them.
    fn of<A: ActiveModelTrait>(mut model: A) -> Row {
        let mut row = Row {
            table: A::Entity::default().table_ref(),
            columns: vec![],
            values: vec![],
        };
        for column in <A::Entity as EntityTrait>::Column::iter() {
            if let ActiveValue::Set(value) | ActiveValue::Unchanged(value) = model.take(column) {
                row.columns.push(column.into_iden());
                row.values.push(column.save_as(Expr::val(value)));
            }
        }
        row
    }

    /// `INSERT … VALUES`.
    fn values(self) -> InsertStatement {
        Query::insert()
            .into_table(self.table)
            .columns(self.columns)
            .values_panic(self.values)
            .to_owned()
    }

    /// `INSERT … SELECT values FROM source`: one row for each row of `source`.
    fn selected_from(self, source: Alias) -> InsertStatement {
        let select = Query::select().exprs(self.values).from(source).to_owned();
        Query::insert()
            .into_table(self.table)
            .columns(self.columns)
            .select_from(select)
            .expect("as many values as columns")
            .to_owned()
    }
}

/// The RMA's status, version, clocks' facts, its depot record's count of entries and the columns
/// the plan sets, in one statement that checks the version it was planned at.
fn rma_update(plan: &Plan, facts: &PlanFacts) -> UpdateMany<rma::Entity> {
    let now = facts.now;
    let mut changes = rma::ActiveModel {
        status: Set(plan.to.as_str().into()),
        version: Set(plan.version + 1),
        status_entered: Set(plan.entered.to_json()),
        updated_at: Set(now),
        status_changed_at: Set(now),
        closed_at: Set(plan.closed.then_some(now)),
        ..Default::default()
    };
    let u = &plan.rma;
    if let Some(minutes) = u.labor_minutes {
        changes.labor_minutes = Set(minutes);
    }
    if let Some(resolution) = &u.resolution {
        changes.resolution = Set(Some(resolution.clone()));
    }
    if let Some(d) = &u.decision {
        changes.fault_code = Set(d.fault_code.clone());
        changes.keep_your_drive = Set(d.keep_your_drive);
        changes.replacement_kind = Set(d.replacement_kind.map(|k| k.as_str().into()));
        changes.replacement_part_id = Set(d.replacement_part_id);
    }
    if let Some(unit) = u.replacement_unit_id {
        changes.replacement_unit_id = Set(unit);
    }
    if let Some(unit) = u.returned_unit_id {
        changes.returned_unit_id = Set(unit);
    }
    if let Some(depot) = u.return_depot_id {
        changes.return_depot_id = Set(depot);
    }
    if let Some(bag) = &u.bag_number {
        changes.bag_number = Set(Some(bag.clone()));
    }
    if let Some(certificate) = &u.destruction_certificate {
        changes.destruction_certificate = Set(Some(certificate.clone()));
    }
    rma::Entity::update_many()
        .set(changes)
        .col_expr(
            rma::Column::RepairEntries,
            Expr::col(rma::Column::RepairEntries).add(plan.records.len() as i32),
        )
        .filter(rma::Column::Id.eq(facts.rma.id))
        .filter(rma::Column::Version.eq(plan.version))
}
