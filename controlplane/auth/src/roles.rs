//! Roles and permissions: who may do what, globally and on a channel.

use weir_store::{Channel, Role};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User id.
    pub user_id: String,
    /// Username.
    pub username: String,
    /// Global role.
    pub role: Role,
}

/// Something a caller may want to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Create channels (global).
    CreateChannel,
    /// List nodes, users (global, operators).
    Operate,
    /// See a channel's settings.
    ReadChannel,
    /// Change a channel's title and description.
    UpdateChannel,
    /// Delete a channel, manage its members.
    AdministerChannel,
    /// Issue, rotate, revoke stream keys.
    ManageStreamKeys,
    /// See and change relay destinations.
    ManageDestinations,
    /// See stream sessions, state and history.
    ReadStreams,
    /// See live viewer counts.
    ReadViewers,
    /// See recordings.
    ReadRecordings,
    /// Delete recordings.
    ManageRecordings,
    /// See the playback policy.
    ReadEntitlements,
    /// Change the playback policy and subscribers.
    ManageEntitlements,
    /// Moderate chat.
    ModerateChat,
    /// See the channel's studio broadcasts and their participants.
    ReadStudio,
    /// Host studio broadcasts: create, invite, stage, layout, overlays, go live, end.
    ManageStudio,
}

/// Whether `role` grants `perm`.
pub fn allows(role: Role, perm: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Admin => true,
        Role::Owner => !matches!(perm, Operate),
        Role::Moderator => matches!(
            perm,
            ReadChannel
                | ReadStreams
                | ReadViewers
                | ReadRecordings
                | ReadEntitlements
                | ModerateChat
                | ReadStudio
        ),
        Role::Guest => matches!(perm, ReadChannel | ReadStreams | ReadViewers | ReadStudio),
        Role::Viewer => false,
    }
}

/// Why access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The caller has no role on the object: it is reported as absent (no existence leak).
    #[error("not found")]
    NotFound,
    /// The caller sees the object but may not do this.
    #[error("forbidden")]
    Forbidden,
}

/// The caller's role on a channel: `Admin` for operators, `Owner` for its owner,
/// the member role for moderators and guests, `None` for everyone else.
pub fn channel_role(who: &Principal, channel: &Channel) -> Option<Role> {
    if who.role == Role::Admin {
        return Some(Role::Admin);
    }
    channel.member_role(&who.user_id)
}

/// Checks a permission on a channel.
pub fn check_channel(who: &Principal, channel: &Channel, perm: Permission) -> Result<Role, Denied> {
    let role = channel_role(who, channel).ok_or(Denied::NotFound)?;
    if allows(role, perm) {
        Ok(role)
    } else {
        Err(Denied::Forbidden)
    }
}

/// Checks a global permission (`CreateChannel`, `Operate`) against the global role.
pub fn check_global(who: &Principal, perm: Permission) -> Result<(), Denied> {
    let ok = match perm {
        Permission::CreateChannel => matches!(who.role, Role::Admin | Role::Owner),
        Permission::Operate => who.role == Role::Admin,
        _ => false,
    };
    if ok { Ok(()) } else { Err(Denied::Forbidden) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_store::ChannelMember;

    fn p(id: &str, role: Role) -> Principal {
        Principal {
            user_id: id.into(),
            username: id.into(),
            role,
        }
    }

    #[test]
    fn matrix() {
        let ch = Channel {
            id: "c".into(),
            owner_id: "o".into(),
            slug: "c".into(),
            title: String::new(),
            description: String::new(),
            members: vec![
                ChannelMember {
                    user_id: "m".into(),
                    role: Role::Moderator,
                },
                ChannelMember {
                    user_id: "g".into(),
                    role: Role::Guest,
                },
            ],
            transcode: weir_store::Transcode::default(),
            record: weir_store::RecordSetting::default(),
            created_at: 0,
            updated_at: 0,
        };
        use Permission::*;
        let admin = p("a", Role::Admin);
        let owner = p("o", Role::Owner);
        let other_owner = p("x", Role::Owner);
        let moderator = p("m", Role::Viewer);
        let guest = p("g", Role::Viewer);
        let viewer = p("v", Role::Viewer);
        for perm in [
            ReadChannel,
            ManageStreamKeys,
            ManageDestinations,
            AdministerChannel,
        ] {
            assert!(check_channel(&admin, &ch, perm).is_ok());
            assert!(check_channel(&owner, &ch, perm).is_ok());
            assert_eq!(
                check_channel(&other_owner, &ch, perm),
                Err(Denied::NotFound)
            );
            assert_eq!(check_channel(&viewer, &ch, perm), Err(Denied::NotFound));
        }
        assert!(check_channel(&moderator, &ch, ReadRecordings).is_ok());
        assert_eq!(
            check_channel(&moderator, &ch, ManageStreamKeys),
            Err(Denied::Forbidden)
        );
        assert!(check_channel(&guest, &ch, ReadStreams).is_ok());
        assert_eq!(
            check_channel(&guest, &ch, ReadRecordings),
            Err(Denied::Forbidden)
        );
        assert!(check_channel(&owner, &ch, ManageStudio).is_ok());
        assert!(check_channel(&guest, &ch, ReadStudio).is_ok());
        assert_eq!(
            check_channel(&guest, &ch, ManageStudio),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            check_channel(&moderator, &ch, ManageStudio),
            Err(Denied::Forbidden)
        );
        assert!(check_global(&owner, CreateChannel).is_ok());
        assert!(check_global(&viewer, CreateChannel).is_err());
        assert!(check_global(&owner, Operate).is_err());
        assert!(check_global(&admin, Operate).is_ok());
    }
}
