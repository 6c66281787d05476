//! Notifications: messages composed from the templates under `frontend/emails/`, queued in the
//! outbox in the transaction of the change that causes them, delivered after commit by the
//! [`dispatch::Dispatcher`] over SMTP (lettre) or as chat webhooks.
pub mod compose;
pub mod dispatch;
pub mod outbox;
