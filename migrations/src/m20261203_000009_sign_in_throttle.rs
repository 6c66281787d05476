//! Sign-in throttling as one counter per email, raised and read in a single atomic statement (an
//! upsert), so concurrent guesses on any number of instances cannot all pass a count taken before
//! any of them was recorded. Replaces the rows of single failures.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SignInThrottles::Table)
                .col(string(SignInThrottles::Email).primary_key())
                .col(integer(SignInThrottles::Attempts))
                .col(timestamp_with_time_zone(SignInThrottles::WindowStartedAt))
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(SignInFailures::Table).to_owned())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SignInFailures::Table)
                .col(pk_uuid(SignInFailures::Id))
                .col(string(SignInFailures::Email))
                .col(timestamp_with_time_zone(SignInFailures::At))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_sign_in_failures_email")
                .table(SignInFailures::Table)
                .col(SignInFailures::Email)
                .col(SignInFailures::At)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(SignInThrottles::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SignInThrottles {
    Table,
    Email,
    Attempts,
    WindowStartedAt,
}
#[derive(DeriveIden)]
enum SignInFailures {
    Table,
    Id,
    Email,
    At,
}
