//! Field diagnosis and intake: idempotent alarm intake, searchable external references, the
//! diagnosis checklist, evidence attachments and the on-call rotation.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(pk_uuid(IdempotencyKeys::Id))
                .col(uuid(IdempotencyKeys::UserId))
                .col(string(IdempotencyKeys::Key))
                .col(string(IdempotencyKeys::RequestHash))
                .col(integer(IdempotencyKeys::Status))
                .col(text(IdempotencyKeys::Body))
                .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(IdempotencyKeys::Table, IdempotencyKeys::UserId)
                        .to(Users::Table, Users::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_idempotency_user_key")
                .table(IdempotencyKeys::Table)
                .col(IdempotencyKeys::UserId)
                .col(IdempotencyKeys::Key)
                .unique()
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Rmas::Table)
                .add_column(string(Rmas::RefsText).default(""))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_rmas_refs_text")
                .table(Rmas::Table)
                .col(Rmas::RefsText)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .add_column(json_null(Organizations::MandatoryChecks))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .add_column(json_null(Organizations::SeverityMap))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DiagnosisChecks::Table)
                .col(pk_uuid(DiagnosisChecks::Id))
                .col(uuid(DiagnosisChecks::RmaId))
                .col(string(DiagnosisChecks::Step))
                .col(string(DiagnosisChecks::Result))
                .col(text_null(DiagnosisChecks::Note))
                .col(uuid(DiagnosisChecks::ActorId))
                .col(string(DiagnosisChecks::ActorEmail))
                .col(timestamp_with_time_zone(DiagnosisChecks::At))
                .foreign_key(
                    ForeignKey::create()
                        .from(DiagnosisChecks::Table, DiagnosisChecks::RmaId)
                        .to(Rmas::Table, Rmas::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(DiagnosisChecks::Table, DiagnosisChecks::ActorId)
                        .to(Users::Table, Users::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_checks_rma")
                .table(DiagnosisChecks::Table)
                .col(DiagnosisChecks::RmaId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Attachments::Table)
                .col(pk_uuid(Attachments::Id))
                .col(uuid(Attachments::RmaId))
                .col(string(Attachments::FileName))
                .col(string(Attachments::ContentType))
                .col(big_integer(Attachments::Size))
                .col(string(Attachments::Sha256))
                .col(blob(Attachments::Data))
                .col(uuid(Attachments::UploadedBy))
                .col(timestamp_with_time_zone(Attachments::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Attachments::Table, Attachments::RmaId)
                        .to(Rmas::Table, Rmas::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Attachments::Table, Attachments::UploadedBy)
                        .to(Users::Table, Users::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_attachments_rma")
                .table(Attachments::Table)
                .col(Attachments::RmaId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(OncallShifts::Table)
                .col(pk_uuid(OncallShifts::Id))
                .col(uuid(OncallShifts::OrganizationId))
                .col(string(OncallShifts::Kind))
                .col(json(OncallShifts::Members))
                .col(timestamp_with_time_zone(OncallShifts::StartsAt))
                .col(timestamp_with_time_zone_null(OncallShifts::EndsAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(OncallShifts::Table, OncallShifts::OrganizationId)
                        .to(Organizations::Table, Organizations::Id),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            OncallShifts::Table.into_iden(),
            Attachments::Table.into_iden(),
            DiagnosisChecks::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        m.drop_index(Index::drop().name("idx_rmas_refs_text").table(Rmas::Table).to_owned())
            .await?;
        m.alter_table(Table::alter().table(Rmas::Table).drop_column(Rmas::RefsText).to_owned())
            .await?;
        for col in [Organizations::MandatoryChecks, Organizations::SeverityMap] {
            m.alter_table(Table::alter().table(Organizations::Table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Id,
    UserId,
    Key,
    RequestHash,
    Status,
    Body,
    CreatedAt,
}
#[derive(DeriveIden)]
enum Rmas {
    Table,
    Id,
    RefsText,
}
#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    MandatoryChecks,
    SeverityMap,
}
#[derive(DeriveIden)]
enum DiagnosisChecks {
    Table,
    Id,
    RmaId,
    Step,
    Result,
    Note,
    ActorId,
    ActorEmail,
    At,
}
#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    RmaId,
    FileName,
    ContentType,
    Size,
    Sha256,
    Data,
    UploadedBy,
    CreatedAt,
}
/// A weekly rotation (`kind` rotation: members take turns a week each from `starts_at`) or an
/// override (`kind` override: its one member is on call from `starts_at` to `ends_at`).
#[derive(DeriveIden)]
enum OncallShifts {
    Table,
    Id,
    OrganizationId,
    Kind,
    Members,
    StartsAt,
    EndsAt,
}
#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
