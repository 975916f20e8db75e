//! Account commands.

use natter_domain::user::{
    About, ChangeProfile, DisplayName, Handle, Register, User, UserCommand, UserEvent,
};
use natter_eventlog::EventLog;
use natter_schema::Metadata;
use uuid::Uuid;

use crate::{CommandError, CommandHandler, CommandMetrics, Executed};

pub type UserError = CommandError<natter_domain::user::UserError>;

/// The account commands. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Users {
    handler: CommandHandler<User>,
}

impl Users {
    pub fn new(log: EventLog, metrics: CommandMetrics) -> Self {
        Self {
            handler: CommandHandler::new(log, metrics),
        }
    }

    pub fn handler(&self) -> &CommandHandler<User> {
        &self.handler
    }

    /// Registers a new account under a fresh id; the handle is claimed in the same atomic
    /// append, so of two registrations of one handle exactly one succeeds.
    pub async fn register(
        &self,
        handle: Handle,
        display_name: DisplayName,
        about: About,
        metadata: Metadata,
    ) -> Result<(Uuid, Executed<UserEvent>), UserError> {
        let user_id = Uuid::now_v7();
        let command = UserCommand::Register(Register {
            user_id,
            handle,
            display_name,
            about,
        });
        let executed = self
            .handler
            .execute(&user_id.to_string(), &command, metadata)
            .await?;
        Ok((user_id, executed))
    }

    pub async fn change_profile(
        &self,
        user_id: Uuid,
        change: ChangeProfile,
        metadata: Metadata,
    ) -> Result<Executed<UserEvent>, UserError> {
        self.handler
            .execute(
                &user_id.to_string(),
                &UserCommand::ChangeProfile(change),
                metadata,
            )
            .await
    }
}
